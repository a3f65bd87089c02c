// Messages between TransferPool (the caller's thread) and a transfer worker thread. Plain
// structured-clone data only: errors cross as their fields and are rebuilt on the other side.
import type { HttpTimeouts } from './timeouts.js';
import type { Fingerprint } from '../remote.js';
import type { RemoteErrorKind } from '../remote-error.js';

/** Given to each worker at spawn (workerData). */
export interface TransferWorkerSetup {
  origin: string;
  /** Connections of the worker's own undici Pool; the pool never sends it more transfers. */
  connections: number;
  timeouts: HttpTimeouts;
  ca?: string | Buffer | (string | Buffer)[];
  /** The worker reports written bytes at least every this many bytes (and whenever it idles). */
  reportEveryBytes: number;
  /** Largest error body read (to keep the connection) before the connection is dropped. */
  drainLimitBytes: number;
}

export interface TransferJob {
  urlPath: string;
  headers: Record<string, string>;
  offset: number;
  length: number;
  filePath: string;
  /** Describes the read in error messages. */
  what: string;
}

export type ToWorker =
  | { t: 'start'; id: number; job: TransferJob; allowTo: number; expect: Fingerprint | undefined }
  | { t: 'allow'; id: number; to: number }
  | { t: 'abort'; id: number };

export type TransferFailure =
  | { remote: true; kind: RemoteErrorKind; message: string; status?: number; retryAfterMs?: number; retryable: boolean; connectionLost: boolean }
  | { remote: false; message: string; code?: string };

export type FromWorker =
  | { t: 'written'; id: number; to: number }
  | { t: 'end'; id: number; fingerprint: Fingerprint }
  | { t: 'end'; id: number; failure: TransferFailure };
