#!/usr/bin/env node
// Stress: repeats the concurrency suites N times, each run with a random UV_THREADPOOL_SIZE
// (1-8) and a random fuzz seed base, and reports every failure with what reproduces it.
// Usage: npm run stress -- N [suite-substring...]
//   (default suites: data/, kernel/mounted, kernel/in-flight, remote/http-transfer, remote/health,
//   core/change-poller, bridge/late-open, e2e/versions, e2e/write-model, e2e/write-crash,
//   e2e/write-drain: the concurrency and race suites; the write-path ones take their seeds
//   from FUSESTREAM_FUZZ_BASE, and write-model runs twice as long and write-crash all its
//   kill points under it)
// `npm test` runs a short version (N=2) of every default suite.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const [nArg, ...filters] = process.argv.slice(2);
const n = Number(nArg ?? 10);
if (!Number.isInteger(n) || n < 1) {
  console.error('usage: npm run stress -- N [suite-substring...]');
  process.exit(2);
}
const wanted = filters.length > 0 ? filters : ['data/', 'kernel/mounted', 'kernel/in-flight', 'remote/http-transfer', 'remote/health', 'core/change-poller', 'bridge/late-open', 'e2e/versions', 'e2e/write-model', 'e2e/write-crash', 'e2e/write-drain'];
const testRoot = join(root, 'dist', 'test');
const files = readdirSync(testRoot, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.test.js') && wanted.some((w) => f.includes(w)))
  .map((f) => join(testRoot, f));
if (files.length === 0) {
  console.error(`no compiled suites match ${wanted.join(', ')} (run npm run build first)`);
  process.exit(2);
}
const failures = [];
const t0 = Date.now();
for (let i = 1; i <= n; i++) {
  const pool = 1 + Math.floor(Math.random() * 8);
  const seedBase = Math.floor(Math.random() * 1e9);
  const env = { ...process.env, UV_THREADPOOL_SIZE: String(pool), FUSESTREAM_FUZZ_BASE: String(seedBase) };
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=dot', ...files], { env, cwd: root, encoding: 'utf8' });
  const ok = r.status === 0;
  process.stdout.write(`run ${i}/${n}: UV_THREADPOOL_SIZE=${pool} FUSESTREAM_FUZZ_BASE=${seedBase} ${ok ? 'ok' : 'FAILED'}\n`);
  if (!ok) {
    failures.push({ i, pool, seedBase });
    // The failing tests by name (the dot reporter's summary; todo ones are marked "# "), then the tail.
    const names = r.stdout.split('\n').filter((l) => /^✖ /.test(l) && !/^✖ failing tests/.test(l));
    process.stdout.write(`failing: ${names.length > 0 ? `\n  ${[...new Set(names)].join('\n  ')}` : 'no test named (a file failed outside a test?)'}\n`);
    process.stdout.write(`${r.stdout.slice(-4000)}\n${r.stderr.slice(-2000)}\n`);
  }
}
const secs = Math.round((Date.now() - t0) / 1000);
process.stdout.write(`\n${n - failures.length} passed, ${failures.length} failed (${secs} s)\n`);
for (const f of failures) {
  process.stdout.write(`reproduce run ${f.i}: UV_THREADPOOL_SIZE=${f.pool} FUSESTREAM_FUZZ_BASE=${f.seedBase} node --test ${files.join(' ')}\n`);
}
process.exit(failures.length === 0 ? 0 : 1);
