// The seeded workload of the write crash test, shared by the child that runs it on the mount
// (write-crash-child.ts) and the test that picks kill points in its range: a few files in two
// directories, some on the remote before the mount, saved the ways programs save — rewritten
// in place with O_TRUNC (sometimes fsync'ed half-way), written to a temp name, fsync'ed and
// renamed over (editors), appended to, patched in the middle or past the end (a hole), renamed
// and unlinked. Each version's bytes are ramp data with their own seed.
import { prng } from '../support/prng.js';

export const PATHS = ['a.bin', 'b.bin', 'c.bin', 'd/x.bin', 'd/y.bin'] as const;
/** The directories the paths live in; they exist on the remote before the mount. */
export const DIRS = ['d'] as const;

export interface InitialFile {
  path: string;
  seed: number;
  sizeBytes: number;
}

export type Step =
  /** open O_WRONLY|O_CREAT|O_TRUNC, write the chunks, fsync after chunk `fsyncAfter` if set, close. */
  | { kind: 'save'; path: string; seed: number; chunks: number[]; fsyncAfter: number | undefined }
  /** The same into `tmp` (O_EXCL), fsync, close, then rename tmp over path. */
  | { kind: 'atomic-save'; path: string; tmp: string; seed: number; chunks: number[] }
  /** open O_WRONLY|O_APPEND|O_CREAT, write sizeBytes, close. */
  | { kind: 'append'; path: string; seed: number; sizeBytes: number }
  /** open O_RDWR (the file exists), pwrite sizeBytes at offset (past EOF: a hole), close. */
  | { kind: 'patch'; path: string; seed: number; offset: number; sizeBytes: number }
  | { kind: 'rename'; from: string; to: string }
  | { kind: 'unlink'; path: string };

export interface CrashPlan {
  initial: InitialFile[];
  steps: Step[];
  /** Acknowledged close()s the whole plan makes. */
  closes: number;
  /** Acknowledged events (close, fsync, rename, unlink). */
  acks: number;
  /** Bytes the plan writes. */
  bytes: number;
}

export function crashPlan(seed: number): CrashPlan {
  const rnd = prng(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const pickOf = <T>(items: readonly T[]): T => {
    const v = items[int(items.length)];
    if (v === undefined) throw new Error('pick from an empty list');
    return v;
  };
  const sizeOf = (): number => (rnd() < 0.1 ? 0 : int(256 * 1024));
  const chunksOf = (total: number): number[] => {
    const out: number[] = [];
    for (let left = total; left > 0; ) {
      const n = Math.min(left, 1 + int(64 * 1024));
      out.push(n);
      left -= n;
    }
    return out;
  };
  let version = 0;
  const nextSeed = (): number => seed * 1000 + ++version;

  const sizes = new Map<string, number>();
  const initial: InitialFile[] = [];
  for (const path of ['a.bin', 'd/y.bin']) {
    const f = { path, seed: nextSeed(), sizeBytes: 1 + int(200 * 1024) };
    initial.push(f);
    sizes.set(path, f.sizeBytes);
  }

  const steps: Step[] = [];
  let closes = 0;
  let acks = 0;
  let bytes = 0;
  const count = 25 + int(16);
  for (let i = 0; i < count; i++) {
    const existing = PATHS.filter((p) => sizes.has(p));
    const r = rnd();
    if (r < 0.3 || existing.length === 0) {
      const path = pickOf(PATHS);
      const chunks = chunksOf(sizeOf());
      const fsyncAfter = chunks.length > 1 && rnd() < 0.4 ? int(chunks.length - 1) : undefined;
      steps.push({ kind: 'save', path, seed: nextSeed(), chunks, fsyncAfter });
      sizes.set(path, chunks.reduce((a, b) => a + b, 0));
      closes += 1;
      acks += fsyncAfter === undefined ? 1 : 2;
      bytes += sizes.get(path) ?? 0;
    } else if (r < 0.45) {
      const path = pickOf(PATHS);
      const chunks = chunksOf(sizeOf());
      steps.push({ kind: 'atomic-save', path, tmp: `${path}.tmp`, seed: nextSeed(), chunks });
      sizes.set(path, chunks.reduce((a, b) => a + b, 0));
      closes += 1;
      acks += 3;
      bytes += sizes.get(path) ?? 0;
    } else if (r < 0.6) {
      const path = pickOf(PATHS);
      const sizeBytes = 1 + int(32 * 1024);
      steps.push({ kind: 'append', path, seed: nextSeed(), sizeBytes });
      sizes.set(path, (sizes.get(path) ?? 0) + sizeBytes);
      closes += 1;
      acks += 1;
      bytes += sizeBytes;
    } else if (r < 0.75) {
      const path = pickOf(existing);
      const size = sizes.get(path) ?? 0;
      const offset = int(size + 64 * 1024);
      const sizeBytes = 1 + int(32 * 1024);
      steps.push({ kind: 'patch', path, seed: nextSeed(), offset, sizeBytes });
      sizes.set(path, Math.max(size, offset + sizeBytes));
      closes += 1;
      acks += 1;
      bytes += sizeBytes;
    } else if (r < 0.9) {
      const from = pickOf(existing);
      const to = pickOf(PATHS.filter((p) => p !== from));
      steps.push({ kind: 'rename', from, to });
      sizes.set(to, sizes.get(from) ?? 0);
      sizes.delete(from);
      acks += 1;
    } else {
      const path = pickOf(existing);
      steps.push({ kind: 'unlink', path });
      sizes.delete(path);
      acks += 1;
    }
  }
  return { initial, steps, closes, acks, bytes };
}
