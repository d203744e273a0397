#!/usr/bin/env node
// bench/sqs: message throughput of the sqs listener (`yunhai up`, SQLite) beside RabbitMQ measured in
// the same run, both durable: Yunhai commits every send before acknowledging it; RabbitMQ gets a
// durable queue, persistent messages, publisher confirms and manual acks (amqplib).
//
// For concurrency 1, 4 and 16 (producers and consumers each), in batches of 10:
//   send     N messages   (SendMessageBatch | 10 persistent publishes, then wait for their confirms)
//   receive  N messages   (ReceiveMessage of 10 | pushed deliveries to c consumers, unacked)
//   delete   N messages   (DeleteMessageBatch | one multiple-ack per 10 deliveries, then a round trip)
//   cycle    N messages end to end: c producers and c consumers (receive + delete | prefetch 10,
//            ack per 10) at once; the fair comparison, since AMQP pushes and acks asynchronously
// Target from issue 5: >= 20,000 msg/s through the full cycle and at least RabbitMQ's figure.
//
// After Yunhai, the same levels run against the floor server (bench/sqs-floor-server.js, `--no-floor`
// skips it): node:http, Yunhai's SigV4 check, the same rows, statements, group commit and syncs on a
// copy of Yunhai's database, nothing else. A figure the floor misses is out of reach of any Node
// server with this storage on this machine; the gap between Yunhai and the floor is Yunhai's own.
//
// Usage: npm run build && node bench/sqs.js [--messages N] [--concurrency 1,4,16] [--skip-rabbitmq]
//        [--warmup MESSAGES] [--no-floor] [--client lean|basic|node] [--cpu-prof DIR]   (clients: bench/sqs-client.js)
// RabbitMQ: Debian's rabbitmq-server (apt-get install -y rabbitmq-server); started here on a free port.
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  fdatasyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { opt, pct, requireBuilt, root } from './common.js';
import { startFloor } from './floor.js';

requireBuilt('bench/sqs');
const { checkLeanSigning, SQS_CLIENTS } = await import('./sqs-client.js');
const N = Number(opt('--messages', 20_000));
const LEVELS = String(opt('--concurrency', '1,4,16')).split(',').map(Number);
/**
 * Messages of one unrecorded 4-client pass before the levels (`--warmup 0`: none), so the first
 * level's figures are of compiled code, not of the JIT's first passes over it.
 */
const WARMUP = Number(opt('--warmup', 5000));
const SKIP_RABBIT = process.argv.includes('--skip-rabbitmq');
/**
 * After Yunhai, the same levels against the floor server (bench/sqs-floor-server.js): the least a
 * Node server does for this traffic with the same durability. `--no-floor` skips it.
 */
const FLOOR = !process.argv.includes('--no-floor');
/** `--cpu-prof DIR`: the server writes a V8 CPU profile there when it stops (for finding costs). */
const CPU_PROF = opt('--cpu-prof', undefined);
/** `--client lean|basic|node`: the SQS client (bench/sqs-client.js); lean by default. */
const CLIENT = String(opt('--client', 'lean'));
if (!(CLIENT in SQS_CLIENTS)) {
  console.error(`bench/sqs: --client must be one of ${Object.keys(SQS_CLIENTS).join(', ')}`);
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tmp = mkdtempSync(join(tmpdir(), 'yunhai-bench-sqs-'));
const children = [];
/** Stops the broker: killing rabbitmq-server (a shell wrapper) would leave its Erlang VM running. */
const stoppers = [];
const cleanup = () => {
  for (const stop of stoppers.splice(0)) stop();
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const body = (i) => `message ${i} ${'x'.repeat(100)}`;

/**
 * The disk's fdatasync latency right now, on the file system that holds both data dirs: 100 appends
 * of 16 KiB, each synced (about what one group commit writes to the WAL). Every acknowledged send
 * waits for a sync, so on a shared machine this swings the send and cycle figures more than CPU.
 */
function diskSyncMs() {
  const file = join(tmp, 'sync-probe');
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(16_384, 1);
  const ms = [];
  try {
    for (let i = 0; i < 100; i++) {
      writeSync(fd, chunk);
      const t = process.hrtime.bigint();
      fdatasyncSync(fd);
      ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  ms.sort((a, b) => a - b);
  return { p50: ms[50], p90: ms[90], max: ms[99] };
}

/**
 * CPU time (user + system, µs) the Yunhai server process and this client used: on a shared machine
 * the wall-clock figures depend on what else runs; CPU per message does not.
 */
let serverPid;
const CLK_TCK = 100;
function serverCpuUs() {
  if (!serverPid) return { all: 0, sys: 0 };
  try {
    const f = readFileSync(`/proc/${serverPid}/stat`, 'utf8').split(') ')[1].split(' ');
    return { all: ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK, sys: (Number(f[12]) * 1e6) / CLK_TCK };
  } catch {
    return { all: 0, sys: 0 };
  }
}
/**
 * The server's main thread (the event loop) from /proc/<pid>/task/<pid>/schedstat: ns on a CPU and
 * ns runnable but waiting for one. Waiting means the machine, not the server, was the limit then.
 */
function loopNs(pid) {
  if (!pid) return { run: 0, wait: 0 };
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ');
    return { run: Number(run), wait: Number(wait) };
  } catch {
    return { run: 0, wait: 0 };
  }
}
const cpu = {
  phase: undefined,
  server: { all: 0, sys: 0 },
  client: 0,
  clientSys: 0,
  loop: { run: 0, wait: 0 },
  own: { run: 0, wait: 0 },
  at: 0n,
};
const cpuPerMessage = {};
function cpuMark(name) {
  const c = process.cpuUsage();
  const now = {
    server: serverCpuUs(),
    client: c.user + c.system,
    clientSys: c.system,
    loop: loopNs(serverPid),
    own: loopNs(process.pid),
    at: process.hrtime.bigint(),
  };
  if (cpu.phase) {
    const wall = Number(now.at - cpu.at);
    cpuPerMessage[cpu.phase] = {
      server: (now.server.all - cpu.server.all) / N,
      serverSys: (now.server.sys - cpu.server.sys) / N,
      client: (now.client - cpu.client) / N,
      clientSys: (now.clientSys - cpu.clientSys) / N,
      loopRun: (100 * (now.loop.run - cpu.loop.run)) / wall,
      loopWait: (100 * (now.loop.wait - cpu.loop.wait)) / wall,
      clientRun: (100 * (now.own.run - cpu.own.run)) / wall,
      clientWait: (100 * (now.own.wait - cpu.own.wait)) / wall,
    };
  }
  Object.assign(cpu, now, { phase: name });
}

/** Runs `workers` async workers that take batches of 10 of `total` until none is left; answers msg/s. */
async function timed(total, workers, work) {
  let next = 0;
  const claim = () => {
    if (next >= total) return null;
    const from = next;
    next = Math.min(total, next + 10);
    return [from, next];
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: workers }, (_, w) => work(claim, w)));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return total / s;
}

// ---- Yunhai: the SQS JSON protocol over keep-alive HTTP, signed with our SigV4 signer -----------

async function startYunhai() {
  const dataDir = join(tmp, 'yunhai');
  const child = spawn(
    process.execPath,
    [
      ...(CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', CPU_PROF] : []),
      // BENCH_NODE_FLAGS="--trace-deopt ...": extra node flags for the server (finding costs).
      ...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean),
      join(root, 'bin', 'yunhai.js'),
      'up',
      '--data-dir',
      dataDir,
      '--port',
      '0',
      // No log line per request (an operator's choice; the request metrics are still kept).
      '--log-level',
      'warn',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: process.env,
    },
  );
  children.push(child);
  let out = '';
  // BENCH_SERVER_LOG=FILE: everything the server prints after it is ready goes there (traces).
  const logFd = process.env.BENCH_SERVER_LOG ? openSync(process.env.BENCH_SERVER_LOG, 'w') : undefined;
  let ready = false;
  const onOutput = (d) => {
    if (!ready) out += d;
    else if (logFd !== undefined) writeSync(logFd, d);
  };
  child.stdout.on('data', onOutput);
  child.stderr.on('data', onOutput);
  const end = Date.now() + 60_000;
  while (!out.includes('Ready in')) {
    if (Date.now() > end || child.exitCode !== null) throw new Error(`yunhai up did not start:\n${out}`);
    await sleep(50);
  }
  ready = true;
  const endpoint = JSON.parse(readFileSync(join(dataDir, 'endpoints.json'), 'utf8')).sqs;
  serverPid = child.pid;
  const creds = JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8'));
  return { child, endpoint, creds, dataDir };
}

async function benchSqs(client, c, run, tag = '', n = N) {
  const QueueUrl = (
    await client.call('CreateQueue', {
      QueueName: `bench-${c}-${run}`,
      Attributes: { VisibilityTimeout: '300' },
    })
  ).QueueUrl;
  const bodies = (from, to) => Array.from({ length: to - from }, (_, i) => body(from + i));
  cpuMark(`${tag}${c}/send`);
  const send = await timed(n, c, async (claim) => {
    for (let b = claim(); b; b = claim()) await client.send(QueueUrl, bodies(b[0], b[1]));
  });
  const handles = [];
  cpuMark(`${tag}${c}/receive`);
  const receive = await timed(n, c, async (claim) => {
    for (let b = claim(); b; b = claim()) {
      let want = b[1] - b[0];
      while (want > 0) {
        const got = await client.receive(QueueUrl, want, 1);
        for (const h of got) handles.push(h);
        want -= got.length;
      }
    }
  });
  let h = 0;
  cpuMark(`${tag}${c}/delete`);
  const del = await timed(n, c, async (claim) => {
    for (let b = claim(); b; b = claim()) {
      const batch = handles.slice(h, h + (b[1] - b[0]));
      h += batch.length;
      await client.del(QueueUrl, batch);
    }
  });
  // Full cycle: producers and consumers at the same time.
  let consumed = 0;
  cpuMark(`${tag}${c}/cycle`);
  const t0 = process.hrtime.bigint();
  // Round-trip times (ms) of the cycle's requests as the client saw them: what the producers wait for.
  const rtt = { send: [], receive: [], delete: [] };
  const timedCall = async (kind, p) => {
    const s = performance.now();
    const r = await p;
    rtt[kind].push(performance.now() - s);
    return r;
  };
  const producers = timed(n, c, async (claim) => {
    for (let b = claim(); b; b = claim()) await timedCall('send', client.send(QueueUrl, bodies(b[0], b[1])));
  });
  let receives = 0;
  const consumers = Array.from({ length: c }, async () => {
    while (consumed < n) {
      const got = await timedCall('receive', client.receive(QueueUrl, 10, 1));
      receives++;
      if (got.length === 0) continue;
      consumed += got.length;
      await timedCall('delete', client.del(QueueUrl, got));
    }
  });
  await Promise.all([producers, ...consumers]);
  const cycle = n / (Number(process.hrtime.bigint() - t0) / 1e9);
  cpuMark(undefined);
  await client.call('DeleteQueue', { QueueUrl });
  const ms = (xs) => `${pct(xs, 50).toFixed(1)} / ${pct(xs, 90).toFixed(1)}`;
  const latency = `send ${ms(rtt.send)}, receive ${ms(rtt.receive)}, delete ${ms(rtt.delete)} ms`;
  return { send, receive, delete: del, cycle, perReceive: n / receives, latency };
}

// ---- RabbitMQ: durable queue, persistent messages, publisher confirms, manual acks ----------------

async function startRabbit() {
  const bin = '/usr/lib/rabbitmq/bin/rabbitmq-server';
  if (spawnSync('test', ['-x', bin]).status !== 0)
    throw new Error(`${bin} not found: apt-get install -y rabbitmq-server`);
  const dir = join(tmp, 'rabbitmq');
  mkdirSync(join(dir, 'mnesia'), { recursive: true });
  mkdirSync(join(dir, 'log'), { recursive: true });
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  const port = await freePort();
  const dist = await freePort();
  const node = `yhbench${process.pid}@localhost`;
  const env = {
    ...process.env,
    HOME: dir,
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(dist),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_CONFIG_FILE: join(dir, 'none'),
  };
  const child = spawn(bin, [], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    out += d;
  });
  const end = Date.now() + 120_000;
  while (!out.includes('Starting broker... completed')) {
    if (Date.now() > end || child.exitCode !== null)
      throw new Error(`rabbitmq-server did not start:\n${out}`);
    await sleep(100);
  }
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    spawnSync('/usr/lib/rabbitmq/bin/rabbitmqctl', ['-n', node, 'stop'], { env, stdio: 'ignore' });
  };
  stoppers.push(stop);
  return { url: `amqp://guest:guest@127.0.0.1:${port}`, stop };
}

async function benchRabbit(amqp, url, c, run) {
  const conn = await amqp.connect(url);
  const queue = `bench-${c}-${run}`;
  const setup = await conn.createChannel();
  await setup.assertQueue(queue, { durable: true });
  const content = (i) => Buffer.from(body(i));
  const publishers = await Promise.all(Array.from({ length: c }, () => conn.createConfirmChannel()));
  const publish = async (claim, w) => {
    const ch = publishers[w];
    for (let b = claim(); b; b = claim()) {
      for (let i = b[0]; i < b[1]; i++) ch.sendToQueue(queue, content(i), { persistent: true });
      await ch.waitForConfirms();
    }
  };
  const send = await timed(N, c, publish);

  // receive: deliveries (prefetch 10 per consumer) until N arrived, unacked; delete: acks of 10.
  const consumers = await Promise.all(Array.from({ length: c }, () => conn.createChannel()));
  const held = consumers.map(() => []);
  let got = 0;
  let resolveAll;
  const allIn = new Promise((r) => {
    resolveAll = r;
  });
  const t0 = process.hrtime.bigint();
  for (const [w, ch] of consumers.entries()) {
    await ch.prefetch(0);
    await ch.consume(queue, (m) => {
      if (m === null) return; // the broker cancelled the consumer (queue deleted)
      held[w].push(m);
      if (++got === N) resolveAll();
    });
  }
  await allIn;
  const receive = N / (Number(process.hrtime.bigint() - t0) / 1e9);
  const t1 = process.hrtime.bigint();
  await Promise.all(
    consumers.map(async (ch, w) => {
      const msgs = held[w];
      for (let i = 9; i < msgs.length; i += 10) ch.ack(msgs[i], true);
      if (msgs.length % 10 !== 0) ch.ack(msgs[msgs.length - 1], true);
      await ch.checkQueue(queue); // a round trip after the acks: the broker has processed them
    }),
  );
  const del = N / (Number(process.hrtime.bigint() - t1) / 1e9);
  for (const ch of consumers) await ch.close();

  // Full cycle: publishers with confirms and consumers (prefetch 10, ack per batch of 10) at once.
  const cycleConsumers = await Promise.all(Array.from({ length: c }, () => conn.createChannel()));
  let consumed = 0;
  let doneCycle;
  const cycleDone = new Promise((r) => {
    doneCycle = r;
  });
  const t2 = process.hrtime.bigint();
  for (const ch of cycleConsumers) {
    await ch.prefetch(10);
    let n = 0;
    await ch.consume(queue, (m) => {
      if (m === null) return; // the broker cancelled the consumer (queue deleted)
      if (++n % 10 === 0) ch.ack(m, true);
      if (++consumed === N) doneCycle();
    });
  }
  await timed(N, c, publish);
  await cycleDone;
  const cycle = N / (Number(process.hrtime.bigint() - t2) / 1e9);
  await setup.deleteQueue(queue);
  await conn.close();
  return { send, receive, delete: del, cycle };
}

// ---- run -----------------------------------------------------------------------------------------

const fmt = (x) => (x === undefined ? '-' : Math.round(x).toLocaleString('en-US'));
/** `on CPU% / waiting%` of a thread over a phase. */
const loopShare = (run, wait) =>
  (run === undefined ? '-' : `${run.toFixed(0)}% / ${wait.toFixed(0)}%`).padStart(14);
/** `total (of which kernel)` µs per message. */
const cpuCell = (all, sys) =>
  (all === undefined ? '-' : `${all.toFixed(1)} (${sys.toFixed(0)})`).padStart(14);
const results = [];
const yunhai = await startYunhai();
if (CLIENT === 'lean') checkLeanSigning(yunhai.endpoint, yunhai.creds);
const client = SQS_CLIENTS[CLIENT](yunhai.endpoint, yunhai.creds);
let rabbit;
let amqp;
if (!SKIP_RABBIT) {
  rabbit = await startRabbit();
  amqp = (await import('amqplib')).default;
}
console.log(
  `bench/sqs: ${N} messages of ${body(0).length} bytes per phase, batches of 10, ${CLIENT} client, node ${process.version}, ` +
    `load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
);
if (WARMUP > 0) await benchSqs(client, 4, 'warm', 'warm:', WARMUP);
for (const [run, c] of LEVELS.entries()) {
  const disk = diskSyncMs();
  const y = await benchSqs(client, c, run);
  const r = rabbit ? await benchRabbit(amqp, rabbit.url, c, run) : undefined;
  results.push({ c, y, r });
  console.log(
    `  concurrency ${c}: yunhai cycle ${fmt(y.cycle)} msg/s (${y.perReceive.toFixed(1)} messages per ReceiveMessage; ` +
      `round trips p50 / p90: ${y.latency})${r ? `, rabbitmq cycle ${fmt(r.cycle)} msg/s` : ''}; ` +
      `disk fdatasync before this level p50 ${disk.p50.toFixed(1)} / p90 ${disk.p90.toFixed(1)} / max ${disk.max.toFixed(0)} ms`,
  );
}
client.close();
rabbit?.stop();
yunhai.child.kill('SIGTERM');
if (CPU_PROF || FLOOR)
  await new Promise((r) => (yunhai.child.exitCode !== null ? r() : yunhai.child.once('exit', r)));
if (FLOOR) {
  // The floor server on a copy of the database Yunhai just closed (its schema), same client and levels.
  const file = join(tmp, 'floor.db');
  copyFileSync(join(yunhai.dataDir, 'yunhai.db'), file);
  const port = await freePort();
  const floor = await startFloor('sqs-floor-server.js', [file, String(port), yunhai.creds.secretAccessKey]);
  children.push(floor.child);
  serverPid = floor.pid;
  const floorClient = SQS_CLIENTS[CLIENT](`http://127.0.0.1:${port}`, yunhai.creds);
  if (WARMUP > 0) await benchSqs(floorClient, 4, 'warm', 'floor-warm:', WARMUP);
  for (const [run, c] of LEVELS.entries()) {
    const f = await benchSqs(floorClient, c, run, 'floor:');
    results[run].f = f;
    console.log(
      `  concurrency ${c}: the floor server's cycle ${fmt(f.cycle)} msg/s (round trips p50 / p90: ${f.latency})`,
    );
  }
  floorClient.close();
  await floor.stop();
}

console.log(
  '\nmessages per second (higher is better); CPU µs per message of the yunhai server and of this client\n' +
    '(in brackets: of which in the kernel);\n' +
    "the server's and this client's event-loop threads: % of the phase on a CPU / % runnable but waiting for one",
);
console.log(
  [
    'conc',
    'phase',
    'yunhai (sqs)',
    'rabbitmq',
    'ratio',
    'server µs',
    'client µs',
    'server loop',
    'client loop',
    'floor',
    'floor µs',
  ]
    .map((h, i) => (i < 2 ? h.padEnd(8) : h.padStart(14)))
    .join(''),
);
for (const { c, y, r, f } of results) {
  for (const phase of ['send', 'receive', 'delete', 'cycle']) {
    const ratio = r ? (y[phase] / r[phase]).toFixed(2) : '-';
    console.log(
      [
        String(c).padEnd(8),
        phase.padEnd(8),
        fmt(y[phase]).padStart(14),
        fmt(r?.[phase]).padStart(14),
        ratio.padStart(14),
        cpuCell(cpuPerMessage[`${c}/${phase}`]?.server, cpuPerMessage[`${c}/${phase}`]?.serverSys),
        cpuCell(cpuPerMessage[`${c}/${phase}`]?.client, cpuPerMessage[`${c}/${phase}`]?.clientSys),
        loopShare(cpuPerMessage[`${c}/${phase}`]?.loopRun, cpuPerMessage[`${c}/${phase}`]?.loopWait),
        loopShare(cpuPerMessage[`${c}/${phase}`]?.clientRun, cpuPerMessage[`${c}/${phase}`]?.clientWait),
        fmt(f?.[phase]).padStart(14),
        cpuCell(
          cpuPerMessage[`floor:${c}/${phase}`]?.server,
          cpuPerMessage[`floor:${c}/${phase}`]?.serverSys,
        ),
      ].join(''),
    );
  }
}
const best = Math.max(...results.map((x) => x.y.cycle));
const rabbitBest = results.some((x) => x.r) ? Math.max(...results.map((x) => x.r?.cycle ?? 0)) : undefined;
console.log(
  `\ntarget: full cycle >= 20,000 msg/s (best ${fmt(best)}: ${best >= 20_000 ? 'met' : 'NOT met'})` +
    (rabbitBest !== undefined
      ? `; at least RabbitMQ's (${fmt(rabbitBest)}: ${best >= rabbitBest ? 'met' : 'NOT met'})`
      : '') +
    (results.some((x) => x.f)
      ? `; the floor server's best cycle: ${fmt(Math.max(...results.map((x) => x.f?.cycle ?? 0)))}`
      : ''),
);
