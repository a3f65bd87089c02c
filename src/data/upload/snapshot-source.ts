// The ContentSource of a journaled put: a frozen snapshot file in the snapshot dir, re-opened
// from its start by every `open` (each retry of a put re-reads it), so an upload never reads
// bytes a later write is changing.
//
// Invariants:
// - A snapshot file is immutable once its journal row committed: a newer write makes a new
//   file (a new generation) and the old one is deleted only after no worker reads it
//   (UploadQueue keeps the in-use count).
// - `open` first asks `stillCurrent()`: when the row moved to a newer generation, it throws
//   SupersededError and the upload is re-queued for the newer bytes; never a mix.
// - A file that is missing or not exactly `sizeBytes` long fails the put with SnapshotError
//   (the remote is left unchanged), never with short or extra bytes.
// - The fd is closed on every exit of the iterator (end, error, abort, consumer stopping).
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { ContentSource } from '../../remote/remote.js';

/** The row was rewritten (newer generation) since this upload took it. */
export class SupersededError extends Error {
  override readonly name = 'SupersededError';
  readonly code = 'UPLOAD_SUPERSEDED';
}

/** The snapshot file is missing or not its journaled size. */
export class SnapshotError extends Error {
  override readonly name = 'SnapshotError';
  readonly code = 'UPLOAD_SNAPSHOT';
}

const CHUNK_BYTES = 256 * 1024;

export function snapshotSource(filePath: string, sizeBytes: number, stillCurrent: () => boolean): ContentSource {
  return {
    sizeBytes,
    async *open(signal: AbortSignal): AsyncGenerator<Uint8Array, void, undefined> {
      if (!stillCurrent()) throw new SupersededError(`${filePath}: a newer generation is journaled`);
      let fh: fsp.FileHandle;
      try {
        fh = await fsp.open(filePath, 'r');
      } catch (cause) {
        throw new SnapshotError(`cannot open the snapshot ${filePath}`, { cause });
      }
      try {
        const st = await fh.stat();
        if (st.size !== sizeBytes) throw new SnapshotError(`snapshot ${filePath} is ${st.size} bytes, journaled as ${sizeBytes}`);
        let pos = 0;
        while (pos < sizeBytes) {
          signal.throwIfAborted();
          // A fresh buffer per chunk: the remote may keep what it was given.
          const buf = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, sizeBytes - pos));
          const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
          if (bytesRead === 0) throw new SnapshotError(`snapshot ${filePath} ended at ${pos} of ${sizeBytes} bytes`);
          pos += bytesRead;
          yield buf.subarray(0, bytesRead);
        }
      } finally {
        await fh.close();
      }
    },
  };
}

/** "<size>:<sha256 hex>" of a snapshot file (the form Journal.noteSent keeps). */
export async function snapshotDigest(filePath: string, sizeBytes: number, signal: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of snapshotSource(filePath, sizeBytes, () => true).open(signal)) hash.update(chunk);
  return `${sizeBytes}:${hash.digest('hex')}`;
}
