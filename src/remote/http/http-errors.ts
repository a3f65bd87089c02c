// The one place where undici/socket errors and HTTP statuses become RemoteError kinds.
// Every wrap keeps the original as `cause`.
import type { IncomingHttpHeaders } from 'node:http';
import { RemoteError, isRemoteError, abortError } from '../remote-error.js';

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
]);
const CLOSED_CODES = new Set(['UND_ERR_DESTROYED', 'UND_ERR_CLOSED']);

/** The first `code` on the error or along its cause chain. */
export function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && typeof e === 'object' && e !== null; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function isTlsCode(code: string): boolean {
  return code.startsWith('ERR_TLS_') || code.startsWith('CERT_') || code.includes('CERT') || code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE';
}

/** Maps an error thrown by `pool.request` (before any body byte) to a RemoteError. */
export function mapRequestError(err: unknown, signal: AbortSignal, what: string): RemoteError {
  if (isRemoteError(err)) return err;
  if (signal.aborted) return abortError(signal, what, err);
  const code = errorCode(err) ?? '';
  if (TIMEOUT_CODES.has(code)) return new RemoteError('timeout', `${what}: ${code}`, { cause: err });
  if (code === 'UND_ERR_ABORTED' || (err instanceof Error && err.name === 'AbortError')) {
    return new RemoteError('aborted', `${what}: aborted`, { cause: err });
  }
  if (CLOSED_CODES.has(code)) return new RemoteError('unavailable', `${what}: remote closed`, { cause: err, retryable: false });
  if (code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code.startsWith('HPE_')) {
    return new RemoteError('protocol', `${what}: malformed response (${code})`, { cause: err });
  }
  if (isTlsCode(code)) return new RemoteError('unavailable', `${what}: TLS verification failed (${code})`, { cause: err, retryable: false });
  if (UNAVAILABLE_CODES.has(code)) return new RemoteError('unavailable', `${what}: ${code}`, { cause: err });
  return new RemoteError('unavailable', `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/**
 * Maps an error raised while a response body streams: a peer that closes or resets the
 * connection mid-body gave a truncated body ('protocol', retryable), whichever way undici
 * reports it (a SocketError through `request`, the raw ECONNRESET through `dispatch`).
 */
export function mapBodyError(err: unknown, signal: AbortSignal, what: string): RemoteError {
  if (isRemoteError(err)) return err;
  if (signal.aborted) return abortError(signal, what, err);
  const code = errorCode(err) ?? '';
  if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'ERR_STREAM_PREMATURE_CLOSE') {
    return new RemoteError('protocol', `${what}: body ended early (${code})`, { cause: err, connectionLost: code !== 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' });
  }
  return mapRequestError(err, signal, what);
}

export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Retry-After as delta-seconds or an HTTP-date, in ms from `nowMs` (never negative). */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (!Number.isFinite(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/** The RemoteError for an HTTP status we do not handle as success. */
export function statusError(status: number, headers: IncomingHttpHeaders, what: string): RemoteError {
  const msg = `${what}: HTTP ${status}`;
  if (status === 404 || status === 410) return new RemoteError('not-found', msg, { status });
  if (status === 401 || status === 403) return new RemoteError('permission', msg, { status });
  if (status === 416) return new RemoteError('invalid', msg, { status });
  if (status === 412) return new RemoteError('conflict', msg, { status });
  if (status === 429 || status >= 500) {
    if (status === 501) return new RemoteError('unsupported', msg, { status });
    const retryAfterMs = parseRetryAfter(headerValue(headers, 'retry-after'), Date.now());
    return new RemoteError('unavailable', msg, retryAfterMs === undefined ? { status } : { status, retryAfterMs });
  }
  if (status === 400 || status === 414) return new RemoteError('invalid', msg, { status });
  return new RemoteError('protocol', `${what}: unexpected HTTP ${status}`, { status, retryable: false });
}
