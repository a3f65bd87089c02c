// The demo's embedded HTTP server on 127.0.0.1: a generated dataset served the way a real
// static server does it (nginx-style JSON listings, HEAD, Range with If-Range, ETag and
// Last-Modified), so the demo exercises the real http remote end to end.
// Dataset: /ramp.bin (1 GiB, byte i = f(i), from a 1 MiB pattern), /many/ (10,000 small files),
// /nested/a/b/readme.txt, /hello.txt.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

const MiB = 1024 * 1024;
const PATTERN = Buffer.alloc(MiB);
for (let i = 0; i < MiB; i++) PATTERN[i] = (i * 2654435761) >>> 24;
const MTIME = Date.UTC(2026, 0, 1);

interface DemoFile {
  size: number;
  bytes(start: number, end: number): Buffer;
}

const text = (s: string): DemoFile => {
  const b = Buffer.from(s);
  return { size: b.length, bytes: (a, e) => b.subarray(a, e) };
};

function buildDataset(): Map<string, DemoFile | 'dir'> {
  const m = new Map<string, DemoFile | 'dir'>();
  m.set('/', 'dir');
  m.set('/ramp.bin', {
    size: 1024 * MiB,
    bytes: (a, e) => {
      const out = Buffer.allocUnsafe(e - a);
      for (let pos = a; pos < e; ) {
        const within = pos % MiB;
        const n = Math.min(MiB - within, e - pos);
        PATTERN.copy(out, pos - a, within, within + n);
        pos += n;
      }
      return out;
    },
  });
  m.set('/hello.txt', text('Hello from the fusestream demo server.\n'));
  m.set('/many/', 'dir');
  for (let i = 0; i < 10_000; i++) m.set(`/many/file-${String(i).padStart(5, '0')}.txt`, text(`file ${i}\n`));
  for (const d of ['/nested/', '/nested/a/', '/nested/a/b/']) m.set(d, 'dir');
  m.set('/nested/a/b/readme.txt', text('three levels down\n'));
  return m;
}

export interface DemoServer {
  url: string;
  close(): Promise<void>;
}

export async function startDemoServer(): Promise<DemoServer> {
  const data = buildDataset();
  const listing = (dir: string): string => {
    const out: object[] = [];
    for (const [p, v] of data) {
      if (p === dir || !p.startsWith(dir)) continue;
      const rest = p.slice(dir.length);
      const name = rest.endsWith('/') ? rest.slice(0, -1) : rest;
      if (name.includes('/')) continue;
      const mtime = new Date(MTIME).toUTCString();
      out.push(v === 'dir' ? { name, type: 'directory', mtime } : { name, type: 'file', mtime, size: v.size });
    }
    return JSON.stringify(out);
  };
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://demo').pathname);
    const v = data.get(path);
    if (v === undefined) {
      if (data.get(`${path}/`) === 'dir') res.writeHead(301, { location: `${path}/`, 'content-length': '0' }).end();
      else res.writeHead(404, { 'content-length': '0' }).end();
      return;
    }
    if (v === 'dir') {
      const body = Buffer.from(listing(path));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const etag = `"demo-${v.size.toString(16)}"`;
    const lastModified = new Date(MTIME).toUTCString();
    const headers: Record<string, string> = { etag, 'last-modified': lastModified, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    let start = 0;
    let end = v.size;
    let status = 200;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    // If-Range may carry either validator (RFC 9110 §13.1.5).
    if (m && (ifRange === undefined || ifRange === etag || ifRange === lastModified)) {
      start = Number(m[1]);
      end = m[2] === '' ? v.size : Math.min(v.size, Number(m[2]) + 1);
      if (start >= v.size || end <= start) {
        res.writeHead(416, { 'content-range': `bytes */${v.size}`, 'content-length': '0' }).end();
        return;
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${end - 1}/${v.size}`;
    }
    headers['content-length'] = String(end - start);
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    // Stream in 1 MiB pieces with backpressure, so a 1 GiB answer never sits in memory.
    let pos = start;
    const pump = (): void => {
      while (pos < end) {
        const n = Math.min(MiB, end - pos);
        const ok = res.write(v.bytes(pos, pos + n));
        pos += n;
        if (!ok) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    res.on('close', () => (pos = end));
    pump();
  };
  const server: Server = createServer(handle);
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('demo server has no port');
  return {
    url: `http://127.0.0.1:${addr.port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
