// `fusestream status [MNT] [--json]`: asks running mounts over their control sockets
// (control.ts) and prints what they are doing. With MNT, that mount (exit 2 if none serves it);
// without, every mount of this user (sockets nobody answers are left from killed mounts and
// are skipped). --json prints the raw status objects, one JSON array.
// `fusestream invalidate MNT PATH...`: makes that mount forget what it knows of PATHs (under
// MNT, or relative to it), so the next access asks the remote. It never touches the mount's
// files itself: paths are worked out as text.
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { controlSocketPath, controlSockets, queryControl } from './control.js';
import { UsageError } from './usage-error.js';

interface Status {
  mountpoint: string;
  remote: string;
  pid: number;
  startedAt: string;
  health: { state: string; since: string; reason: string };
  cache: { dir: string; cacheBytes: number; cacheCapBytes: number; openFiles: number; downloadsActive: number; bytesFetched: number; bytesServed: number };
  inFlight: { opcode: string; path?: string; ageMs: number; pid: number }[];
  poller: { intervalMs: number; rounds: number; changed: number; added: number; removed: number };
  readOnly: boolean;
  uploads: { pending: number; failed: number; failing: { change: string; path: string; attempts: number; error: string }[] };
}

const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;

function render(s: Status): string {
  const lines = [
    `${s.mountpoint}  ←  ${s.remote}  (pid ${s.pid}, since ${s.startedAt})`,
    `  remote: ${s.health.state} since ${s.health.since} (${s.health.reason})`,
    `  cache:  ${mib(s.cache.cacheBytes)} of ${mib(s.cache.cacheCapBytes)} in ${s.cache.dir}; ${s.cache.openFiles} open files, ${s.cache.downloadsActive} downloads; fetched ${mib(s.cache.bytesFetched)}, served ${mib(s.cache.bytesServed)}`,
    `  poll:   ${s.poller.intervalMs > 0 ? `every ${s.poller.intervalMs / 1000} s, ${s.poller.rounds} rounds, ${s.poller.changed + s.poller.added + s.poller.removed} changes seen` : 'off'}`,
  ];
  if (!s.readOnly) {
    lines.push(`  writes: ${s.uploads.pending} change(s) not on the remote yet${s.uploads.failed > 0 ? `, ${s.uploads.failed} failing` : ''}`);
    for (const f of s.uploads.failing) lines.push(`    ${f.change.padEnd(7)} ${f.path}  (${f.attempts} attempts: ${f.error})`);
  } else lines.push('  writes: read-only mount');
  if (s.inFlight.length === 0) lines.push('  requests in flight: none');
  else {
    lines.push(`  requests in flight: ${s.inFlight.length}`);
    for (const r of s.inFlight) lines.push(`    ${r.opcode.padEnd(12)} ${String(Math.round(r.ageMs)).padStart(7)} ms  ${r.path ?? '?'}  (pid ${r.pid})`);
  }
  return lines.join('\n');
}

export function realMountpoint(mountpoint: string): string {
  try {
    return realpathSync(resolve(mountpoint));
  } catch {
    throw new UsageError(`${mountpoint}: no such directory`);
  }
}

/** Asks the mount on `mnt` (a real path); a mount that does not answer is a UsageError. */
export async function ask(mnt: string, cmd: string, args: Record<string, unknown> = {}, timeoutMs?: number, onProgress?: (p: unknown) => void): Promise<unknown> {
  try {
    return await queryControl(controlSocketPath(mnt), cmd, timeoutMs, args, onProgress);
  } catch (err) {
    throw new UsageError(`no running fusestream mount answers for ${mnt} (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
}

export async function runInvalidate(mountpoint: string, paths: readonly string[]): Promise<number> {
  const mnt = realMountpoint(mountpoint);
  const rel = paths.map((p) => {
    const abs = resolve(mnt, p);
    if (abs === mnt) return '';
    if (!abs.startsWith(`${mnt}/`)) throw new UsageError(`${p} is not under the mountpoint ${mnt}`);
    return abs.slice(mnt.length + 1);
  });
  const r = (await ask(mnt, 'invalidate', { paths: rel })) as { known: number };
  process.stdout.write(`invalidated ${rel.length} path(s); ${r.known} were cached\n`);
  return 0;
}

export async function runStatus(mountpoint: string | undefined, json: boolean): Promise<number> {
  const found: Status[] = [];
  if (mountpoint !== undefined) {
    found.push((await ask(realMountpoint(mountpoint), 'status')) as Status);
  } else {
    for (const path of controlSockets()) {
      const s = await queryControl(path, 'status', 2000).catch(() => undefined);
      if (s !== undefined) found.push(s as Status);
    }
  }
  if (json) process.stdout.write(`${JSON.stringify(found, null, 2)}\n`);
  else process.stdout.write(found.length === 0 ? 'no running fusestream mounts\n' : `${found.map(render).join('\n\n')}\n`);
  return 0;
}
