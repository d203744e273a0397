import { processIo } from './context.js';
import { runCli } from './run.js';

export { buildProgram } from './program.js';

runCli(process.argv.slice(2), process.env, { io: processIo() }).then((r) => {
  process.exitCode = r.code;
});
