// Shared by the bench scripts: the repo root, command-line options, percentiles, the build check.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** `--name value` from the command line, else `dflt`. */
export function opt(name, dflt) {
  const args = process.argv.slice(2);
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
}

/** The p-th percentile of `xs` (nearest rank). */
export function pct(xs, p) {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Exits with a hint when `dist/<file>` is missing. */
export function requireBuilt(bench, file = 'cli/main.js') {
  if (!existsSync(join(root, 'dist', file))) {
    console.error(`${bench}: run \`npm run build\` first`);
    process.exit(1);
  }
}
