// A response body as an async iterable of the server's own Buffers (no copies, no web
// streams) that yields exactly `expected` bytes or fails.
//
// Invariants:
// - More bytes than expected, or an end before `expected`, is RemoteError 'protocol'; the
//   iteration never ends quietly short.
// - Aborting the request signal destroys the undici body (undici's `signal` option); the
//   pending or next step rejects with RemoteError 'aborted'.
// - When the consumer stops early (break/return/throw), the body is destroyed so the socket is
//   released; the iterator owns the body from the moment it is created.
import type { Readable } from 'node:stream';
import { RemoteError, abortError } from '../remote-error.js';
import { mapBodyError } from './http-errors.js';

export async function* countedBody(body: Readable, expected: number, signal: AbortSignal, what: string): AsyncGenerator<Uint8Array, void, undefined> {
  let received = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received > expected) {
        throw new RemoteError('protocol', `${what}: body longer than the ${expected} bytes announced`);
      }
      yield chunk;
    }
  } catch (err) {
    throw mapBodyError(err, signal, `${what} (after ${received} of ${expected} bytes)`);
  } finally {
    discardBody(body);
  }
  if (signal.aborted) throw abortError(signal, what);
  if (received < expected) throw new RemoteError('protocol', `${what}: body ended after ${received} of ${expected} bytes`);
}

/** Reads a whole (small) body as text, failing with 'protocol' past `limitBytes`. */
export async function readText(body: Readable, limitBytes: number, signal: AbortSignal, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > limitBytes) throw new RemoteError('protocol', `${what}: larger than ${limitBytes} bytes`, { retryable: false });
      chunks.push(chunk);
    }
  } catch (err) {
    throw mapBodyError(err, signal, what);
  } finally {
    discardBody(body);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

const ignore = (): void => undefined;

/**
 * Destroys a response body we will not read. An undici body destroyed without an error emits
 * an AbortError 'error' event, which must not become an uncaught exception.
 */
export function discardBody(body: Readable): void {
  if (body.destroyed) return;
  body.on('error', ignore);
  body.destroy();
}
