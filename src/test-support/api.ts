import { execFileSync } from 'node:child_process';

/** A JSON request to the REST API with a bearer token; answers the status and the parsed body. */
// biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON the API answered
type Json = any;

export async function apiRequest(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Json }> {
  const res = await fetch(base + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

/** Signs in with a password and returns the session token. */
export async function loginToken(base: string, username: string, password: string): Promise<string> {
  const res = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  return ((await res.json()) as { token: string }).token;
}

/** Polls `fn` until it returns something other than undefined, or fails after `ms`. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  ms = 120_000,
  everyMs = 200,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Whether QEMU is installed here (real-VM tests run when it is, and always in CI). */
export const HAS_QEMU = (() => {
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

export const runRealVmTests = HAS_QEMU || process.env.CI === 'true';
