#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (npm run build:ts).
import('../dist/cli/index.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('droptrace: dist/ is missing; run `npm run build` first');
    process.exit(1);
  }
  throw err;
});
