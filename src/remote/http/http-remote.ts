// HttpRemote: a read-only Remote over a plain HTTP(S) file server (nginx autoindex, Apache,
// python http.server), on one undici Pool (keep-alive, bounded connections, `pool.request`:
// the fastest client measured in RESEARCH.md, no web streams, no per-chunk copies).
//
// Invariants:
// - Reads never return bytes of a version other than `expect`: If-Range carries the expected
//   strong ETag (or Last-Modified date), and the response's status, Content-Range, ETag, size
//   and body length are all checked; anything off is a RemoteError, never short or wrong data.
// - Every request carries the caller's signal; aborting destroys the socket's response promptly.
// - Error bodies are drained (bounded) so keep-alive connections survive 404s.
// - Credentials live only in a private header value: never in `id`, logs or errors.
// - Names from listings pass validateName; refused names are logged and skipped.
import { Pool, type Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Logger } from '../../observability/logger.js';
import { silentLogger } from '../../observability/logger.js';
import type { Fingerprint, ReadRangeOptions, Remote, RemoteCapabilities, RemoteEntry, RemoteReadStream, RemoteStat } from '../remote.js';
import { RemoteError } from '../remote-error.js';
import { encodePathSegment, splitPath } from '../names.js';
import { countedBody, discardBody, readText } from './counted-body.js';
import { headerValue, mapRequestError, statusError } from './http-errors.js';
import { parseListing } from './listing/parse-listing.js';

export interface HttpTimeouts {
  /** TCP+TLS connect. */
  connectTimeoutMs: number;
  /** From request sent to response headers. */
  headersTimeoutMs: number;
  /** Longest gap between two body chunks (a stall detector, not a total). */
  bodyTimeoutMs: number;
  /** How long an idle keep-alive connection is kept. */
  keepAliveTimeoutMs: number;
}

export const HTTP_TIMEOUT_DEFAULTS: Readonly<HttpTimeouts> = {
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 30_000,
  keepAliveTimeoutMs: 30_000,
};

export interface HttpCredentials {
  username: string;
  password: string;
}

export interface HttpRemoteOptions {
  /** Directory URL of the remote root, e.g. "https://host/files/". User info is taken as credentials. */
  baseUrl: string;
  /** Most concurrent connections to the origin. Default 8. */
  connections?: number;
  timeouts?: Partial<HttpTimeouts>;
  credentials?: HttpCredentials;
  logger?: Logger;
  /** Largest directory index accepted. Default 64 MiB. */
  maxListingBytes?: number;
  /** Extra trusted CA certificates (PEM); verification itself is always on. */
  ca?: string | Buffer | readonly (string | Buffer)[];
}

const DRAIN_LIMIT_BYTES = 64 * 1024;

export class HttpRemote implements Remote {
  readonly id: string;
  readonly #pool: Pool;
  readonly #origin: string;
  /** Path of the root directory on the server, percent-encoded, ending in '/'. */
  readonly #basePath: string;
  readonly #authorization: string | undefined;
  readonly #logger: Logger;
  readonly #maxListingBytes: number;
  readonly #timeouts: HttpTimeouts;
  #sawJsonListing = false;
  #sawOtherListing = false;
  #closed = false;

  constructor(options: HttpRemoteOptions) {
    const url = new URL(options.baseUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new RemoteError('invalid', `HttpRemote needs an http(s) URL, got ${url.protocol}`);
    }
    let credentials = options.credentials;
    if (credentials === undefined && (url.username !== '' || url.password !== '')) {
      credentials = { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
    }
    url.username = '';
    url.password = '';
    url.search = '';
    url.hash = '';
    if (!url.pathname.endsWith('/')) url.pathname += '/';
    this.id = url.href;
    this.#origin = url.origin;
    this.#basePath = url.pathname;
    this.#authorization =
      credentials === undefined ? undefined : `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`;
    this.#logger = (options.logger ?? silentLogger()).child({ remote: this.id });
    this.#maxListingBytes = options.maxListingBytes ?? 64 * 1024 * 1024;
    this.#timeouts = { ...HTTP_TIMEOUT_DEFAULTS, ...options.timeouts };
    const connect: { rejectUnauthorized: true; timeout: number; ca?: string | Buffer | (string | Buffer)[] } = {
      rejectUnauthorized: true,
      timeout: this.#timeouts.connectTimeoutMs,
    };
    if (options.ca !== undefined) connect.ca = typeof options.ca === 'string' || Buffer.isBuffer(options.ca) ? options.ca : [...options.ca];
    this.#pool = new Pool(this.#origin, {
      connections: options.connections ?? 8,
      keepAliveTimeout: this.#timeouts.keepAliveTimeoutMs,
      headersTimeout: this.#timeouts.headersTimeoutMs,
      bodyTimeout: this.#timeouts.bodyTimeoutMs,
      connect,
    });
  }

  /**
   * Listings carry exact sizes and mtimes only in nginx's JSON format, which is known once a
   * listing has been seen: this turns true after JSON listings and stays false if any listing
   * was HTML.
   */
  get capabilities(): RemoteCapabilities {
    return { writable: false, ranges: true, exactListing: this.#sawJsonListing && !this.#sawOtherListing };
  }

  async stat(path: string, signal: AbortSignal): Promise<RemoteStat> {
    const segs = splitPath(path);
    const name = segs[segs.length - 1] ?? '';
    if (segs.length === 0) {
      const res = await this.#request('HEAD', this.#urlPath(segs, true), {}, signal, 'stat /');
      await drain(res.body);
      if (res.statusCode >= 200 && res.statusCode < 300) return { name: '', type: 'dir', size: 0 };
      throw statusError(res.statusCode, res.headers, `stat ${this.#show(segs)}`);
    }
    const urlPath = this.#urlPath(segs, false);
    const what = `stat ${this.#show(segs)}`;
    const res = await this.#request('HEAD', urlPath, {}, signal, what);
    await drain(res.body);
    const { statusCode: status, headers } = res;
    if (status >= 200 && status < 300) {
      const size = contentLength(headers);
      if (size !== undefined) return { ...fingerprintOf(headers, size), name, type: 'file' };
      return this.#probeStat(segs, name, signal);
    }
    if (isRedirect(status)) return this.#redirectStat(urlPath, headers, name, what);
    if (status === 405 || status === 501) return this.#probeStat(segs, name, signal);
    throw statusError(status, headers, what);
  }

  async list(path: string, signal: AbortSignal): Promise<RemoteEntry[]> {
    const segs = splitPath(path);
    const urlPath = this.#urlPath(segs, true);
    const what = `list ${this.#show(segs)}/`;
    const res = await this.#request('GET', urlPath, {}, signal, what);
    if (res.statusCode < 200 || res.statusCode >= 300) {
      await drain(res.body);
      if (isRedirect(res.statusCode)) throw new RemoteError('protocol', `${what}: redirected, not followed`, { status: res.statusCode, retryable: false });
      throw statusError(res.statusCode, res.headers, what);
    }
    const text = await readText(res.body, this.#maxListingBytes, signal, what);
    const parsed = parseListing(headerValue(res.headers, 'content-type'), text, new URL(urlPath, this.#origin));
    if (parsed.exact) this.#sawJsonListing = true;
    else this.#sawOtherListing = true;
    for (const r of parsed.refused) {
      this.#logger.warn({ dir: segs.join('/'), href: r.raw, reason: r.reason }, 'refused a name in a directory listing');
    }
    return parsed.entries;
  }

  async read(path: string, offset: number, length: number, options: ReadRangeOptions): Promise<RemoteReadStream> {
    const segs = splitPath(path);
    if (segs.length === 0) throw new RemoteError('invalid', 'read of the root directory');
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length <= 0) {
      throw new RemoteError('invalid', `read ${this.#show(segs)}: bad range offset=${offset} length=${length}`);
    }
    const { signal, expect } = options;
    const what = `read ${this.#show(segs)} [${offset}, +${length})`;
    const headers: Record<string, string> = { range: `bytes=${offset}-${offset + length - 1}` };
    if (expect?.etag !== undefined && !expect.etag.startsWith('W/')) headers['if-range'] = expect.etag;
    else if (expect?.mtimeMs !== undefined) headers['if-range'] = new Date(expect.mtimeMs).toUTCString();
    const res = await this.#request('GET', this.#urlPath(segs, false), headers, signal, what);
    const { statusCode: status, headers: h, body } = res;
    try {
      if (status === 206) return this.#partial(h, body, offset, length, expect, signal, what);
      if (status === 200) return this.#whole(h, body, offset, length, expect, signal, what);
      if (status === 416) {
        const total = unsatisfiedTotal(h);
        await drain(body);
        // Reading exactly at EOF (e.g. offset 0 of an empty file) is an empty read, not an error.
        if (total !== undefined && offset === total) {
          const fp = fingerprintOf(h, total);
          if (expect !== undefined && expect.size !== total) throw new RemoteError('changed', `${what}: size is now ${total}, expected ${expect.size}`);
          return { fingerprint: fp, body: emptyBody() };
        }
        throw statusError(status, h, what);
      }
      await drain(body);
      if (isRedirect(status)) throw new RemoteError('invalid', `${what}: is a directory (redirect)`, { status, retryable: false });
      throw statusError(status, h, what);
    } catch (err) {
      discardBody(body);
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // In-flight requests fail (as 'unavailable', not retryable): closing means nobody waits.
    await this.#pool.destroy();
  }

  #partial(h: IncomingHttpHeaders, body: Readable, offset: number, length: number, expect: Fingerprint | undefined, signal: AbortSignal, what: string): RemoteReadStream {
    const cr = parseContentRange(headerValue(h, 'content-range'));
    if (cr === undefined) throw new RemoteError('protocol', `${what}: 206 without a usable Content-Range (${headerValue(h, 'content-range') ?? 'none'})`);
    const fp = fingerprintOf(h, cr.total);
    const changed = changedReason(expect, fp);
    if (changed !== undefined) throw new RemoteError('changed', `${what}: ${changed}`);
    const end = Math.min(offset + length, cr.total) - 1;
    if (cr.start !== offset || cr.end !== end) {
      throw new RemoteError('protocol', `${what}: Content-Range bytes ${cr.start}-${cr.end}/${cr.total} does not match the request (${offset}-${end})`);
    }
    const n = end - offset + 1;
    const cl = contentLength(h);
    if (cl !== undefined && cl !== n) throw new RemoteError('protocol', `${what}: Content-Length ${cl} disagrees with Content-Range (${n})`);
    return { fingerprint: fp, body: countedBody(body, n, signal, what) };
  }

  #whole(h: IncomingHttpHeaders, body: Readable, offset: number, length: number, expect: Fingerprint | undefined, signal: AbortSignal, what: string): RemoteReadStream {
    const size = contentLength(h);
    if (size === undefined) throw new RemoteError('protocol', `${what}: 200 without Content-Length for a range request`, { retryable: false });
    const fp = fingerprintOf(h, size);
    const changed = changedReason(expect, fp);
    if (changed !== undefined) throw new RemoteError('changed', `${what}: ${changed}`);
    if (offset === 0 && length >= size) return { fingerprint: fp, body: countedBody(body, size, signal, what) };
    throw new RemoteError('protocol', `${what}: server ignored the Range header (200 with ${size} bytes)`, { status: 200, retryable: false });
  }

  async #probeStat(segs: readonly string[], name: string, signal: AbortSignal): Promise<RemoteStat> {
    const urlPath = this.#urlPath(segs, false);
    const what = `stat ${this.#show(segs)} (range probe)`;
    const res = await this.#request('GET', urlPath, { range: 'bytes=0-0' }, signal, what);
    const { statusCode: status, headers, body } = res;
    if (status === 206) {
      await drain(body);
      const cr = parseContentRange(headerValue(headers, 'content-range'));
      if (cr === undefined) throw new RemoteError('protocol', `${what}: 206 without a usable Content-Range`);
      return { ...fingerprintOf(headers, cr.total), name, type: 'file' };
    }
    if (status === 200) {
      discardBody(body); // the whole object may follow; do not download it
      const size = contentLength(headers);
      if (size === undefined) throw new RemoteError('protocol', `${what}: no size in the response`, { retryable: false });
      return { ...fingerprintOf(headers, size), name, type: 'file' };
    }
    await drain(body);
    if (status === 416) {
      const total = unsatisfiedTotal(headers);
      if (total !== undefined) return { ...fingerprintOf(headers, total), name, type: 'file' };
    }
    if (isRedirect(status)) return this.#redirectStat(urlPath, headers, name, what);
    throw statusError(status, headers, what);
  }

  #redirectStat(urlPath: string, headers: IncomingHttpHeaders, name: string, what: string): RemoteStat {
    const location = headerValue(headers, 'location');
    if (location !== undefined) {
      let target: URL | undefined;
      try {
        target = new URL(location, new URL(urlPath, this.#origin));
      } catch {
        target = undefined;
      }
      if (target !== undefined && target.origin === this.#origin && target.pathname === `${urlPath}/`) {
        return { name, type: 'dir', size: 0 };
      }
    }
    throw new RemoteError('protocol', `${what}: redirect elsewhere (${location ?? 'no Location'}), not followed`, { retryable: false });
  }

  async #request(method: 'GET' | 'HEAD', urlPath: string, headers: Record<string, string>, signal: AbortSignal, what: string): Promise<Dispatcher.ResponseData> {
    if (this.#closed) throw new RemoteError('unavailable', `${what}: remote is closed`, { retryable: false });
    if (signal.aborted) throw new RemoteError('aborted', `${what}: aborted`, { cause: signal.reason });
    if (this.#authorization !== undefined) headers['authorization'] = this.#authorization;
    try {
      // reset: false keeps the connection after HEAD too (undici otherwise closes it after
      // every HEAD, which would cost a TCP handshake per stat).
      return await this.#pool.request({ method, path: urlPath, headers, signal, reset: false });
    } catch (err) {
      throw mapRequestError(err, signal, what);
    }
  }

  #urlPath(segs: readonly string[], dir: boolean): string {
    if (segs.length === 0) return this.#basePath;
    return this.#basePath + segs.map(encodePathSegment).join('/') + (dir ? '/' : '');
  }

  #show(segs: readonly string[]): string {
    return `/${segs.join('/')}`;
  }
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

function contentLength(h: IncomingHttpHeaders): number | undefined {
  const v = headerValue(h, 'content-length');
  if (v === undefined || !/^\d+$/.test(v.trim())) return undefined;
  const n = Number(v.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

function fingerprintOf(h: IncomingHttpHeaders, size: number): Fingerprint {
  const fp: Fingerprint = { size };
  const etag = headerValue(h, 'etag');
  if (etag !== undefined && etag !== '') fp.etag = etag;
  const lm = headerValue(h, 'last-modified');
  if (lm !== undefined) {
    const ms = Date.parse(lm);
    if (Number.isFinite(ms)) fp.mtimeMs = ms;
  }
  return fp;
}

/** Why `got` is not the version `expect` names, or undefined when it is (or cannot be told apart). */
function changedReason(expect: Fingerprint | undefined, got: Fingerprint): string | undefined {
  if (expect === undefined) return undefined;
  if (expect.etag !== undefined && got.etag !== undefined && expect.etag !== got.etag) return `ETag is now ${got.etag}, expected ${expect.etag}`;
  if (expect.size !== got.size) return `size is now ${got.size}, expected ${expect.size}`;
  if (expect.etag === undefined && expect.mtimeMs !== undefined && got.mtimeMs !== undefined && expect.mtimeMs !== got.mtimeMs) {
    return `Last-Modified is now ${new Date(got.mtimeMs).toISOString()}, expected ${new Date(expect.mtimeMs).toISOString()}`;
  }
  return undefined;
}

/** `bytes a-b/total` with a known total; anything else (multipart, '*') is undefined. */
export function parseContentRange(v: string | undefined): { start: number; end: number; total: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+)\s*$/i.exec(v);
  if (m === null) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = Number(m[3]);
  if (![start, end, total].every(Number.isSafeInteger) || end < start || end >= total) return undefined;
  return { start, end, total };
}

/** The total of a 416's `Content-Range: bytes *\/total`. */
function unsatisfiedTotal(h: IncomingHttpHeaders): number | undefined {
  const m = /^\s*bytes\s+\*\/(\d+)\s*$/i.exec(headerValue(h, 'content-range') ?? '');
  if (m === null) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Consumes a small body so the connection can be reused; big or failing bodies are destroyed. */
async function drain(body: Dispatcher.ResponseData['body']): Promise<void> {
  try {
    await body.dump({ limit: DRAIN_LIMIT_BYTES });
  } catch {
    discardBody(body);
  }
}

async function* emptyBody(): AsyncGenerator<Uint8Array, void, undefined> {
  // An empty read: nothing to yield.
}
