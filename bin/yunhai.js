#!/usr/bin/env node
// Entry point of the `yunhai` command; the compiled CLI lives in dist/ (built by `npm ci` / `npm run build`).
import('../dist/cli/main.js').catch((e) => {
  if (e && e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('dist/cli/main.js')) {
    console.error('yunhai: not built yet; run `npm ci` (or `npm run build`) first.');
    process.exit(1);
  }
  throw e;
});
