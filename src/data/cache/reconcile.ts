// The start-up reconcile of a cache dir: makes the catalogue and the objects dir agree before
// anything is read from them, after a crash, a power loss, a full disk, or someone touching
// the dir. Run by DataCache.open while it holds the dir's owner lock (owner-lock.ts) and before
// the evictor counts the used bytes, so no other process or task uses the dir meanwhile.
//
// - A row whose file is missing, is not the file recorded for it, or has the wrong size
//   (file-identity.ts, the same rule CacheFile.open applies) is deleted; its file, if any,
//   is unlinked after the delete committed.
// - A file of the objects dir that no row names (an orphan: a crash between a row's delete and
//   its unlink, or between creating a file and recording it) is unlinked.
// - Used bytes are then the store's total over the rows that remain (the caller reads it).
//
// Durability: with the catalogue at synchronous=NORMAL, a power loss can undo the last
// commits (never a process crash). A lost delete brings back a row whose file is gone; this
// reconcile (and CacheFile.open) drops it, so the cache still vouches only for bytes it holds.
import { lstat, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../observability/logger.js';
import type { Catalogue } from '../../store/catalogue.js';
import { distrustReason } from './file-identity.js';

export interface ReconcileResult {
  /** Rows deleted because their file could not be trusted. */
  droppedObjects: number;
  /** Present bytes those rows claimed. */
  droppedBytes: number;
  /** Files no row named, deleted. */
  orphansDeleted: number;
}

export interface ReconcileOptions {
  store: Catalogue;
  objectsDir: string;
  logger: Logger;
  /** Test hook (DataHooks.beforeUnlink). */
  beforeUnlink?: (fileName: string) => void;
}

export async function reconcileCacheDir(o: ReconcileOptions): Promise<ReconcileResult> {
  const result: ReconcileResult = { droppedObjects: 0, droppedBytes: 0, orphansDeleted: 0 };
  const unnamed = new Set(await readdir(o.objectsDir));
  for (const obj of o.store.listObjects()) {
    const onDisk = unnamed.delete(obj.cacheFileName);
    let reason: string | undefined = 'missing';
    if (onDisk) {
      try {
        reason = distrustReason(await lstat(join(o.objectsDir, obj.cacheFileName), { bigint: true }), obj.fileIdentity, obj.size);
      } catch (err) {
        reason = `cannot stat it (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
      }
    }
    if (reason === undefined) continue;
    o.store.deleteObject(obj.id);
    result.droppedObjects++;
    result.droppedBytes += obj.presentBytes;
    const fields = { objectId: obj.id, path: obj.path, fileName: obj.cacheFileName, reason, droppedBytes: obj.presentBytes };
    // Today nothing writes dirty ranges; the write path must journal what it would lose here.
    if (obj.dirty) o.logger.error(fields, 'reconcile: cache file lost with locally written bytes');
    else if (obj.presentBytes > 0) o.logger.warn(fields, 'reconcile: cache file not trusted, its row is dropped');
    if (onDisk) await unlinkFile(o, obj.cacheFileName);
  }
  for (const name of unnamed) {
    if (await unlinkFile(o, name)) result.orphansDeleted++;
  }
  if (result.droppedObjects > 0 || result.orphansDeleted > 0) o.logger.info({ ...result }, 'reconcile: cache dir cleaned up');
  return result;
}

/** Unlinks a file of the objects dir (never a directory); false if it could not. */
async function unlinkFile(o: ReconcileOptions, name: string): Promise<boolean> {
  o.beforeUnlink?.(name);
  try {
    await unlink(join(o.objectsDir, name));
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') o.logger.warn({ err, fileName: name }, 'reconcile: cannot delete a file of the objects dir');
    return false;
  }
}
