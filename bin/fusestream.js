#!/usr/bin/env node
// Launcher. The request loop never blocks the libuv pool (docs/ARCHITECTURE.md), but cache-file
// I/O, dns and zlib share it, so give it headroom before anything starts it.
process.env.UV_THREADPOOL_SIZE ??= '16';
const { main } = await import('../dist/src/cli/main.js');
await main(process.argv);
