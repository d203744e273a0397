import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import {
  endpointsOf,
  ensureBuilt,
  killLeftoverVms,
  startUp,
  type UpProcess,
  waitFor,
} from '../../src/test-support/up-process.js';

/**
 * What the portal's browser tests share: a real `yunhai up` (the built CLI, serving the built
 * portal), Debian's chromium driven by playwright-core, sign-in, and screenshots under
 * test/e2e/screenshots/ for a person to look at.
 */

const root = join(import.meta.dirname, '..', '..');
export const CHROMIUM = process.env.YUNHAI_CHROMIUM ?? '/usr/bin/chromium';
export const HAS_CHROMIUM = existsSync(CHROMIUM);
export const SCREENSHOTS = join(import.meta.dirname, 'screenshots');

const newest = (dir: string): number =>
  Math.max(
    0,
    ...readdirSync(dir, { withFileTypes: true }).map((e) =>
      e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs,
    ),
  );

/** Builds the server (when src/ changed) and the portal (when web/ changed) as `npm run build` does. */
export function ensurePortalBuilt(): void {
  ensureBuilt();
  const index = join(root, 'dist', 'web', 'index.html');
  if (!existsSync(index) || newest(join(root, 'web')) > statSync(index).mtimeMs) {
    execFileSync(
      process.execPath,
      [
        join(root, 'node_modules', 'vite', 'bin', 'vite.js'),
        'build',
        '--config',
        'web/vite.config.ts',
        '--logLevel',
        'warn',
      ],
      { cwd: root, stdio: 'inherit' },
    );
  }
}

export interface Portal {
  up: UpProcess;
  dataDir: string;
  url: string;
  endpoints: Record<string, string>;
  rootPassword: string;
  browser: Browser;
}

export async function startPortal(dataDir: string): Promise<Portal> {
  ensurePortalBuilt();
  const up = startUp(dataDir);
  await waitFor(() => up.output().includes('Ready in'), 60_000);
  const endpoints = endpointsOf(dataDir);
  const creds = JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8')) as { password: string };
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  return { up, dataDir, url: endpoints.portal!, endpoints, rootPassword: creds.password, browser };
}

export async function stopPortal(p: Portal | undefined): Promise<void> {
  if (!p) return;
  await p.browser.close().catch(() => {});
  p.up.child.kill('SIGTERM');
  await Promise.race([p.up.exited, new Promise((r) => setTimeout(r, 30_000))]);
  if (p.up.child.exitCode === null) p.up.child.kill('SIGKILL');
  killLeftoverVms(p.dataDir);
}

/** A fresh browser context (its own cookies) at desktop size, in the given browser language. */
export async function newPage(
  p: Portal,
  opts: { locale?: string; width?: number; height?: number } = {},
): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await p.browser.newContext({
    viewport: { width: opts.width ?? 1280, height: opts.height ?? 800 },
    locale: opts.locale ?? 'en-US',
    acceptDownloads: true,
  });
  // The CI machines have 2 shared cores: page loads and API calls get generous time.
  context.setDefaultTimeout(60_000);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return { context, page, errors };
}

export async function signIn(page: Page, p: Portal, username: string, password: string): Promise<void> {
  await page.goto(`${p.url}/login`);
  await page.locator('#username').fill(username);
  await page.locator('#password').fill(password);
  await page.locator('button[type=submit]').click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'), { waitUntil: 'commit' });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** A JSON call to the REST API with a bearer token (set-up steps the tests are not about). */
export async function rest(p: Portal, token: string, method: string, path: string, body?: unknown) {
  const r = await fetch(`${p.endpoints.api}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : undefined };
}

export async function tokenFor(p: Portal, username: string, password: string): Promise<string> {
  const r = await fetch(`${p.endpoints.api}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (r.status !== 200) throw new Error(`sign-in of ${username} failed: ${r.status}`);
  return ((await r.json()) as { token: string }).token;
}

/** Every key of a locale file, flattened with dots. */
export function localeKeys(obj: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(obj).flatMap(([k, v]) =>
    v !== null && typeof v === 'object'
      ? localeKeys(v as Record<string, unknown>, `${prefix}${k}.`)
      : [`${prefix}${k}`],
  );
}

export const readLocale = (lang: 'en' | 'zh-CN') =>
  JSON.parse(readFileSync(join(root, 'web', 'src', 'locales', `${lang}.json`), 'utf8')) as Record<
    string,
    unknown
  >;

/**
 * Clicks `trigger` until `expected` shows. On a loaded machine a click can land while the page
 * re-renders (the popup never opens); each try waits `perTry` ms before clicking again, the last
 * one `timeout` ms. An API error toast ends the wait at once with the API's message, so a real
 * failure is reported, not retried away.
 */
export async function clickUntil(
  page: Page,
  trigger: Locator,
  expected: Locator,
  opts: { tries?: number; perTry?: number; timeout?: number } = {},
): Promise<void> {
  const tries = opts.tries ?? 4;
  const perTry = opts.perTry ?? 10_000;
  const apiError = page.locator('.ant-message-error');
  for (let i = 1; i <= tries; i++) {
    // A slow popup may have opened after the last try gave up: clicking again would close it.
    if (i > 1 && (await expected.first().isVisible())) return;
    await trigger.click({ timeout: opts.timeout ?? 60_000 });
    const wait = i === tries ? (opts.timeout ?? 60_000) : perTry;
    const shown = await Promise.race([
      expected
        .first()
        .waitFor({ state: 'visible', timeout: wait })
        .then(
          () => 'shown' as const,
          () => 'timeout' as const,
        ),
      apiError
        .first()
        .waitFor({ state: 'visible', timeout: wait })
        .then(
          () => 'error' as const,
          () => 'timeout' as const,
        ),
    ]);
    if (shown === 'shown') return;
    if (shown === 'error')
      throw new Error(`the API answered an error: ${await apiError.first().textContent()}`);
  }
  throw new Error(`${expected} did not show after ${tries} clicks on ${trigger}`);
}

/**
 * Picks an option of the antd Select of form field `field`: waits for the select, opens its
 * dropdown (clicking again if it did not open), waits for the option (its data comes from an
 * API call) and checks it was selected.
 */
export async function pickOption(page: Page, field: string, option?: string | RegExp): Promise<void> {
  const select = page.locator(`.ant-select:has(#${field})`);
  await select.waitFor({ state: 'visible', timeout: 60_000 });
  const dropdown = page.locator(`.ant-select-dropdown:has([id="${field}_list"])`);
  await clickUntil(page, select, dropdown, { perTry: 5_000 });
  const opt = dropdown.locator('.ant-select-item-option', option ? { hasText: option } : {}).first();
  await opt.waitFor({ state: 'visible', timeout: 60_000 });
  await opt.click();
  await select.locator('.ant-select-selection-item').first().waitFor({ timeout: 30_000 });
}
