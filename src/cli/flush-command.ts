// `fusestream flush MNT [--timeout S]`: waits until every change of a running mount is on its
// remote, printing what is left while it waits. Both halves live here:
// - in the mount (`flushUploads`, a control-socket handler, control.ts): one RemoteFs.drain
//   for the whole timeout (it saves the files being written, makes every pending change due
//   now and waits), with a progress report every FLUSH_PROGRESS_MS from the journal;
// - in the client (`runFlush`): asks over the control socket, shows the progress (in place on
//   a terminal, one line per change of the counts otherwise), and exits 0 when nothing is
//   pending, 1 with every pending change and its last error when the timeout passed (or when
//   nothing could be uploaded sooner: the queue gives up early once every change left is
//   backing off past the deadline), 2 when no mount answers.
//
// Invariants: the drain is started once per flush (a repeated drain would reset the backoff of
// failing changes and hammer the remote); the flush never outlives the upload queue (closing
// the queue at unmount releases it); the client's wait is bounded by the timeout plus
// SAVE_SLACK_MS (saving open files is bounded by the mount's --deadline).
import { InvalidArgumentError } from 'commander';
import type { JournalRow } from '../store/journal.js';
import { MAX_FLUSH_MS } from './control.js';
import { ask, realMountpoint } from './status-command.js';

/** How often a flush reports what is left. */
export const FLUSH_PROGRESS_MS = 1000;
/** What the client allows on top of the timeout before it says the mount did not answer. */
const SAVE_SLACK_MS = 120_000;
/** The flush timeout when none is given. */
export const DEFAULT_FLUSH_TIMEOUT_S = 600;

/** One change not on the remote yet, as flush and status show it. */
export interface PendingChange {
  change: string;
  path: string;
  /** Bytes to upload (a put's snapshot); 0 for changes without content. */
  bytes: number;
  attempts: number;
  /** The last failure, if the change failed before. */
  error?: string;
}

export interface FlushProgress {
  changes: number;
  bytes: number;
  failing: number;
}

export interface FlushResult {
  pending: PendingChange[];
}

export function pendingChange(r: JournalRow): PendingChange {
  const c: PendingChange = { change: r.kind, path: `/${r.path}`, bytes: r.snapshot?.sizeBytes ?? 0, attempts: r.attempts };
  if (r.lastError !== undefined) c.error = r.lastError;
  return c;
}

export function flushProgress(rows: readonly JournalRow[]): FlushProgress {
  let bytes = 0;
  let failing = 0;
  for (const r of rows) {
    bytes += r.snapshot?.sizeBytes ?? 0;
    if (r.lastError !== undefined) failing++;
  }
  return { changes: rows.length, bytes, failing };
}

/** What flush needs of the filesystem (RemoteFs). */
export interface Flushable {
  drain(timeoutMs: number): Promise<JournalRow[]>;
  pendingUploads(): JournalRow[];
}

/** The mount's side: drains for up to `timeoutMs`, reporting progress; what is left. */
export async function flushUploads(fs: Flushable, timeoutMs: number, progress: (p: FlushProgress) => void): Promise<FlushResult> {
  const ticker = setInterval(() => progress(flushProgress(fs.pendingUploads())), FLUSH_PROGRESS_MS);
  try {
    const left = await fs.drain(timeoutMs);
    return { pending: left.map(pendingChange) };
  } finally {
    clearInterval(ticker);
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function progressLine(p: FlushProgress): string {
  return `flushing: ${p.changes} change(s), ${formatBytes(p.bytes)} left${p.failing > 0 ? `, ${p.failing} failing` : ''}`;
}

/** --timeout's parser (commander reports the error and exits 2). */
export function parseFlushTimeout(text: string): number {
  const s = Number(text);
  if (text.trim() === '' || !Number.isFinite(s) || s < 0 || s * 1000 > MAX_FLUSH_MS) throw new InvalidArgumentError(`"${text}" is not a number of seconds from 0 to ${Math.floor(MAX_FLUSH_MS / 1000)}`);
  return s;
}

/** The client's side: exit 0 when everything is on the remote, 1 when not. */
export async function runFlush(mountpoint: string, timeoutS: number, out: NodeJS.WriteStream = process.stdout): Promise<number> {
  const mnt = realMountpoint(mountpoint);
  const timeoutMs = Math.round(timeoutS * 1000);
  const tty = out.isTTY;
  let last = '';
  const show = (p: unknown): void => {
    const line = progressLine(p as FlushProgress);
    if (tty) out.write(`\r\x1b[2K${line}`);
    else if (line !== last) out.write(`${line}\n`);
    last = line;
  };
  const startedMs = Date.now();
  const r = (await ask(mnt, 'flush', { timeoutMs }, Math.min(MAX_FLUSH_MS, timeoutMs + SAVE_SLACK_MS), show)) as FlushResult;
  if (tty && last !== '') out.write('\r\x1b[2K');
  const took = `${((Date.now() - startedMs) / 1000).toFixed(1)} s`;
  if (r.pending.length === 0) {
    out.write(`flushed: every change is on the remote (${took})\n`);
    return 0;
  }
  const bytes = r.pending.reduce((n, c) => n + c.bytes, 0);
  out.write(`not flushed: ${r.pending.length} change(s), ${formatBytes(bytes)}, still not on the remote after ${took}:\n`);
  for (const c of r.pending) {
    const tried = c.attempts > 0 ? `${c.attempts} attempt(s)` : 'not tried yet';
    out.write(`  ${c.change.padEnd(7)} ${c.path}  (${formatBytes(c.bytes)}, ${tried}${c.error !== undefined ? `; last error: ${c.error}` : ''})\n`);
  }
  return 1;
}
