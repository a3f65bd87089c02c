// HttpRemote: a read-only Remote over a plain HTTP(S) file server (nginx autoindex, Apache,
// python http.server): its index pages as listings, HEAD (or a one-byte range probe) as stat.
// The client itself (pool, credentials, timeouts, ranged reads, transfer threads) is the
// shared HttpClient (http-client.ts).
//
// Invariants:
// - Reads never return bytes of a version other than `expect`: If-Range carries the expected
//   strong ETag (or Last-Modified date), and the response's status, Content-Range, ETag, size
//   and body length are all checked; anything off is a RemoteError, never short or wrong data.
// - Every request carries the caller's signal; aborting destroys the socket's response promptly.
// - Error bodies are drained (bounded) so keep-alive connections survive 404s.
// - Credentials live only in a private header value: never in `id`, logs or errors.
// - Names from listings pass validateName; refused names are logged and skipped.
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from '../../observability/logger.js';
import type { FileTransfer, ReadRangeOptions, ReadToFileOptions, Remote, RemoteCapabilities, RemoteEntry, RemoteReadStream, RemoteStat } from '../remote.js';
import { RemoteError } from '../remote-error.js';
import { splitPath } from '../names.js';
import { discardBody, readText } from './counted-body.js';
import { HttpClient, drain, showPath, type HttpClientOptions } from './http-client.js';
import { headerValue, statusError } from './http-errors.js';
import { parseListing } from './listing/parse-listing.js';
import { contentLength, fingerprintOf, isRedirect, parseContentRange, unsatisfiedTotal } from './range-response.js';

export type { HttpCredentials } from './http-client.js';

export interface HttpRemoteOptions extends HttpClientOptions {
  /** Largest directory index accepted. Default 64 MiB. */
  maxListingBytes?: number;
}

export class HttpRemote implements Remote {
  readonly id: string;
  readonly #http: HttpClient;
  readonly #logger: Logger;
  readonly #maxListingBytes: number;
  #sawJsonListing = false;
  #sawOtherListing = false;

  constructor(options: HttpRemoteOptions) {
    this.#http = new HttpClient(options, (href) => href);
    this.id = this.#http.baseHref;
    this.#logger = this.#http.logger;
    this.#maxListingBytes = options.maxListingBytes ?? 64 * 1024 * 1024;
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
    const parsed = parseListing(headerValue(res.headers, 'content-type'), text, new URL(urlPath, this.#http.origin));
    if (parsed.exact) this.#sawJsonListing = true;
    else this.#sawOtherListing = true;
    for (const r of parsed.refused) {
      this.#logger.warn({ dir: segs.join('/'), href: r.raw, reason: r.reason }, 'refused a name in a directory listing');
    }
    return parsed.entries;
  }

  read(path: string, offset: number, length: number, options: ReadRangeOptions): Promise<RemoteReadStream> {
    return this.#http.read(path, offset, length, options);
  }

  /** On a transfer thread: see HttpClient.readToFile. */
  readToFile(path: string, offset: number, length: number, filePath: string, options: ReadToFileOptions): FileTransfer {
    return this.#http.readToFile(path, offset, length, filePath, options);
  }

  close(): Promise<void> {
    return this.#http.close();
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
        target = new URL(location, new URL(urlPath, this.#http.origin));
      } catch {
        target = undefined;
      }
      if (target !== undefined && target.origin === this.#http.origin && target.pathname === `${urlPath}/`) {
        return { name, type: 'dir', size: 0 };
      }
    }
    throw new RemoteError('protocol', `${what}: redirect elsewhere (${location ?? 'no Location'}), not followed`, { retryable: false });
  }

  #request(method: 'GET' | 'HEAD', urlPath: string, headers: Record<string, string>, signal: AbortSignal, what: string): Promise<Dispatcher.ResponseData> {
    return this.#http.request({ method, urlPath, headers, signal, what });
  }

  #urlPath(segs: readonly string[], dir: boolean): string {
    return this.#http.urlPath(segs, dir);
  }

  #show(segs: readonly string[]): string {
    return showPath(segs);
  }
}
