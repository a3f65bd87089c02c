// HttpClient: the HTTP(S) side every URL remote shares (HttpRemote for plain file servers,
// WebdavRemote for WebDAV): one undici Pool (keep-alive, bounded connections, `pool.request`:
// the fastest client measured in RESEARCH.md, no web streams, no per-chunk copies), the
// credentials, the timeouts, the URL of a remote path, and the two read paths: a ranged GET on
// this thread (`read`) and the transfer threads (`readToFile`). A remote adds what its protocol
// lists and writes; the bytes of a read are fetched and checked the same way for all of them.
//
// Invariants:
// - Reads never return bytes of a version other than `expect`: If-Range carries the expected
//   strong ETag (or Last-Modified date), and the response's status, Content-Range, ETag, size
//   and body length are all checked (range-response.ts); anything off is a RemoteError.
// - Every request carries the caller's signal; aborting destroys the response promptly.
// - Credentials live only in a private header value: never in `id`, logs or errors (the id and
//   every request path are built from the URL with its userinfo removed).
import { Pool, type Dispatcher } from 'undici';
import { availableParallelism } from 'node:os';
import type { Logger } from '../../observability/logger.js';
import { silentLogger } from '../../observability/logger.js';
import type { FileTransfer, ReadRangeOptions, ReadToFileOptions, RemoteReadStream } from '../remote.js';
import { RemoteError, abortError } from '../remote-error.js';
import { encodePathSegment, splitPath } from '../names.js';
import { countedBody, discardBody } from './counted-body.js';
import { mapRequestError } from './http-errors.js';
import { checkRangeResponse, isDataStatus, rangeRequestHeaders } from './range-response.js';
import { HTTP_TIMEOUT_DEFAULTS, type HttpTimeouts } from './timeouts.js';
import { TransferPool, type TransferPoolOptions } from './transfer-pool.js';

export interface HttpCredentials {
  username: string;
  password: string;
}

export interface HttpClientOptions {
  /** Directory URL of the remote root, e.g. "https://host/files/". User info is taken as credentials. */
  baseUrl: string;
  /** Most concurrent connections to the origin. Default 8. */
  connections?: number;
  timeouts?: Partial<HttpTimeouts>;
  /** Wins over the URL's user info. */
  credentials?: HttpCredentials;
  logger?: Logger;
  /** Extra trusted CA certificates (PEM); verification itself is always on. */
  ca?: string | Buffer | readonly (string | Buffer)[];
  /**
   * Worker threads for `readToFile` transfers. Default: one per core beyond the first, at
   * most 2 (the main thread keeps a core for the FUSE loop; each thread costs ~50 MiB RSS).
   */
  transferThreads?: number;
  /** If-Range may carry a Last-Modified date (see rangeRequestHeaders). Default true. */
  dateIfRange?: boolean;
}

export interface HttpRequest {
  method: Dispatcher.HttpMethod;
  urlPath: string;
  headers?: Record<string, string>;
  signal: AbortSignal;
  /** For errors and logs: what the request does ("stat /a/b"). Never holds credentials. */
  what: string;
  body?: Dispatcher.DispatchOptions['body'];
}

const DRAIN_LIMIT_BYTES = 64 * 1024;
/** A transfer thread reports written bytes at least this often (and whenever it idles). */
const TRANSFER_REPORT_BYTES = 1024 * 1024;

export class HttpClient {
  /** The base URL without credentials, query or fragment, ending in '/'. */
  readonly baseHref: string;
  readonly origin: string;
  /** Path of the root directory on the server, percent-encoded, ending in '/'. */
  readonly basePath: string;
  readonly logger: Logger;
  readonly #pool: Pool;
  readonly #authorization: string | undefined;
  readonly #dateIfRange: boolean;
  readonly #transferSetup: Omit<TransferPoolOptions, 'logger'>;
  #transfers: TransferPool | undefined;
  #closed = false;

  /** `logId` names the remote in every log line of this client (its id, without credentials). */
  constructor(options: HttpClientOptions, logId: (baseHref: string) => string) {
    const url = new URL(options.baseUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new RemoteError('invalid', `needs an http(s) URL, got ${url.protocol}`);
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
    this.baseHref = url.href;
    this.origin = url.origin;
    this.basePath = url.pathname;
    this.#authorization =
      credentials === undefined ? undefined : `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`;
    this.#dateIfRange = options.dateIfRange ?? true;
    this.logger = (options.logger ?? silentLogger()).child({ remote: logId(url.href) });
    const timeouts = { ...HTTP_TIMEOUT_DEFAULTS, ...options.timeouts };
    const connect: { rejectUnauthorized: true; timeout: number; ca?: string | Buffer | (string | Buffer)[] } = {
      rejectUnauthorized: true,
      timeout: timeouts.connectTimeoutMs,
    };
    if (options.ca !== undefined) connect.ca = typeof options.ca === 'string' || Buffer.isBuffer(options.ca) ? options.ca : [...options.ca];
    const connections = options.connections ?? 8;
    this.#transferSetup = {
      origin: this.origin,
      threads: options.transferThreads ?? Math.min(2, Math.max(1, availableParallelism() - 1)),
      connectionsPerThread: connections,
      timeouts,
      reportEveryBytes: TRANSFER_REPORT_BYTES,
      drainLimitBytes: DRAIN_LIMIT_BYTES,
      ...(connect.ca === undefined ? {} : { ca: connect.ca }),
    };
    this.#pool = new Pool(this.origin, {
      connections,
      keepAliveTimeout: timeouts.keepAliveTimeoutMs,
      headersTimeout: timeouts.headersTimeoutMs,
      bodyTimeout: timeouts.bodyTimeoutMs,
      connect,
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** One request; errors before the response headers become RemoteErrors (http-errors.ts). */
  async request(r: HttpRequest): Promise<Dispatcher.ResponseData> {
    if (this.#closed) throw new RemoteError('unavailable', `${r.what}: remote is closed`, { retryable: false });
    if (r.signal.aborted) throw abortError(r.signal, r.what);
    const headers = { ...r.headers };
    if (this.#authorization !== undefined) headers['authorization'] = this.#authorization;
    try {
      // reset: false keeps the connection after HEAD too (undici otherwise closes it after
      // every HEAD, which would cost a TCP handshake per stat).
      return await this.#pool.request({ method: r.method, path: r.urlPath, headers, signal: r.signal, reset: false, ...(r.body === undefined ? {} : { body: r.body }) });
    } catch (err) {
      throw mapRequestError(err, r.signal, r.what);
    }
  }

  /** The percent-encoded URL path of a remote path (its segments), '/'-terminated for a directory. */
  urlPath(segs: readonly string[], dir: boolean): string {
    if (segs.length === 0) return this.basePath;
    return this.basePath + segs.map(encodePathSegment).join('/') + (dir ? '/' : '');
  }

  /** A ranged GET of [offset, offset+length) of version `expect`, checked before a body byte is trusted. */
  async read(path: string, offset: number, length: number, options: ReadRangeOptions): Promise<RemoteReadStream> {
    const { segs, what } = readTarget(path, offset, length);
    const { signal, expect } = options;
    const res = await this.request({ method: 'GET', urlPath: this.urlPath(segs, false), headers: rangeRequestHeaders(offset, length, expect, this.#dateIfRange), signal, what });
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
    const { segs, what } = readTarget(path, offset, length);
    if (this.#closed) throw new RemoteError('unavailable', `${what}: remote is closed`, { retryable: false });
    const headers = rangeRequestHeaders(offset, length, options.expect, this.#dateIfRange);
    if (this.#authorization !== undefined) headers['authorization'] = this.#authorization;
    this.#transfers ??= new TransferPool({ ...this.#transferSetup, logger: this.logger });
    return this.#transfers.start({ urlPath: this.urlPath(segs, false), headers, offset, length, filePath, what }, options);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // In-flight requests fail (as 'unavailable', not retryable): closing means nobody waits.
    await Promise.all([this.#pool.destroy(), this.#transfers?.close()]);
  }
}

/** "/a/b" for logs and errors. */
export function showPath(segs: readonly string[]): string {
  return `/${segs.join('/')}`;
}

function readTarget(path: string, offset: number, length: number): { segs: string[]; what: string } {
  const segs = splitPath(path);
  if (segs.length === 0) throw new RemoteError('invalid', 'read of the root directory');
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length <= 0) {
    throw new RemoteError('invalid', `read ${showPath(segs)}: bad range offset=${offset} length=${length}`);
  }
  return { segs, what: `read ${showPath(segs)} [${offset}, +${length})` };
}

/** Consumes a small body so the connection can be reused; big or failing bodies are destroyed. */
export async function drain(body: Dispatcher.ResponseData['body']): Promise<void> {
  try {
    await body.dump({ limit: DRAIN_LIMIT_BYTES });
  } catch {
    discardBody(body);
  }
}

async function* emptyBody(): AsyncGenerator<Uint8Array, void, undefined> {
  // An empty read: nothing to yield.
}
