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
import { availableParallelism } from 'node:os';
import type { Logger } from '../../observability/logger.js';
import { silentLogger } from '../../observability/logger.js';
import type { FileTransfer, ReadRangeOptions, ReadToFileOptions, Remote, RemoteCapabilities, RemoteEntry, RemoteReadStream, RemoteStat } from '../remote.js';
import { RemoteError, abortError } from '../remote-error.js';
import { encodePathSegment, splitPath } from '../names.js';
import { countedBody, discardBody, readText } from './counted-body.js';
import { headerValue, mapRequestError, statusError } from './http-errors.js';
import { parseListing } from './listing/parse-listing.js';
import { checkRangeResponse, contentLength, fingerprintOf, isDataStatus, isRedirect, parseContentRange, rangeRequestHeaders, unsatisfiedTotal } from './range-response.js';
import { HTTP_TIMEOUT_DEFAULTS, type HttpTimeouts } from './timeouts.js';
import { TransferPool, type TransferPoolOptions } from './transfer-pool.js';

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
  /**
   * Worker threads for `readToFile` transfers. Default: one per core beyond the first, at
   * most 2 (the main thread keeps a core for the FUSE loop; each thread costs ~50 MiB RSS).
   */
  transferThreads?: number;
}

const DRAIN_LIMIT_BYTES = 64 * 1024;
/** A transfer thread reports written bytes at least this often (and whenever it idles). */
const TRANSFER_REPORT_BYTES = 1024 * 1024;

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
  readonly #transferSetup: Omit<TransferPoolOptions, 'logger'>;
  #transfers: TransferPool | undefined;
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
    const connections = options.connections ?? 8;
    this.#transferSetup = {
      origin: this.#origin,
      threads: options.transferThreads ?? Math.min(2, Math.max(1, availableParallelism() - 1)),
      connectionsPerThread: connections,
      timeouts: this.#timeouts,
      reportEveryBytes: TRANSFER_REPORT_BYTES,
      drainLimitBytes: DRAIN_LIMIT_BYTES,
      ...(connect.ca === undefined ? {} : { ca: connect.ca }),
    };
    this.#pool = new Pool(this.#origin, {
      connections,
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
    const { segs, what } = this.#readTarget(path, offset, length);
    const { signal, expect } = options;
    const res = await this.#request('GET', this.#urlPath(segs, false), rangeRequestHeaders(offset, length, expect), signal, what);
    const { statusCode: status, headers: h, body } = res;
    try {
      if (!isDataStatus(status)) await drain(body);
      const ok = checkRangeResponse(status, h, offset, length, expect, what);
      if (ok.bodyBytes === 0) {
        await drain(body);
        return { fingerprint: ok.fingerprint, body: emptyBody() };
      }
      return { fingerprint: ok.fingerprint, body: countedBody(body, ok.bodyBytes, signal, what) };
    } catch (err) {
      discardBody(body);
      throw err;
    }
  }

  /**
   * Transfers [offset, offset+length) into `filePath` on a transfer thread (see
   * transfer-pool.ts): the same request, checks and errors as `read`, without the body
   * crossing this thread.
   */
  readToFile(path: string, offset: number, length: number, filePath: string, options: ReadToFileOptions): FileTransfer {
    const { segs, what } = this.#readTarget(path, offset, length);
    if (this.#closed) throw new RemoteError('unavailable', `${what}: remote is closed`, { retryable: false });
    const headers = rangeRequestHeaders(offset, length, options.expect);
    if (this.#authorization !== undefined) headers['authorization'] = this.#authorization;
    this.#transfers ??= new TransferPool({ ...this.#transferSetup, logger: this.#logger });
    return this.#transfers.start({ urlPath: this.#urlPath(segs, false), headers, offset, length, filePath, what }, options);
  }

  #readTarget(path: string, offset: number, length: number): { segs: string[]; what: string } {
    const segs = splitPath(path);
    if (segs.length === 0) throw new RemoteError('invalid', 'read of the root directory');
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length <= 0) {
      throw new RemoteError('invalid', `read ${this.#show(segs)}: bad range offset=${offset} length=${length}`);
    }
    return { segs, what: `read ${this.#show(segs)} [${offset}, +${length})` };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // In-flight requests fail (as 'unavailable', not retryable): closing means nobody waits.
    await Promise.all([this.#pool.destroy(), this.#transfers?.close()]);
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
    if (signal.aborted) throw abortError(signal, what);
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
