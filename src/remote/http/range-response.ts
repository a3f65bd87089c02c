// What a ranged GET's response must look like before one body byte is trusted. Shared by the
// in-thread read (HttpRemote.read) and the off-thread transfer worker, so both refuse exactly
// the same answers with exactly the same RemoteErrors.
//
// Invariant: `checkRangeResponse` returns only when the response is the requested bytes of the
// version `expect` names: status 206 with a Content-Range equal to the request (clamped at
// EOF) and a Content-Length that agrees, or a 200 carrying the whole object when the whole
// object was asked for, or a 416 for a read exactly at EOF. Anything else throws RemoteError;
// a 200 with the whole object for a partial range is kind 'unsupported' (no range support).
import type { IncomingHttpHeaders } from 'node:http';
import type { Fingerprint } from '../remote.js';
import { fingerprintChange } from '../fingerprint.js';
import { RemoteError } from '../remote-error.js';
import { headerValue, statusError } from './http-errors.js';

/** The checked response: its version and how many body bytes must follow. */
export interface RangeResponse {
  fingerprint: Fingerprint;
  bodyBytes: number;
}

/**
 * The Range (and If-Range) headers of a read of [offset, offset+length) of version `expect`.
 * `dateIfRange: false` leaves If-Range out where only a date could fill it: Apache answers
 * such an If-Range with the whole object while the file is younger than a second (a date is a
 * weak validator then), which would read as "no range support". The response is checked
 * against `expect` either way (checkRangeResponse).
 */
export function rangeRequestHeaders(offset: number, length: number, expect: Fingerprint | undefined, dateIfRange = true): Record<string, string> {
  const headers: Record<string, string> = { range: `bytes=${offset}-${offset + length - 1}` };
  if (expect?.etag !== undefined && !expect.etag.startsWith('W/')) headers['if-range'] = expect.etag;
  else if (expect?.mtimeMs !== undefined && dateIfRange) headers['if-range'] = new Date(expect.mtimeMs).toUTCString();
  return headers;
}

/** True for statuses whose body is the data (the caller streams it); others are drained. */
export function isDataStatus(status: number): boolean {
  return status === 206 || status === 200;
}

/**
 * Checks status and headers of a read of [offset, offset+length) against `expect`. Throws the
 * RemoteError a caller reports (with the body drained or destroyed by the caller).
 */
export function checkRangeResponse(
  status: number,
  h: IncomingHttpHeaders,
  offset: number,
  length: number,
  expect: Fingerprint | undefined,
  what: string,
): RangeResponse {
  if (status === 206) {
    const cr = parseContentRange(headerValue(h, 'content-range'));
    if (cr === undefined) throw new RemoteError('protocol', `${what}: 206 without a usable Content-Range (${headerValue(h, 'content-range') ?? 'none'})`);
    const fp = fingerprintOf(h, cr.total);
    const changed = expect === undefined ? undefined : fingerprintChange(expect, fp);
    if (changed !== undefined) throw new RemoteError('changed', `${what}: ${changed}`);
    const end = Math.min(offset + length, cr.total) - 1;
    if (cr.start !== offset || cr.end !== end) {
      throw new RemoteError('protocol', `${what}: Content-Range bytes ${cr.start}-${cr.end}/${cr.total} does not match the request (${offset}-${end})`);
    }
    const n = end - offset + 1;
    const cl = contentLength(h);
    if (cl !== undefined && cl !== n) throw new RemoteError('protocol', `${what}: Content-Length ${cl} disagrees with Content-Range (${n})`);
    return { fingerprint: fp, bodyBytes: n };
  }
  if (status === 200) {
    const size = contentLength(h);
    if (size === undefined) throw new RemoteError('protocol', `${what}: 200 without Content-Length for a range request`, { retryable: false });
    const fp = fingerprintOf(h, size);
    const changed = expect === undefined ? undefined : fingerprintChange(expect, fp);
    if (changed !== undefined) throw new RemoteError('changed', `${what}: ${changed}`);
    if (offset === 0 && length >= size) return { fingerprint: fp, bodyBytes: size };
    // The server does not do ranges (python's http.server answers every ranged GET this way):
    // 'unsupported' tells the data layer to read the object as one whole-file stream instead.
    throw new RemoteError('unsupported', `${what}: server ignored the Range header (200 with ${size} bytes)`, { status: 200, retryable: false });
  }
  if (status === 416) {
    // Reading exactly at EOF (e.g. offset 0 of an empty file) is an empty read, not an error.
    const total = unsatisfiedTotal(h);
    if (total !== undefined && offset === total) {
      if (expect !== undefined && expect.size !== total) throw new RemoteError('changed', `${what}: size is now ${total}, expected ${expect.size}`);
      return { fingerprint: fingerprintOf(h, total), bodyBytes: 0 };
    }
  }
  if (isRedirect(status)) throw new RemoteError('invalid', `${what}: is a directory (redirect)`, { status, retryable: false });
  throw statusError(status, h, what);
}

export function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

export function contentLength(h: IncomingHttpHeaders): number | undefined {
  const v = headerValue(h, 'content-length');
  if (v === undefined || !/^\d+$/.test(v.trim())) return undefined;
  const n = Number(v.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

export function fingerprintOf(h: IncomingHttpHeaders, size: number): Fingerprint {
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
export function unsatisfiedTotal(h: IncomingHttpHeaders): number | undefined {
  const m = /^\s*bytes\s+\*\/(\d+)\s*$/i.exec(headerValue(h, 'content-range') ?? '');
  if (m === null) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}
