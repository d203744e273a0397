import { Command } from 'commander';
import { VERSION } from '../server/version.js';
import { registerBucketCommands } from './commands/bucket.js';
import { processContext, registerClientCommands } from './commands/index.js';
import { registerQueueCommands } from './commands/queue.js';
import { registerServeCommands } from './commands/serve.js';
import type { CliContext } from './context.js';

/**
 * The `yunhai` command tree, writing through `ctx.io`. Output, help and exit behaviour are configured
 * before the commands are added, so every subcommand inherits them.
 */
export function buildProgram(ctx: CliContext = processContext()): Command {
  const program = new Command('yunhai')
    .description('Yunhai (云海): an open-source cloud you run yourself')
    .version(VERSION)
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.io.out(s),
      writeErr: (s) => ctx.io.err(s),
      getOutHelpWidth: () => ctx.io.columns ?? 100,
      getErrHelpWidth: () => ctx.io.columns ?? 100,
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    })
    .configureHelp({ showGlobalOptions: true })
    .option('--profile <name>', 'config profile to use (env YUNHAI_PROFILE; default: the current profile)')
    .option(
      '--endpoint <url>',
      'API endpoint, e.g. http://127.0.0.1:9600 (env YUNHAI_ENDPOINT; default: the profile’s)',
    )
    .option('-o, --output <format>', 'table or json (json prints the API’s response as is)', 'table')
    .addHelpText(
      'after',
      `
Getting started:
  yunhai up                                  start everything on this machine
  yunhai login --data-dir ./yunhai-data      sign in as the root administrator
  yunhai tenant create acme --owner alice --owner-password
  yunhai whoami

Credentials come from the profile (~/.config/yunhai/config.json, or $YUNHAI_CONFIG_DIR), or from
$YUNHAI_ACCESS_KEY_ID and $YUNHAI_SECRET_ACCESS_KEY. Exit status: 0 ok, 1 API error, 2 usage error,
3 cannot reach the control plane, 4 audit chain broken.`,
    );
  registerServeCommands(program);
  registerClientCommands(program, ctx);
  registerQueueCommands(program, ctx);
  registerBucketCommands(program, ctx);
  return program;
}
