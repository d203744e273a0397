import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { type ControlPlane, type ControlPlaneConfig, startControlPlane } from '../../server/control-plane.js';
import { VERSION } from '../../server/version.js';

interface ServeFlags {
  dataDir: string;
  host: string;
  port: string;
  database?: string;
  logLevel: string;
  logFile?: string;
}

function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--port must be 0-65535, got ${v}`);
  return n;
}

/** Runs until SIGINT/SIGTERM, then shuts down cleanly (listeners first, then the database). */
async function runUntilSignal(cfg: ControlPlaneConfig, banner: (cp: ControlPlane) => void): Promise<void> {
  const started = Date.now();
  const cp = await startControlPlane(cfg);
  banner(cp);
  process.stdout.write(`Ready in ${Date.now() - started} ms. Press Ctrl-C to stop.\n`);
  await new Promise<void>((done) => {
    const stop = (sig: string) => {
      process.stdout.write(`\n${sig} received, shutting down...\n`);
      cp.close().then(done, (e) => {
        process.stderr.write(`shutdown error: ${String(e)}\n`);
        done();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  process.stdout.write('Stopped.\n');
}

function printBanner(cp: ControlPlane, dataDir: string) {
  const out: string[] = [];
  out.push(`Yunhai ${VERSION} (云海) — control plane on ${cp.database.dialect}`);
  out.push('Endpoints:');
  for (const [name, url] of Object.entries(cp.endpoints)) out.push(`  ${name.padEnd(8)} ${url}`);
  out.push(`  (written to ${join(dataDir, 'endpoints.json')})`);
  if (cp.rootCredentials) {
    const c = cp.rootCredentials;
    out.push('');
    out.push('Root account created (shown once; also saved to credentials.json, mode 0600):');
    out.push(`  username           ${c.username}`);
    out.push(`  password           ${c.password}`);
    out.push(`  access key id      ${c.accessKeyId}`);
    out.push(`  secret access key  ${c.secretAccessKey}`);
    out.push('');
    out.push(`Next: yunhai login --endpoint ${cp.endpoints.api} --data-dir ${dataDir}`);
    out.push(`      aws --endpoint-url ${cp.endpoints.sts} sts get-caller-identity`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

export function registerServeCommands(program: Command) {
  program
    .command('up')
    .description('Start the whole platform on this machine with embedded defaults (SQLite, local disk)')
    .option('--data-dir <dir>', 'where state lives', './yunhai-data')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option(
      '--port <port>',
      'port of the API listener; the others take the next ports (0 = any free ports)',
      '9600',
    )
    .option('--log-level <level>', 'log level (trace, debug, info, warn, error)', 'info')
    .option('--log-file <file>', 'log file (default <data-dir>/logs/yunhai.log)')
    .action(async (f: ServeFlags) => {
      const dataDir = resolve(f.dataDir);
      await runUntilSignal(
        {
          dataDir,
          host: f.host,
          port: parsePort(f.port),
          logLevel: f.logLevel,
          logFile: f.logFile ?? join(dataDir, 'logs', 'yunhai.log'),
        },
        (cp) => printBanner(cp, dataDir),
      );
    });

  program
    .command('server')
    .description('Run the control plane only (SQLite by default, PostgreSQL with --database postgres://...)')
    .option(
      '--database <url>',
      'postgres://user:pass@host/db, or a SQLite file path',
      process.env.YUNHAI_DATABASE_URL,
    )
    .option('--data-dir <dir>', 'master key, credentials.json and endpoints.json', './yunhai-data')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option(
      '--port <port>',
      'port of the API listener; the others take the next ports (0 = any free ports)',
      '9600',
    )
    .option('--log-level <level>', 'log level', 'info')
    .option('--log-file <file>', 'log file (default: JSON lines on stdout)')
    .action(async (f: ServeFlags) => {
      const dataDir = resolve(f.dataDir);
      await runUntilSignal(
        {
          dataDir,
          database: f.database,
          host: f.host,
          port: parsePort(f.port),
          logLevel: f.logLevel,
          logFile: f.logFile,
        },
        (cp) => printBanner(cp, dataDir),
      );
    });
}
