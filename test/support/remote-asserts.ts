// Small helpers shared by the remote tests.
import assert from 'node:assert/strict';
import { within } from '../../src/base/async.js';
import { RemoteError, type RemoteErrorKind } from '../../src/remote/remote-error.js';

/** Collects a body into one Buffer. */
export async function collect(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of body) parts.push(c);
  return Buffer.concat(parts);
}

/** Asserts that `p` rejects with a RemoteError of `kind` (within `ms`), and returns it. */
export async function rejectsKind(p: Promise<unknown>, kind: RemoteErrorKind, what: string, ms = 5000): Promise<RemoteError> {
  let caught: unknown;
  try {
    await within(p, ms, what);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof RemoteError, `${what}: expected RemoteError(${kind}), got ${String(caught)}`);
  assert.equal(caught.kind, kind, `${what}: ${caught.message}`);
  return caught;
}
