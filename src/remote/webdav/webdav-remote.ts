// WebdavRemote: a read-write Remote over WebDAV (RFC 4918): Apache mod_dav, nginx dav +
// dav-ext, `rclone serve webdav`, Nextcloud/ownCloud and NAS shares. Reads are the shared
// HttpClient's (ranged GET with If-Range, checked by range-response.ts, bulk on transfer
// threads); listings are PROPFIND Depth 1 (stat: Depth 0), never Depth infinity; writes are
// whole-file PUT (never a Content-Range PUT: rclone replaces the whole file with its body),
// MOVE, DELETE and MKCOL.
//
// Servers differ (RESEARCH.md, measured again by test/remote/webdav-*.test.ts), so what a
// server honours is probed once at mount (`probe`) and every write that the server would not
// check itself is checked here first:
// - If-Match / If-None-Match: * on PUT are sent always and trusted only where the probe saw a
//   412 for each. Elsewhere (nginx, rclone) a PROPFIND just before the PUT compares the
//   version (fingerprint.ts's one rule): a window of one round trip in which a concurrent
//   writer's version can be replaced (docs/SEMANTICS.md). A weak ETag (Apache, during the
//   second a file changed) is never put in If-Match (strong comparison would refuse it): the
//   check runs here then too.
// - MOVE never replaces what the write path did not mean to: `Overwrite: F` unless the target
//   was seen and may be replaced; a type mismatch (file onto directory and back) and a
//   non-empty directory target are refused before the MOVE (Apache would replace a file with a
//   directory).
// - DELETE of a collection is recursive on every server: rmdir lists the directory first
//   (Depth 1) and sends If-Match with its ETag where honoured (Apache), else the window
//   between the listing and the DELETE is left (docs/SEMANTICS.md).
// - A new version never has the fingerprint of the one it replaced: where the server gives no
//   ETag (nginx: size + a one-second mtime), a put whose result cannot be told from the
//   version it replaced is sent again in the next second.
//
// Invariants:
// - Names from a listing pass hrefs.ts: an href outside the collection, deeper than one
//   level, with '..', '.', '/' (%2F) or NUL in a name is logged and skipped, never followed.
// - A multistatus body is read streaming with bounded memory (multistatus.ts).
// - Credentials are only in HttpClient's private header: `id`, logs and errors never hold them.
// - A put's source is streamed (no whole-file buffer) with Content-Length = sizeBytes; a
//   source that yields more or less fails the put as 'invalid' before the body ends, so the
//   server sees a broken request, not a short file; a failing source's own error is rethrown.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { systemClock, type Clock } from '../../base/clock.js';
import type { Logger } from '../../observability/logger.js';
import type {
  ContentSource,
  DeleteOptions,
  FileTransfer,
  PutOptions,
  ReadRangeOptions,
  ReadToFileOptions,
  Remote,
  RemoteCapabilities,
  RemoteEntry,
  RemoteReadStream,
  RemoteStat,
  RenameOptions,
  WriteOptions,
} from '../remote.js';
import { sameVersion } from '../fingerprint.js';
import { RemoteError, isRemoteError } from '../remote-error.js';
import { splitPath } from '../names.js';
import { tempWriterGone } from '../temp-names.js';
import { HttpClient, drain, showPath, type HttpClientOptions } from '../http/http-client.js';
import { headerValue, statusError } from '../http/http-errors.js';
import { contentLength } from '../http/range-response.js';
import { readMultistatus, type DavResponse } from './multistatus.js';
import { decodedSegments, placeHref } from './hrefs.js';

export interface WebdavRemoteOptions extends HttpClientOptions {
  /** Largest PROPFIND answer accepted. Default 256 MiB (about a million entries). */
  maxListingBytes?: number;
  /** Largest single `<response>` in a PROPFIND answer. Default 1 MiB. */
  maxResponseBytes?: number;
  /** For the one-second wait of a put on a server without ETags. */
  clock?: Clock;
}

/** What the probe learnt about the server (all false until it proved otherwise). */
export interface DavTraits {
  /** The OPTIONS `DAV:` header's compliance classes ("1", "2", ...). */
  classes: string[];
  /** The probe could create, replace and delete a file. */
  writable: boolean;
  /** A PUT with a wrong If-Match was refused (412). */
  ifMatch: boolean;
  /** A PUT with If-None-Match: * over an existing file was refused (412). */
  ifNoneMatch: boolean;
  /**
   * A PUT replaces the file whole or not at all (the server writes a temp file and renames it:
   * Apache mod_dav_fs, nginx, known by their Server header). Else (rclone writes in place: a
   * broken PUT leaves a short file) puts go to a hidden temp name first and are MOVEd over.
   */
  atomicPut: boolean;
  probed: boolean;
}

/** Names of the capability probe's file; listings hide them, paths may not use them. */
export const PROBE_PREFIX = '.fusestream-probe-';
/** Names of a put's temp file on a server without atomic PUT; hidden and reserved likewise. */
export const DAV_TEMP_PREFIX = '.fusestream-davtmp-';

/** This host in temp names, so a cleanup never takes another host's live upload for stale. */
const HOST_TAG = hostname().replace(/[^A-Za-z0-9]+/g, '').slice(0, 32) || 'host';
/** Temp names of this process's puts in flight (every instance: they share the pid). */
const ourTemps = new Set<string>();

/** A temp of this host whose writer is gone (a dead pid, or ours with no put owning it). */
function isStaleTemp(name: string): boolean {
  const m = /^\.fusestream-davtmp-([A-Za-z0-9]+)-(\d+)-[0-9a-f]+$/.exec(name);
  if (m === null || m[1] !== HOST_TAG) return false;
  return tempWriterGone(Number(m[2]), ourTemps.has(name));
}

function isReservedName(name: string): boolean {
  return name.startsWith(PROBE_PREFIX) || name.startsWith(DAV_TEMP_PREFIX);
}

const PROPFIND_BODY =
  '<?xml version="1.0" encoding="utf-8"?>\n<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/></D:prop></D:propfind>';

/** An ETag no server ever gives, for the If-Match probe. */
const NEVER_ETAG = '"fusestream-probe-never-matches"';

export class WebdavRemote implements Remote {
  readonly id: string;
  readonly #http: HttpClient;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #limits: { maxBytes: number; maxResponseBytes: number };
  /** The root collection's decoded path segments on the server. */
  readonly #baseSegs: string[];
  #traits: DavTraits = { classes: [], writable: true, ifMatch: false, ifNoneMatch: false, atomicPut: false, probed: false };
  /** Whether listings have shown ETags (undefined until a file was listed or stat'ed). */
  #etags: boolean | undefined;
  /** Directories whose stale temps this instance has removed (bounded; cleaning again is only work). */
  readonly #cleanedDirs = new Set<string>();

  constructor(options: WebdavRemoteOptions) {
    this.#http = new HttpClient({ ...options, dateIfRange: false }, (href) => `webdav+${href}`);
    this.id = `webdav+${this.#http.baseHref}`;
    this.#logger = this.#http.logger;
    this.#clock = options.clock ?? systemClock;
    this.#limits = { maxBytes: options.maxListingBytes ?? 256 * 1024 * 1024, maxResponseBytes: options.maxResponseBytes ?? 1024 * 1024 };
    const base = decodedSegments(this.#http.basePath);
    if (!Array.isArray(base)) throw new RemoteError('invalid', `the URL path ${this.#http.basePath} is not usable: ${base.refused}`);
    this.#baseSegs = base;
  }

  /**
   * Before the probe (or when it could not run: an offline start), writes are allowed and
   * every condition is checked here before the write (conditionalPut false).
   */
  get capabilities(): RemoteCapabilities {
    const t = this.#traits;
    return {
      writable: t.writable,
      ranges: true,
      exactListing: true,
      // Apache's MOVE over an existing target deletes it first: not atomic.
      atomicRename: false,
      renameNoReplace: false,
      conditionalPut: t.ifMatch && t.ifNoneMatch,
      symlinks: false,
      mtimes: false,
      modes: false,
    };
  }

  get traits(): Readonly<DavTraits> {
    return this.#traits;
  }

  /**
   * Learns what the server honours (see DavTraits): OPTIONS, then a hidden probe file at the
   * root that is created, replaced under a wrong If-Match and If-None-Match: *, and deleted.
   * A server that refuses the first PUT (401, 403, 405) makes the remote read-only.
   */
  async probe(signal: AbortSignal): Promise<DavTraits> {
    const what = 'probe';
    const opt = await this.#http.request({ method: 'OPTIONS', urlPath: this.#http.basePath, signal, what: `${what} OPTIONS` });
    await drain(opt.body);
    const dav = headerValues(opt.headers, 'dav').flatMap((v) => v.split(',')).map((c) => c.trim()).filter((c) => c !== '');
    if (!dav.includes('1')) throw new RemoteError('unsupported', `${this.id} is not a WebDAV server (OPTIONS gave no "DAV: 1")`, { retryable: false });
    const server = headerValue(opt.headers, 'server') ?? '';
    const traits: DavTraits = { classes: dav, writable: false, ifMatch: false, ifNoneMatch: false, atomicPut: /^(apache|nginx)\b/i.test(server), probed: true };
    const name = `${PROBE_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`;
    const urlPath = this.#http.urlPath([name], false);
    const put = async (headers: Record<string, string>): Promise<number> => {
      const res = await this.#http.request({ method: 'PUT', urlPath, headers: { 'content-type': 'application/octet-stream', ...headers }, body: 'probe', signal, what: `${what} PUT` });
      await drain(res.body);
      return res.statusCode;
    };
    const created = await put({ 'if-none-match': '*' });
    if (created === 401 || created === 403 || created === 405) {
      this.#logger.warn({ status: created }, 'webdav: the server refuses writes at the root; mounting read-only');
    } else if (created === 507) {
      // Full now, maybe not later: writable, with every condition checked here (the defaults).
      traits.writable = true;
      this.#logger.warn('webdav: the server is full (507); writes stay queued until it has room');
    } else if (created < 200 || created > 299) {
      throw webdavStatusError(created, {}, `${what}: PUT of a probe file`);
    } else {
      traits.writable = true;
      try {
        traits.ifNoneMatch = (await put({ 'if-none-match': '*' })) === 412;
        traits.ifMatch = (await put({ 'if-match': NEVER_ETAG })) === 412;
      } finally {
        const del = await this.#http.request({ method: 'DELETE', urlPath, signal, what: `${what} DELETE` });
        await drain(del.body);
        if (del.statusCode < 200 || del.statusCode > 299) this.#logger.warn({ status: del.statusCode, name }, 'webdav: could not delete the probe file');
      }
    }
    this.#traits = traits;
    this.#logger.info({ dav: dav.join(','), server, writable: traits.writable, ifMatch: traits.ifMatch, ifNoneMatch: traits.ifNoneMatch, atomicPut: traits.atomicPut }, 'webdav: server capabilities');
    return traits;
  }

  async stat(path: string, signal: AbortSignal): Promise<RemoteStat> {
    const segs = splitPath(path);
    const what = `stat ${showPath(segs)}`;
    let self: DavResponse | undefined;
    await this.#propfind(segs, '0', signal, what, (r) => {
      if (self === undefined && placeHref(r.href, this.#http.origin, [...this.#baseSegs, ...segs]).kind === 'self') self = r;
    });
    if (self === undefined) throw new RemoteError('protocol', `${what}: the multistatus names no response for the resource itself`, { retryable: false });
    if (self.status !== undefined && (self.status < 200 || self.status > 299)) throw webdavStatusError(self.status, {}, what);
    const name = segs[segs.length - 1] ?? '';
    if (self.collection) return withVersion({ name, type: 'dir', size: 0 }, self);
    this.#noteEtag(self);
    let size = self.size;
    if (size === undefined) size = await this.#headSize(segs, signal, what);
    return withVersion({ name, type: 'file', size }, self);
  }

  async list(path: string, signal: AbortSignal): Promise<RemoteEntry[]> {
    return (await this.#list(splitPath(path), signal)).entries;
  }

  /** The entries of a directory, and the reserved names (our temps and probes) it hides. */
  async #list(segs: readonly string[], signal: AbortSignal): Promise<{ entries: RemoteEntry[]; reserved: string[] }> {
    const what = `list ${showPath(segs)}/`;
    const reserved: string[] = [];
    const collection = [...this.#baseSegs, ...segs];
    const entries: RemoteEntry[] = [];
    const seen = new Set<string>();
    let self: DavResponse | undefined;
    await this.#propfind(segs, '1', signal, what, (r) => {
      const place = placeHref(r.href, this.#http.origin, collection);
      if (place.kind === 'self') {
        self ??= r;
        return;
      }
      if (place.kind === 'refused') {
        this.#logger.warn({ dir: showPath(segs), href: r.href.slice(0, 512), reason: place.reason }, 'webdav: refused an href in a listing');
        return;
      }
      if (r.status !== undefined && (r.status < 200 || r.status > 299)) return;
      if (isReservedName(place.name)) {
        reserved.push(place.name);
        return;
      }
      if (seen.has(place.name)) {
        this.#logger.warn({ dir: showPath(segs), name: place.name }, 'webdav: a name listed twice; the first kept');
        return;
      }
      seen.add(place.name);
      if (r.collection) {
        entries.push(withVersion({ name: place.name, type: 'dir', size: 0 }, r));
        return;
      }
      this.#noteEtag(r);
      const e: RemoteEntry = withVersion({ name: place.name, type: 'file' }, r);
      if (r.size !== undefined) e.size = r.size;
      entries.push(e);
    });
    if (self !== undefined && !self.collection) throw new RemoteError('invalid', `${what}: not a directory`, { retryable: false });
    return { entries, reserved };
  }

  read(path: string, offset: number, length: number, options: ReadRangeOptions): Promise<RemoteReadStream> {
    return this.#http.read(path, offset, length, options);
  }

  readToFile(path: string, offset: number, length: number, filePath: string, options: ReadToFileOptions): FileTransfer {
    return this.#http.readToFile(path, offset, length, filePath, options);
  }

  async put(path: string, source: ContentSource, options: PutOptions): Promise<RemoteStat> {
    const segs = this.#writeTarget(path, 'put');
    const what = `put ${showPath(segs)}`;
    const { signal } = options;
    const t = this.#traits;
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    /** The version this put replaces, where we looked (for the same-fingerprint guard). */
    let replaced: RemoteStat | undefined;
    if (options.ifNoneMatch === true) {
      headers['if-none-match'] = '*';
      if (!t.ifNoneMatch && (await this.#statOrUndefined(segs, signal)) !== undefined) throw new RemoteError('exists', `${what}: something is already there`);
    } else if (options.ifMatch !== undefined) {
      const etag = options.ifMatch.etag;
      if (t.ifMatch && etag !== undefined && !etag.startsWith('W/')) {
        headers['if-match'] = etag;
        replaced = { name: '', type: 'file', ...options.ifMatch };
      } else {
        const now = await this.#statOrUndefined(segs, signal);
        if (now?.type !== 'file' || !sameVersion(options.ifMatch, now)) throw new RemoteError('conflict', `${what}: the remote is not the version we replace`);
        replaced = now;
      }
    } else if (this.#etags !== true) {
      replaced = await this.#statOrUndefined(segs, signal);
    }
    if (replaced?.type === 'dir') throw new RemoteError('invalid', `${what}: is a directory`, { retryable: false });
    const sentEtag = await this.#putWhole(segs, source, headers, options, what);
    let now = await this.#stat(segs, signal, what);
    if (replaced !== undefined && now.type === 'file' && now.size === source.sizeBytes && sameVersion(replaced, now) && now.etag === undefined) {
      // Size and a one-second mtime cannot tell the versions apart: send it again once the
      // server's clock is in the next second, so readers of the old version see a change.
      const waitMs = 1000 - (this.#clock.wallNow() % 1000) + 20;
      this.#logger.debug({ path: showPath(segs), waitMs }, 'webdav: same size in the same second as the replaced version; putting again in the next second');
      await this.#clock.sleep(waitMs, signal);
      await this.#putWhole(segs, source, { 'content-type': 'application/octet-stream' }, options, what);
      now = await this.#stat(segs, signal, what);
    }
    if (now.type !== 'file' || now.size !== source.sizeBytes || (sentEtag !== undefined && now.etag !== undefined && now.etag !== sentEtag)) {
      // Someone else wrote in between: what we know of our version is its size (and the ETag
      // the PUT answered with, where the server gave one).
      return { name: segs[segs.length - 1] ?? '', type: 'file', size: source.sizeBytes, ...(sentEtag === undefined ? {} : { etag: sentEtag }) };
    }
    return now;
  }

  async delete(path: string, options: DeleteOptions): Promise<void> {
    const segs = this.#writeTarget(path, 'delete');
    const what = `delete ${showPath(segs)}`;
    const { signal } = options;
    const now = await this.#stat(segs, signal, what);
    if (now.type === 'dir') throw new RemoteError('invalid', `${what}: is a directory (rmdir removes directories)`, { retryable: false });
    if (options.ifMatch !== undefined && !sameVersion(options.ifMatch, now)) throw new RemoteError('conflict', `${what}: the remote is not the version we delete`);
    const res = await this.#send('DELETE', this.#http.urlPath(segs, false), this.#ifMatchOf(now), signal, what);
    if (res === 404) throw new RemoteError('not-found', `${what}: HTTP 404`, { status: 404 });
    if (res === 412) throw new RemoteError('conflict', `${what}: changed since it was checked (412)`, { status: 412 });
    if (!ok(res)) throw webdavStatusError(res, {}, what);
  }

  async mkdir(path: string, options: WriteOptions): Promise<void> {
    const segs = this.#writeTarget(path, 'mkdir');
    const what = `mkdir ${showPath(segs)}`;
    const { signal } = options;
    // rclone answers 201 to a MKCOL of an existing directory: look first.
    if ((await this.#statOrUndefined(segs, signal)) !== undefined) throw new RemoteError('exists', `${what}: something is already there`);
    const res = await this.#send('MKCOL', this.#http.urlPath(segs, true), {}, signal, what);
    if (ok(res)) return;
    if (res === 405) throw new RemoteError('exists', `${what}: something is already there (405)`, { status: 405 });
    if (res === 409 || res === 404) throw new RemoteError('not-found', `${what}: the parent directory is missing (${res})`, { status: res });
    throw webdavStatusError(res, {}, what);
  }

  async rmdir(path: string, options: WriteOptions): Promise<void> {
    const segs = this.#writeTarget(path, 'rmdir');
    const what = `rmdir ${showPath(segs)}`;
    const { signal } = options;
    const now = await this.#stat(segs, signal, what);
    if (now.type !== 'dir') throw new RemoteError('invalid', `${what}: not a directory`, { retryable: false });
    // DELETE of a collection is recursive on every server: only an empty one may go.
    if ((await this.#list(segs, signal)).entries.length > 0) throw new RemoteError('not-empty', `${what}: not empty`);
    const res = await this.#send('DELETE', this.#http.urlPath(segs, true), this.#ifMatchOf(now), signal, what);
    if (res === 404) throw new RemoteError('not-found', `${what}: HTTP 404`, { status: 404 });
    if (res === 412) throw new RemoteError('not-empty', `${what}: changed since it was listed (412)`, { status: 412 });
    if (!ok(res)) throw webdavStatusError(res, {}, what);
  }

  async rename(from: string, to: string, options: RenameOptions): Promise<void> {
    const fsegs = this.#writeTarget(from, 'rename');
    const tsegs = this.#writeTarget(to, 'rename');
    const what = `rename ${showPath(fsegs)} → ${showPath(tsegs)}`;
    const { signal } = options;
    const src = await this.#stat(fsegs, signal, what);
    const isDir = src.type === 'dir';
    if (fsegs.join('/') === tsegs.join('/')) return;
    if (isDir && tsegs.length > fsegs.length && fsegs.every((s, i) => tsegs[i] === s)) {
      throw new RemoteError('invalid', `${what}: a directory cannot move into itself`, { retryable: false });
    }
    const dst = await this.#statOrUndefined(tsegs, signal);
    if (dst !== undefined) {
      if (options.noReplace === true) throw new RemoteError('exists', `${what}: the target exists`);
      if (dst.type !== src.type) throw new RemoteError('invalid', `${what}: cannot replace a ${dst.type} with a ${src.type}`, { retryable: false });
      if (isDir && (await this.list(tsegs.join('/'), signal)).length > 0) throw new RemoteError('not-empty', `${what}: the target directory is not empty`);
    } else if (tsegs.length > 1 && (await this.#statOrUndefined(tsegs.slice(0, -1), signal))?.type !== 'dir') {
      // nginx makes the missing directories of a MOVE's Destination: look first.
      throw new RemoteError('not-found', `${what}: the target's directory is missing`);
    }
    const headers = {
      destination: this.#http.origin + this.#http.urlPath(tsegs, isDir),
      overwrite: dst !== undefined ? 'T' : 'F',
    };
    const res = await this.#send('MOVE', this.#http.urlPath(fsegs, isDir), headers, signal, what);
    if (ok(res)) return;
    if (res === 412) throw new RemoteError('exists', `${what}: the target appeared meanwhile (412)`, { status: 412 });
    if ((await this.#statOrUndefined(fsegs, signal)) === undefined) throw new RemoteError('not-found', `${what}: the source is gone (${res})`, { status: res });
    if (res === 409 || res === 403 || res === 500 || res === 404) {
      const parent = await this.#statOrUndefined(tsegs.slice(0, -1), signal);
      if (parent?.type !== 'dir') throw new RemoteError('not-found', `${what}: the target's directory is missing (${res})`, { status: res });
    }
    throw webdavStatusError(res, {}, what);
  }

  close(): Promise<void> {
    return this.#http.close();
  }

  // ---- internals ----

  #writeTarget(path: string, op: string): string[] {
    const segs = splitPath(path);
    if (segs.length === 0) throw new RemoteError('invalid', `${op} of the root directory`, { retryable: false });
    if (isReservedName(segs[segs.length - 1] as string)) throw new RemoteError('invalid', `${op} /${path}: the name is reserved`, { retryable: false });
    return segs;
  }

  /** If-Match with the version just seen, where the server honours it and the ETag is strong. */
  #ifMatchOf(now: RemoteStat): Record<string, string> {
    return this.#traits.ifMatch && now.etag !== undefined && !now.etag.startsWith('W/') ? { 'if-match': now.etag } : {};
  }

  #noteEtag(r: DavResponse): void {
    if (r.hasEtag) this.#etags = true;
    else this.#etags ??= false;
  }

  async #stat(segs: readonly string[], signal: AbortSignal, what: string): Promise<RemoteStat> {
    try {
      return await this.stat(segs.join('/'), signal);
    } catch (err) {
      if (isRemoteError(err) && err.kind === 'not-found') throw new RemoteError('not-found', `${what}: not found`, { cause: err, status: 404 });
      throw err;
    }
  }

  async #statOrUndefined(segs: readonly string[], signal: AbortSignal): Promise<RemoteStat | undefined> {
    try {
      return await this.stat(segs.join('/'), signal);
    } catch (err) {
      if (isRemoteError(err) && err.kind === 'not-found') return undefined;
      throw err;
    }
  }

  async #propfind(segs: readonly string[], depth: '0' | '1', signal: AbortSignal, what: string, onResponse: (r: DavResponse) => void): Promise<void> {
    const urlPath = this.#http.urlPath(segs, depth === '1' || segs.length === 0);
    const res = await this.#http.request({
      method: 'PROPFIND',
      urlPath,
      headers: { depth, 'content-type': 'application/xml; charset=utf-8' },
      body: PROPFIND_BODY,
      signal,
      what,
    });
    if (res.statusCode !== 207) {
      await drain(res.body);
      throw webdavStatusError(res.statusCode, res.headers, what);
    }
    await readMultistatus(res.body, this.#limits, signal, what, onResponse);
  }

  async #headSize(segs: readonly string[], signal: AbortSignal, what: string): Promise<number> {
    const res = await this.#http.request({ method: 'HEAD', urlPath: this.#http.urlPath(segs, false), signal, what: `${what} (HEAD)` });
    await drain(res.body);
    if (res.statusCode < 200 || res.statusCode > 299) throw webdavStatusError(res.statusCode, res.headers, what);
    const size = contentLength(res.headers);
    if (size === undefined) throw new RemoteError('protocol', `${what}: no size in PROPFIND or HEAD`, { retryable: false });
    return size;
  }

  /** A request without a body to read; resolves with its status. */
  async #send(method: Dispatcher.HttpMethod, urlPath: string, headers: Record<string, string>, signal: AbortSignal, what: string): Promise<number> {
    const res = await this.#http.request({ method, urlPath, headers, signal, what });
    await drain(res.body);
    return res.statusCode;
  }

  /**
   * The source at `segs`, whole or not at all: one PUT where the server's PUT is atomic, else
   * a PUT to a hidden temp name in the same directory and a MOVE over the target (Overwrite: F
   * for a create-only put). A temp left by a failure is deleted (best effort, bounded).
   */
  async #putWhole(segs: readonly string[], source: ContentSource, headers: Record<string, string>, options: PutOptions, what: string): Promise<string | undefined> {
    if (this.#traits.atomicPut) return this.#putOnce(segs, source, headers, options, what);
    await this.#cleanStaleTemps(segs.slice(0, -1), options.signal);
    const name = `${DAV_TEMP_PREFIX}${HOST_TAG}-${process.pid}-${randomBytes(6).toString('hex')}`;
    const tmp = [...segs.slice(0, -1), name];
    ourTemps.add(name);
    const createOnly = headers['if-none-match'] !== undefined;
    let moved = false;
    try {
      const etag = await this.#putOnce(tmp, source, { 'content-type': headers['content-type'] ?? 'application/octet-stream' }, options, what);
      const res = await this.#send('MOVE', this.#http.urlPath(tmp, false), { destination: this.#http.origin + this.#http.urlPath(segs, false), overwrite: createOnly ? 'F' : 'T' }, options.signal, `${what} (move into place)`);
      if (res === 412) throw new RemoteError('exists', `${what}: something is already there (412)`, { status: 412 });
      if (!ok(res)) throw webdavStatusError(res, {}, `${what} (move into place)`);
      moved = true;
      return etag;
    } finally {
      if (!moved) {
        await this.#send('DELETE', this.#http.urlPath(tmp, false), {}, AbortSignal.timeout(5000), `${what} (remove temp)`).catch(() => undefined);
      }
      ourTemps.delete(name);
    }
  }

  /**
   * Before the first temp put into a directory: deletes the temps a killed writer of this host
   * left there (its pid is gone, or it is ours and no put of ours owns it). Temps of other
   * hosts are left alone (their writer may be alive). Best effort: a failure is only logged.
   */
  async #cleanStaleTemps(dir: readonly string[], signal: AbortSignal): Promise<void> {
    const key = dir.join('/');
    if (this.#cleanedDirs.has(key)) return;
    if (this.#cleanedDirs.size >= 4096) this.#cleanedDirs.clear();
    this.#cleanedDirs.add(key);
    try {
      const { reserved } = await this.#list(dir, signal);
      for (const name of reserved) {
        if (!isStaleTemp(name)) continue;
        await this.#send('DELETE', this.#http.urlPath([...dir, name], false), {}, signal, `clean ${showPath([...dir, name])}`);
        this.#logger.info({ dir: showPath(dir), name }, 'webdav: removed a temp file a killed upload left');
      }
    } catch (err) {
      this.#logger.debug({ err, dir: showPath(dir) }, 'webdav: could not clean stale temp files');
    }
  }

  /** One PUT of the whole source; resolves with the ETag the server answered with, if any. */
  async #putOnce(segs: readonly string[], source: ContentSource, headers: Record<string, string>, options: PutOptions, what: string): Promise<string | undefined> {
    const { signal } = options;
    const size = source.sizeBytes;
    let sourceError: { err: unknown } | undefined;
    async function* body(): AsyncGenerator<Uint8Array, void, undefined> {
      let sent = 0;
      const it = source.open(signal)[Symbol.asyncIterator]();
      for (;;) {
        let step: IteratorResult<Uint8Array>;
        try {
          step = await it.next();
        } catch (err) {
          sourceError = { err };
          throw err;
        }
        if (step.done === true) break;
        sent += step.value.length;
        if (sent > size) throw (sourceError = { err: new RemoteError('invalid', `${what}: the source yields more than its ${size} bytes`, { retryable: false }) }).err;
        yield step.value;
      }
      if (sent !== size) throw (sourceError = { err: new RemoteError('invalid', `${what}: the source yields ${sent} bytes, not ${size}`, { retryable: false }) }).err;
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await this.#http.request({
        method: 'PUT',
        urlPath: this.#http.urlPath(segs, false),
        headers: { ...headers, 'content-length': String(size) },
        body: size === 0 ? '' : Readable.from(body(), { objectMode: false }),
        signal,
        what,
      });
    } catch (err) {
      if (sourceError !== undefined) throw sourceError.err;
      throw err;
    }
    if (sourceError !== undefined) {
      await drain(res.body);
      throw sourceError.err;
    }
    await drain(res.body);
    const status = res.statusCode;
    if (ok(status)) return headerValue(res.headers, 'etag');
    if (status === 412) {
      if (headers['if-none-match'] !== undefined) throw new RemoteError('exists', `${what}: something is already there (412)`, { status });
      throw new RemoteError('conflict', `${what}: the remote is not the version we replace (412)`, { status });
    }
    if (status === 409 || status === 404 || status === 405 || status === 403 || status === 500) {
      // Which of "a directory is there", "the parent is missing" or the server's own error.
      const there = await this.#statOrUndefined(segs, signal);
      if (there !== undefined && headers['if-none-match'] !== undefined) throw new RemoteError('exists', `${what}: something is already there (${status})`, { status });
      if (there?.type === 'dir') throw new RemoteError('invalid', `${what}: is a directory (${status})`, { status, retryable: false });
      const parent = await this.#statOrUndefined(segs.slice(0, -1), signal);
      if (parent?.type !== 'dir') throw new RemoteError('not-found', `${what}: the parent directory is missing (${status})`, { status });
    }
    throw webdavStatusError(status, res.headers, what);
  }
}

/** The statuses WebDAV adds to HTTP's (RFC 4918 §11): 507 is a full remote, 423 a lock. */
export function webdavStatusError(status: number, headers: IncomingHttpHeaders, what: string): RemoteError {
  if (status === 507) return new RemoteError('no-space', `${what}: HTTP 507 (insufficient storage)`, { status });
  if (status === 423) return new RemoteError('unavailable', `${what}: HTTP 423 (locked)`, { status });
  return statusError(status, headers, what);
}

function ok(status: number): boolean {
  return status >= 200 && status <= 299;
}

function headerValues(headers: IncomingHttpHeaders, name: string): string[] {
  const v = headers[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

function withVersion<T extends RemoteEntry>(e: T, r: DavResponse): T {
  if (r.mtimeMs !== undefined) e.mtimeMs = r.mtimeMs;
  if (r.etag !== undefined) e.etag = r.etag;
  return e;
}
