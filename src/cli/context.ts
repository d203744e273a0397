import { stderr, stdin, stdout } from 'node:process';

/**
 * Where a CLI run reads and writes. Commands never touch process.stdout/stdin directly, so the whole
 * command tree can run in-process (tests) with captured output.
 */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** stdin and stdout are a terminal: prompts and confirmations are allowed. */
  interactive: boolean;
  /** stderr is a terminal: transient progress lines are allowed. */
  errIsTTY: boolean;
  /** Terminal width for tables; undefined = never truncate (pipes, files). */
  columns?: number;
  /** Reads one line from the terminal; `hidden` turns echo off (passwords). Only when interactive. */
  prompt?(question: string, opts?: { hidden?: boolean }): Promise<string>;
  /** Reads standard input to its end (`--user-data -`); undefined when there is none to read. */
  readStdin?(): Promise<string>;
}

/** Everything a command needs besides its own options. */
export interface CliContext {
  env: NodeJS.ProcessEnv;
  io: CliIo;
  /** Directory relative paths (--data-dir, ./yunhai-data) are resolved against. */
  cwd: string;
  /** fetch used by the API client (tests may swap it). */
  fetch: typeof fetch;
  /** Set by a command that finished but must report a non-zero status (e.g. 4 = audit chain broken). */
  exitCode?: number;
}

/** Reads a line from the terminal in raw mode; with `hidden`, typed characters are not echoed. */
function promptTerminal(question: string, opts: { hidden?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    stderr.write(question);
    const wasRaw = stdin.isRaw;
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    let value = '';
    const finish = (err?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(wasRaw);
      stdin.pause();
      stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003' || ch === '\u0004') return finish(new Error('cancelled'));
        if (ch === '\u007f' || ch === '\b') {
          if (value.length > 0) {
            value = [...value].slice(0, -1).join('');
            if (!opts.hidden) stderr.write('\b \b');
          }
          continue;
        }
        if (ch < ' ') continue;
        value += ch;
        if (!opts.hidden) stderr.write(ch);
      }
    };
    stdin.on('data', onData);
  });
}

/** Reads all of stdin as UTF-8. */
async function readAllStdin(): Promise<string> {
  if (stdin.isTTY) stderr.write('(reading standard input; end with Ctrl-D)\n');
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** The real terminal. */
export function processIo(): CliIo {
  const interactive = Boolean(stdin.isTTY && stdout.isTTY);
  return {
    out: (text) => stdout.write(text),
    err: (text) => stderr.write(text),
    interactive,
    errIsTTY: Boolean(stderr.isTTY),
    columns: stdout.isTTY ? stdout.columns : undefined,
    prompt: stdin.isTTY ? promptTerminal : undefined,
    readStdin: readAllStdin,
  };
}

/** An io that records everything written, for tests and embedding. */
export function captureIo(overrides: Partial<CliIo> = {}): CliIo & { stdout(): string; stderr(): string } {
  let out = '';
  let err = '';
  return {
    out: (text) => {
      out += text;
    },
    err: (text) => {
      err += text;
    },
    interactive: false,
    errIsTTY: false,
    ...overrides,
    stdout: () => out,
    stderr: () => err,
  };
}
