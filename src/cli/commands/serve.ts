import { execFileSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import pino from 'pino';
import { startAgent } from '../../agent/agent.js';
import { createFakeDriver } from '../../agent/drivers/fake/fake-driver.js';
import { createQemuDriver } from '../../agent/drivers/qemu/qemu-driver.js';
import type { Hypervisor } from '../../agent/hypervisor.js';
import { type ControlPlane, type ControlPlaneConfig, startControlPlane } from '../../server/control-plane.js';
import { ensurePublicTinyImage } from '../../server/public-images.js';
import { VERSION } from '../../server/version.js';

type DriverName = 'qemu' | 'fake' | 'none';

function hasQemu(): boolean {
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The hypervisor driver for this host's agent; qemu unless told otherwise (fake is for simulation). */
function makeDriver(name: DriverName, dataDir: string, log?: pino.Logger): Hypervisor | undefined {
  if (name === 'none') return undefined;
  if (name === 'fake') return createFakeDriver({ stateFile: join(dataDir, 'fake-driver.json') });
  if (!hasQemu()) {
    process.stderr.write(
      'yunhai: qemu-system-x86_64 is not installed, so this host runs no VMs (apt-get install qemu-system-x86 qemu-utils).\n',
    );
    return undefined;
  }
  return createQemuDriver({ dataDir, log });
}

interface ServeFlags {
  driver?: DriverName;
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
    out.push(`      aws --endpoint-url ${cp.endpoints.s3} s3 mb s3://my-bucket`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

/** YUNHAI_HOST_GRACE_MS: how long a silent host stays up before it is marked down (default 30 s). */
function graceFromEnv(): number | undefined {
  const v = process.env.YUNHAI_HOST_GRACE_MS;
  if (!v) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 500)
    throw new Error(`YUNHAI_HOST_GRACE_MS must be an integer >= 500, got ${v}`);
  return n;
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
    .option(
      '--driver <driver>',
      'hypervisor driver of the local host: qemu, fake (simulation) or none',
      'qemu',
    )
    .action(async (f: ServeFlags) => {
      const dataDir = resolve(f.dataDir);
      const driver = makeDriver(f.driver ?? 'qemu', dataDir);
      await runUntilSignal(
        {
          dataDir,
          host: f.host,
          port: parsePort(f.port),
          logLevel: f.logLevel,
          logFile: f.logFile ?? join(dataDir, 'logs', 'yunhai.log'),
          localAgent: driver ? { driver } : undefined,
          hostGraceMs: graceFromEnv(),
        },
        (cp) => {
          printBanner(cp, dataDir);
          if (!driver) return;
          // The tiny guest image, built from Debian packages on first start; in the background.
          ensurePublicTinyImage({ iam: cp.iam, images: cp.images, logger: cp.logger })
            .then((r) => {
              if (r.created) {
                process.stdout.write(
                  `Public image 'tiny' is ready: yunhai instance create demo --image tiny --flavor tiny.small\n`,
                );
              }
            })
            .catch((e) =>
              process.stderr.write(
                `yunhai: could not prepare the tiny guest image: ${e instanceof Error ? e.message : String(e)}\n`,
              ),
            );
        },
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

  program
    .command('agent')
    .description('Run the host agent: register this machine with a control plane and run its VMs')
    .requiredOption('--control-plane <url>', "the control plane's api endpoint, e.g. http://10.0.0.1:9600")
    .requiredOption('--token <token>', 'registration token (yunhai host token create)')
    .option('--data-dir <dir>', 'where VMs and the image cache live', './yunhai-agent')
    .option('--name <name>', 'host name to register', hostname())
    .option('--driver <driver>', 'qemu, or fake for fleet simulation', 'qemu')
    .option(
      '--migration-address <ip>',
      'address other hosts reach this one at for live migration (QEMU stream and disk copy)',
      '127.0.0.1',
    )
    .option('--log-level <level>', 'log level', 'info')
    .action(
      async (f: {
        controlPlane: string;
        token: string;
        dataDir: string;
        name: string;
        driver: DriverName;
        migrationAddress: string;
        logLevel: string;
      }) => {
        const dataDir = resolve(f.dataDir);
        const logger = pino({ level: f.logLevel });
        const driver = makeDriver(f.driver, dataDir, logger);
        if (!driver) throw new Error('no hypervisor driver available on this host');
        const agent = await startAgent({
          controlPlane: f.controlPlane,
          registrationToken: f.token,
          dataDir,
          name: f.name,
          driver,
          logger,
          migrationAddress: f.migrationAddress,
        });
        process.stdout.write(
          `Agent for host ${f.name} (${agent.hostId}) registered with ${f.controlPlane}. Press Ctrl-C to stop; VMs keep running.\n`,
        );
        await new Promise<void>((done) => {
          const stop = () =>
            agent
              .stop()
              .then(() => driver.close())
              .then(done, done);
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        process.stdout.write('Agent stopped.\n');
      },
    );
}
