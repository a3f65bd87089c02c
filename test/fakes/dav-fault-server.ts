// A fault-injecting WebDAV fixture on 127.0.0.1 (node:http): a test fixture, not a WebDAV
// server. Each request is offered to `intercept` first (a test answers what it wants broken:
// a 207 with broken XML, hostile hrefs, a huge multistatus, a PUT answered 507); what it does
// not take is forwarded to `upstream` (a real server, e.g. Apache mod_dav) when there is one,
// else answered 404. Every request line is recorded.
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export type Intercept = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface DavFaultServer {
  /** "http://127.0.0.1:PORT/" */
  url: string;
  origin: string;
  /** Return true when the request was answered. Replace it at any time. */
  intercept: Intercept;
  /** "METHOD /path" of every request so far. */
  readonly requests: string[];
  close(): Promise<void>;
}

export async function startDavFaultServer(upstream?: string): Promise<DavFaultServer> {
  const up = upstream === undefined ? undefined : new URL(upstream);
  const requests: string[] = [];
  const state: { intercept: Intercept } = { intercept: () => false };
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method ?? '?'} ${req.url ?? ''}`);
    if (state.intercept(req, res)) return;
    if (up === undefined) {
      req.resume();
      res.writeHead(404, { 'content-length': '0' }).end();
      return;
    }
    const fwd = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: { ...req.headers, host: up.host } }, (ures) => {
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      ures.pipe(res);
    });
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no address');
  const origin = `http://127.0.0.1:${addr.port}`;
  return {
    url: `${origin}/`,
    origin,
    get intercept() {
      return state.intercept;
    },
    set intercept(f: Intercept) {
      state.intercept = f;
    },
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A multistatus document from `<response>` bodies (each without the response element). */
export function multistatus(responses: readonly string[], prefix = 'D'): string {
  const p = prefix === '' ? '' : `${prefix}:`;
  const ns = prefix === '' ? 'xmlns="DAV:"' : `xmlns:${prefix}="DAV:"`;
  return `<?xml version="1.0" encoding="utf-8"?>\n<${p}multistatus ${ns}>${responses.map((r) => `<${p}response>${r}</${p}response>`).join('')}</${p}multistatus>`;
}

/** One response body: a file (with size) or a collection (size undefined). */
export function davEntry(href: string, size?: number, etag?: string, prefix = 'D'): string {
  const p = prefix === '' ? '' : `${prefix}:`;
  const type = size === undefined ? `<${p}resourcetype><${p}collection/></${p}resourcetype>` : `<${p}resourcetype/><${p}getcontentlength>${size}</${p}getcontentlength>`;
  const tag = etag === undefined ? '' : `<${p}getetag>${etag}</${p}getetag>`;
  return `<${p}href>${href}</${p}href><${p}propstat><${p}prop>${type}<${p}getlastmodified>Wed, 02 Dec 2026 10:00:00 GMT</${p}getlastmodified>${tag}</${p}prop><${p}status>HTTP/1.1 200 OK</${p}status></${p}propstat>`;
}

/** Answers a PROPFIND with `body` as a 207 (chunked, so a huge body streams). */
export function answer207(res: ServerResponse, body: string | Iterable<string>): void {
  res.writeHead(207, { 'content-type': 'application/xml; charset=utf-8' });
  if (typeof body === 'string') {
    res.end(body);
    return;
  }
  const it = body[Symbol.iterator]();
  const pump = (): void => {
    for (;;) {
      const n = it.next();
      if (n.done === true) {
        res.end();
        return;
      }
      if (!res.write(n.value)) {
        res.once('drain', pump);
        return;
      }
    }
  };
  pump();
}
