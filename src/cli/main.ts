import { Command, CommanderError } from 'commander';
import { VERSION } from '../server/version.js';
import { registerServeCommands } from './commands/serve.js';
import { registerClientCommands } from './commands/index.js';
import { CliError } from './errors.js';

/** The `yunhai` command tree. Each group of commands lives in commands/<group>.ts. */
export function buildProgram(): Command {
  const program = new Command('yunhai')
    .description('Yunhai (云海): an open-source cloud you run yourself')
    .version(VERSION)
    .showSuggestionAfterError()
    .exitOverride();
  registerServeCommands(program);
  registerClientCommands(program);
  return program;
}

export async function main(argv = process.argv): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof CliError) {
      process.stderr.write(`yunhai: ${e.message}\n`);
      return e.exitCode;
    }
    process.stderr.write(`yunhai: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

main().then((code) => {
  process.exitCode = code;
});
