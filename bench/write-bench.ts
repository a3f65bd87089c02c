// npm run bench:write — write figures of fusestream next to `rclone mount --vfs-cache-mode
// writes`, both mounting a local directory read-write with the same write-back delay.
//
// Figures, each taken on a fresh mount over an empty remote directory and an empty cache dir:
//   1. dd bs=1M of a pre-generated pseudo-random 1 GiB file into the mount: time until dd's close
//      returns, and time until the remote directory holds the same bytes;
//   2. tar -xf of a 10,000-file tree (1–8 KiB files in 100 directories): time until tar exits,
//      and time until every file is on the remote;
//   3. 2,000 files of 4 KiB created, written and closed one after another in one directory:
//      files per second, and time until every file is on the remote.
// Each figure gets one throwaway warm-up pass per tool, then FUSESTREAM_BENCH_RUNS measured runs;
// the report gives medians, min–max and the ratio fusestream ÷ rclone of the same bench run.
//
// Every byte written to a mount is written by a child process (dd, tar, node -e); this process
// only reads the remote directories (plain local directories, never a mount), /proc and its own
// temp files. "On the remote" means byte-identical: sampled blocks, then the whole file (sha256
// for the big file, a byte comparison for small ones), polled from the remote directory.
//
//   FUSESTREAM_BENCH_QUICK=1            64 MiB, 1,000 files, 500 creates, no warm-up, 1 run;
//                                       results written to $TMPDIR/fusestream-bench-results
//   FUSESTREAM_BENCH_RUNS=N             measured runs per figure (default 3, quick 1)
//   FUSESTREAM_BENCH_WARMUP=0|1         the throwaway pass before the runs (default 1, quick 0)
//   FUSESTREAM_BENCH_TOOLS=a,b          subset of: fusestream,rclone-writes (names of the read
//                                       bench's tools are ignored, so one list serves `npm run bench`)
//   FUSESTREAM_BENCH_PHASES=a,b         subset of: sequential,untar,create (default all)
//   FUSESTREAM_BENCH_WRITE_MIB=N        size of the sequential write (default 1024)
//   FUSESTREAM_BENCH_TREE_FILES=N       files in the untarred tree (default 10000)
//   FUSESTREAM_BENCH_CREATE_FILES=N     files in the create-rate figure (default 2000)
//   FUSESTREAM_BENCH_WRITE_BACK=S       write-back delay of both tools, seconds (default 5)
//   FUSESTREAM_BENCH_CAP=S              longest run of one client (default 60, quick 30): a slower
//                                       one is stopped there and its figure extrapolated (†);
//                                       warm-up passes stop at 15 s (they only warm caches)
//   FUSESTREAM_BENCH_REMOTE_TIMEOUT=S   longest wait for one figure's data to reach the remote
//                                       after the client exits (default 180)
//   FUSESTREAM_BENCH_OUT=DIR            where write.md and write.svg go (default bench/results;
//                                       a temp dir for quick runs, non-default sizes or phases)
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, createReadStream, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { prng } from '../test/support/prng.js';
import {
  bashTimedAt,
  cpuTicks,
  describeExec,
  dpkgVersion,
  envNumber,
  exec,
  firstLine,
  gitCommit,
  machine,
  MOUNT_TOOLS,
  median,
  mustExec,
  peakRssBytes,
  progress,
  runBench,
  sig3,
  sleep,
  startDaemon,
  stopEverything,
  writeMountTools,
  type Daemon,
  type MountTool,
  type WriteToolId,
} from './mount-tools.js';
import { barChartSvg, formatRatio } from './svg-chart.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

// ---------------------------------------------------------------- configuration

const QUICK = process.env.FUSESTREAM_BENCH_QUICK === '1';
const int = (name: string, dflt: number): number => Math.round(envNumber(name, dflt));
const cfg = {
  seqBytes: int('FUSESTREAM_BENCH_WRITE_MIB', QUICK ? 64 : 1024) * MiB,
  treeFiles: Math.max(1, int('FUSESTREAM_BENCH_TREE_FILES', QUICK ? 1000 : 10_000)),
  treeMinBytes: KiB,
  treeMaxBytes: 8 * KiB,
  createFiles: int('FUSESTREAM_BENCH_CREATE_FILES', QUICK ? 500 : 2000),
  createBytes: 4 * KiB,
  writeBackS: envNumber('FUSESTREAM_BENCH_WRITE_BACK', 5),
  runs: int('FUSESTREAM_BENCH_RUNS', QUICK ? 1 : 3),
  warmUp: process.env.FUSESTREAM_BENCH_WARMUP === undefined || process.env.FUSESTREAM_BENCH_WARMUP === '' ? !QUICK : process.env.FUSESTREAM_BENCH_WARMUP !== '0',
  remoteTimeoutMs: envNumber('FUSESTREAM_BENCH_REMOTE_TIMEOUT', 180) * 1000,
  /** Longest run of one client (dd, tar, the create loop): it is stopped there (SIGINT). */
  capMs: envNumber('FUSESTREAM_BENCH_CAP', QUICK ? 30 : 60) * 1000,
};
/** A warm-up pass only warms caches (source file, binaries, JIT): it stops sooner. */
const WARMUP_CAP_MS = Math.min(cfg.capMs, 15_000);
/** A client still running this long after its cap is killed (SIGKILL) and its pass fails. */
const clientTimeoutMs = cfg.capMs + 60_000;
const treeDirs = Math.max(1, Math.min(100, Math.floor(cfg.treeFiles / 10)));
const selectedPhases = (process.env.FUSESTREAM_BENCH_PHASES ?? '').split(',').filter((s) => s !== '');
/** The standard sizes and every phase: only those results go to bench/results by default. */
const standard = !QUICK && selectedPhases.length === 0 && cfg.seqBytes === GiB && cfg.treeFiles === 10_000 && cfg.createFiles === 2000 && cfg.writeBackS === 5;
const repoRoot = new URL('../../', import.meta.url).pathname;
const outDir = process.env.FUSESTREAM_BENCH_OUT ?? (standard ? join(repoRoot, 'bench/results') : join(tmpdir(), 'fusestream-bench-results'));

const ALL_TOOLS = writeMountTools(cfg.writeBackS);
const selected = (process.env.FUSESTREAM_BENCH_TOOLS ?? '').split(',').filter((s) => s !== '');
for (const s of selected)
  if (!ALL_TOOLS.some((t) => t.id === s) && !MOUNT_TOOLS.some((t) => t.id === s)) throw new Error(`FUSESTREAM_BENCH_TOOLS: unknown tool "${s}" (write bench: ${ALL_TOOLS.map((t) => t.id).join(', ')})`);
const tools = ALL_TOOLS.filter((t) => selected.length === 0 || selected.includes(t.id));
const FS: WriteToolId = 'fusestream';
const RC: WriteToolId = 'rclone-writes';

// ---------------------------------------------------------------- figures and results

type FigId = 'seqClose' | 'seqRemote' | 'seqCpu' | 'seqRss' | 'untarExit' | 'untarRemote' | 'createRate' | 'createRemote';

interface Figure {
  id: FigId;
  label: string;
  /** Which way is better; the chart inverts 'lower' figures so that higher is better. */
  better: 'higher' | 'lower';
  fmt: (v: number) => string;
}

const sizeLabel = (bytes: number): string => {
  const [n, unit] = bytes >= GiB ? [bytes / GiB, 'GiB'] : [bytes / MiB, 'MiB'];
  return `${Number.isInteger(n) ? String(n) : sig3(n)} ${unit}`;
};
const seqLabel = sizeLabel(cfg.seqBytes);
const treeLabel = `${cfg.treeFiles.toLocaleString('en')} files`;
const createLabel = `${cfg.createFiles.toLocaleString('en')} x 4 KiB`;
const secs = (v: number): string => v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2);

const FIGURES: Figure[] = [
  { id: 'seqClose', label: `sequential write of ${seqLabel}, dd bs=1M, until close returns, MiB/s`, better: 'higher', fmt: sig3 },
  { id: 'seqRemote', label: `sequential write of ${seqLabel}, until byte-identical on the remote, MiB/s`, better: 'higher', fmt: sig3 },
  { id: 'seqCpu', label: 'daemon CPU seconds per GiB, write + upload', better: 'lower', fmt: (v) => v.toFixed(2) },
  { id: 'seqRss', label: 'daemon peak RSS (VmHWM) after the sequential write, MiB', better: 'lower', fmt: (v) => v.toFixed(0) },
  { id: 'untarExit', label: `tar -xf of ${treeLabel} (1–8 KiB, ${treeDirs} dirs), until tar exits, s`, better: 'lower', fmt: secs },
  { id: 'untarRemote', label: `tar -xf of ${treeLabel}, until all are on the remote, s`, better: 'lower', fmt: secs },
  { id: 'createRate', label: `create + write + close of ${createLabel} in one directory, files/s`, better: 'higher', fmt: (v) => v.toFixed(0) },
  { id: 'createRemote', label: `create of ${createLabel}, until all are on the remote, s`, better: 'lower', fmt: secs },
];

interface Sample {
  v?: number;
  failed?: string;
  /** The client was stopped at the cap; the value is extrapolated from what it did until then. */
  capped?: boolean;
}

const results = new Map<FigId, Map<WriteToolId, Sample[]>>();
/** One line per failed measured pass (tool, figure group, run, reason), for the report. */
const passFailures: string[] = [];
const samples = (fig: FigId, tool: WriteToolId): Sample[] => results.get(fig)?.get(tool) ?? [];
const okValues = (fig: FigId, tool: WriteToolId): number[] => samples(fig, tool).flatMap((s) => (s.v === undefined ? [] : [s.v]));
function med(fig: FigId, tool: WriteToolId): number | undefined {
  const v = okValues(fig, tool);
  return v.length === 0 ? undefined : median(v);
}
/** fusestream ÷ rclone, medians of this bench run. */
function ratio(fig: FigId): number | undefined {
  const a = med(fig, FS);
  const b = med(fig, RC);
  return a === undefined || b === undefined || b === 0 ? undefined : a / b;
}

/**
 * Takes one pass's values. A warm-up pass's values are shown in the progress line and dropped;
 * on failure, the figures not taken yet get the reason.
 */
class Recorder {
  private readonly left: Set<FigId>;
  private readonly taken: string[] = [];
  private why: string | undefined;
  constructor(
    private readonly tool: WriteToolId,
    figs: readonly FigId[],
    private readonly keep: boolean,
  ) {
    this.left = new Set(figs);
  }
  put(fig: FigId, v: number, capped = false): void {
    this.left.delete(fig);
    const f = FIGURES.find((x) => x.id === fig);
    this.taken.push(`${fig} ${f ? f.fmt(v) : String(v)}${capped ? ' (capped, extrapolated)' : ''}`);
    if (this.keep) this.record(fig, capped ? { v, capped } : { v });
  }
  fail(err: unknown): void {
    this.why = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 400);
    if (this.keep) for (const f of this.left) this.record(f, { failed: this.why });
    this.left.clear();
  }
  summary(): string {
    return [...this.taken, ...(this.why === undefined ? [] : [`FAILED: ${this.why}`])].join(', ');
  }
  /** Why the pass failed, if it did. */
  get failure(): string | undefined {
    return this.why;
  }
  private record(fig: FigId, s: Sample): void {
    let byTool = results.get(fig);
    if (!byTool) results.set(fig, (byTool = new Map<WriteToolId, Sample[]>()));
    byTool.set(this.tool, [...(byTool.get(this.tool) ?? []), s]);
  }
}

// ---------------------------------------------------------------- dataset

/** A seeded pseudo-random byte stream (AES-128-CTR keystream): incompressible, the same on every run. */
function keystream(seed: number): (n: number) => Buffer {
  const key = createHash('sha256').update(`fusestream write bench ${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return (n) => cipher.update(Buffer.alloc(n));
}

interface SourceFile {
  path: string;
  size: number;
  sha256: string;
}

/** What a remote tree must hold: relative path → exact bytes. */
type ExpectedTree = ReadonlyMap<string, Buffer>;

interface Dataset {
  source: SourceFile;
  tarball: string;
  tree: ExpectedTree;
  createBase: string;
  created: ExpectedTree;
}

function createdName(i: number): string {
  return `c${String(i).padStart(5, '0')}.bin`;
}

/** The bytes of created file `i`: the shared 4 KiB with `i` in its first four bytes (the child does the same). */
function createdBytes(base: Buffer, i: number): Buffer {
  const b = Buffer.from(base);
  b.writeUInt32LE(i, 0);
  return b;
}

async function writeDataset(root: string): Promise<Dataset> {
  // 1. The big source file, on local disk (and so in the page cache for every pass).
  const source: SourceFile = { path: join(root, 'source.bin'), size: cfg.seqBytes, sha256: '' };
  const next = keystream(1);
  const hash = createHash('sha256');
  const fd = openSync(source.path, 'w');
  try {
    for (let off = 0; off < cfg.seqBytes; off += 16 * MiB) {
      const chunk = next(Math.min(16 * MiB, cfg.seqBytes - off));
      hash.update(chunk);
      writeSync(fd, chunk);
    }
  } finally {
    closeSync(fd);
  }
  source.sha256 = hash.digest('hex');

  // 2. The tree, staged on local disk, tarred once, then only kept in memory.
  const staging = join(root, 'staging');
  const rand = prng(2);
  const bytes = keystream(3);
  const tree = new Map<string, Buffer>();
  for (let d = 0; d < treeDirs; d++) mkdirSync(join(staging, 'tree', `d${String(d).padStart(3, '0')}`), { recursive: true });
  for (let i = 0; i < cfg.treeFiles; i++) {
    const rel = `tree/d${String(i % treeDirs).padStart(3, '0')}/f${String(i).padStart(5, '0')}.bin`;
    const content = bytes(cfg.treeMinBytes + Math.floor(rand() * (cfg.treeMaxBytes - cfg.treeMinBytes + 1)));
    writeFileSync(join(staging, rel), content);
    tree.set(rel, content);
  }
  const tarball = join(root, 'tree.tar');
  await mustExec('tar', ['-cf', tarball, '-C', staging, 'tree'], 300_000);
  rmSync(staging, { recursive: true, force: true });

  // 3. The 4 KiB the create loop writes (with the file's index in its first bytes).
  const createBase = join(root, 'create-base.bin');
  const base = keystream(4)(cfg.createBytes);
  writeFileSync(createBase, base);
  const created = new Map<string, Buffer>();
  for (let i = 0; i < cfg.createFiles; i++) created.set(`create/${createdName(i)}`, createdBytes(base, i));
  return { source, tarball, tree, createBase, created };
}

// ---------------------------------------------------------------- is it on the remote?

/** Polling period while waiting for the remote; short next to every figure it ends. */
const POLL_MS = 50;

/** The last MiB and 16 spread 4 KiB blocks of `path` equal those of `src` (a cheap test before hashing). */
function sampledBlocksMatch(path: string, src: SourceFile): boolean {
  const blocks: [number, number][] = [[Math.max(0, src.size - MiB), Math.min(MiB, src.size)]];
  for (let k = 0; k < 16; k++) {
    const off = Math.floor((src.size * k) / 16 / 4096) * 4096;
    blocks.push([off, Math.min(4096, src.size - off)]);
  }
  const a = openSync(path, 'r');
  const b = openSync(src.path, 'r');
  try {
    for (const [off, len] of blocks) {
      const x = Buffer.alloc(len);
      const y = Buffer.alloc(len);
      if (readSync(a, x, 0, len, off) !== len || readSync(b, y, 0, len, off) !== len || !x.equals(y)) return false;
    }
    return true;
  } finally {
    closeSync(a);
    closeSync(b);
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Waits until `path` (in a remote directory) holds exactly `src`'s bytes; returns the time
 * (epoch ms) of the poll that first saw it complete. That poll's cheap test is confirmed by a
 * full sha256 before the time counts; a file that is still being written fails one or the other.
 */
async function waitRemoteFile(path: string, src: SourceFile, deadlineMs: number): Promise<number> {
  let seen = 'absent';
  for (;;) {
    const at = Date.now();
    const st = statSync(path, { throwIfNoEntry: false });
    if (st !== undefined) {
      seen = `${st.size} bytes`;
      if (st.size === src.size && sampledBlocksMatch(path, src)) {
        if ((await sha256File(path)) === src.sha256) return at;
        seen += ', sha256 differs';
      }
    }
    if (Date.now() > deadlineMs) throw new Error(`${path} was not complete on the remote in time (${seen})`);
    await sleep(POLL_MS);
  }
}

/**
 * Waits until every file of `expected` is in `root` with exactly its bytes; returns the time
 * (epoch ms) at which the last one was found complete. A directory is listed before its pending
 * files are read, so missing files cost no failed open each.
 */
async function waitRemoteTree(root: string, expected: ExpectedTree, deadlineMs: number): Promise<number> {
  const pending = new Map<string, Set<string>>();
  for (const rel of expected.keys()) {
    const dir = dirname(rel);
    let names = pending.get(dir);
    if (!names) pending.set(dir, (names = new Set<string>()));
    names.add(rel.slice(dir.length + 1));
  }
  let left = expected.size;
  let lastAt = Date.now();
  for (;;) {
    for (const [dir, names] of pending) {
      let listed: string[];
      try {
        listed = readdirSync(join(root, dir));
      } catch {
        continue; // not created yet
      }
      for (const name of listed) {
        if (!names.has(name)) continue;
        const rel = `${dir}/${name}`;
        let bytes: Buffer;
        try {
          bytes = readFileSync(join(root, rel));
        } catch {
          continue;
        }
        if (!bytes.equals(expected.get(rel) ?? Buffer.alloc(0))) continue;
        names.delete(name);
        left--;
        lastAt = Date.now();
      }
      if (names.size === 0) pending.delete(dir);
    }
    if (left === 0) return lastAt;
    if (Date.now() > deadlineMs) {
      const example = [...pending].flatMap(([dir, names]) => [...names].slice(0, 1).map((n) => `${dir}/${n}`))[0] ?? '?';
      throw new Error(`${left} of ${expected.size} files were not complete on the remote in time (e.g. ${example})`);
    }
    await sleep(POLL_MS);
  }
}

// ---------------------------------------------------------------- sessions

let workRoot = '';
let data: Dataset | undefined;
let clkTck = 100;

function dataset(): Dataset {
  if (!data) throw new Error('the dataset is not written yet');
  return data;
}

/** Stops every client and daemon this bench started, then removes its temp dir (it holds no mount). */
async function cleanup(): Promise<void> {
  await stopEverything();
  if (workRoot !== '') rmSync(workRoot, { recursive: true, force: true });
}

/** A fresh mount of `tool` over an empty remote dir with an empty cache dir, torn down even on failure. */
async function withWriteMount<T>(tool: MountTool<WriteToolId>, fn: (d: Daemon<WriteToolId>, remote: string) => Promise<T>): Promise<T> {
  // Earlier passes' dirty pages (cache files, remote copies) are flushed before this one starts.
  await mustExec('sync', [], 120_000);
  const work = mkdtempSync(join(workRoot, `${tool.id}-`));
  const remote = join(work, 'remote');
  const cache = join(work, 'cache');
  mkdirSync(remote);
  mkdirSync(cache);
  let d: Daemon<WriteToolId> | undefined;
  try {
    d = await startDaemon(tool, remote, cache, work);
    try {
      return await fn(d, remote);
    } catch (err) {
      const tail = d.alive() ? '' : ` (daemon exited: ${d.logTail()})`;
      throw new Error(`${err instanceof Error ? err.message : String(err)}${tail}`, { cause: err });
    }
  } finally {
    await d?.stop();
    // The mountpoint is a temp dir of its own (never inside `work`), so this never descends into a mount.
    rmSync(work, { recursive: true, force: true });
  }
}

/** dd's own statistics: "N bytes (...) copied, S s, ..." (C locale). */
function ddStats(stderr: string): { bytes: number; seconds: number } | undefined {
  const m = /^(\d+) bytes .*copied, ([\d.e+-]+) s/m.exec(stderr);
  return m ? { bytes: Number(m[1]), seconds: Number(m[2]) } : undefined;
}

async function phaseSequential(tool: MountTool<WriteToolId>, rec: Recorder, capMs: number): Promise<void> {
  const { source } = dataset();
  await withWriteMount(tool, async (d, remote) => {
    const c0 = cpuTicks(d.pid);
    const w = await bashTimedAt('dd if="$1" of="$2" bs=1M', [source.path, join(d.mnt, 'big.bin')], { timeoutMs: clientTimeoutMs, capMs });
    if (w.capped) {
      // The rate of what dd copied until the cap; the other figures need the whole file.
      const st = ddStats(w.result.stderr);
      if (!st || st.seconds <= 0) throw new Error(`dd was stopped at the cap and printed no statistics: ${describeExec(w.result)}`);
      rec.put('seqClose', st.bytes / MiB / st.seconds, true);
      return;
    }
    rec.put('seqClose', source.size / MiB / (w.endS - w.startS));
    const doneMs = await waitRemoteFile(join(remote, 'big.bin'), source, Date.now() + cfg.remoteTimeoutMs);
    rec.put('seqRemote', source.size / MiB / (doneMs / 1000 - w.startS));
    if (!d.alive()) throw new Error('the daemon exited during the write');
    rec.put('seqCpu', (cpuTicks(d.pid) - c0) / clkTck / (source.size / GiB));
    rec.put('seqRss', peakRssBytes(d.pid) / MiB);
  });
}

async function phaseUntar(tool: MountTool<WriteToolId>, rec: Recorder, capMs: number): Promise<void> {
  const { tarball, tree } = dataset();
  await withWriteMount(tool, async (d, remote) => {
    // --no-same-owner: tar running as root would otherwise chown every file to the archive's
    // owner. -v, line-buffered, names each member as tar starts on it: what a capped run counts.
    const w = await bashTimedAt('stdbuf -oL tar -xvf "$1" -C "$2" --no-same-owner', [tarball, d.mnt], { timeoutMs: clientTimeoutMs, capMs });
    if (w.capped) {
      // Every member named but the last was complete when tar was stopped.
      const done = w.result.stdout.split('\n').filter((l) => l.endsWith('.bin')).length - 1;
      if (done <= 0) throw new Error(`tar completed no file before the cap: ${describeExec(w.result)}`);
      rec.put('untarExit', (cfg.treeFiles * (w.endS - w.startS)) / done, true);
      return;
    }
    rec.put('untarExit', w.endS - w.startS);
    const doneMs = await waitRemoteTree(remote, tree, Date.now() + cfg.remoteTimeoutMs);
    rec.put('untarRemote', doneMs / 1000 - w.startS);
  });
}

// The create loop, run by a child node: mkdir, then N x (open O_CREAT|O_EXCL, one 4 KiB write,
// close), timed inside the child around the loop and stopped at the cap; prints the start and
// end (epoch ms) and how many files it made.
const CREATE_SCRIPT = `
const fs = require('node:fs');
const path = require('node:path');
const [dir, n, basePath, capMs] = process.argv.slice(1);
const base = fs.readFileSync(basePath);
const now = () => performance.timeOrigin + performance.now();
let i = -1;
try {
  fs.mkdirSync(dir);
  const t0 = now();
  for (i = 0; i < Number(n) && now() - t0 < Number(capMs); i++) {
    const b = Buffer.from(base);
    b.writeUInt32LE(i, 0);
    const fd = fs.openSync(path.join(dir, 'c' + String(i).padStart(5, '0') + '.bin'), 'wx');
    if (fs.writeSync(fd, b) !== b.length) throw new Error('short write');
    fs.closeSync(fd);
  }
  const t1 = now();
  process.stdout.write(t0 + ' ' + t1 + ' ' + i + '\\n');
} catch (err) {
  process.stderr.write((i < 0 ? 'mkdir' : 'file ' + i) + ': ' + err.message + '\\n');
  process.exitCode = 1;
}
`;

async function phaseCreate(tool: MountTool<WriteToolId>, rec: Recorder, capMs: number): Promise<void> {
  const { createBase, created } = dataset();
  await withWriteMount(tool, async (d, remote) => {
    const args = ['-e', CREATE_SCRIPT, join(d.mnt, 'create'), String(cfg.createFiles), createBase, String(capMs)];
    const r = await exec(process.execPath, args, { timeoutMs: clientTimeoutMs });
    const m = /^([\d.]+) ([\d.]+) (\d+)$/m.exec(r.stdout);
    if (r.code !== 0 || !m) throw new Error(`create loop: ${describeExec(r)}`);
    const startMs = Number(m[1]);
    const made = Number(m[3]);
    const capped = made < cfg.createFiles;
    rec.put('createRate', made / ((Number(m[2]) - startMs) / 1000), capped);
    if (capped) return;
    const doneMs = await waitRemoteTree(remote, created, Date.now() + cfg.remoteTimeoutMs);
    rec.put('createRemote', (doneMs - startMs) / 1000);
  });
}

interface Phase {
  id: 'sequential' | 'untar' | 'create';
  name: string;
  figs: FigId[];
  /** One pass; a client running longer than `capMs` is stopped there. */
  run: (t: MountTool<WriteToolId>, rec: Recorder, capMs: number) => Promise<void>;
}
const ALL_PHASES: Phase[] = [
  { id: 'sequential', name: 'sequential write', figs: ['seqClose', 'seqRemote', 'seqCpu', 'seqRss'], run: phaseSequential },
  { id: 'untar', name: 'untar', figs: ['untarExit', 'untarRemote'], run: phaseUntar },
  { id: 'create', name: 'small-file creates', figs: ['createRate', 'createRemote'], run: phaseCreate },
];
for (const s of selectedPhases) if (!ALL_PHASES.some((p) => p.id === s)) throw new Error(`FUSESTREAM_BENCH_PHASES: unknown phase "${s}" (${ALL_PHASES.map((p) => p.id).join(', ')})`);
const phases = ALL_PHASES.filter((p) => selectedPhases.length === 0 || selectedPhases.includes(p.id));

// ---------------------------------------------------------------- report

function versions(): string[] {
  return [
    `fusestream ${gitCommit(repoRoot)} (Node ${process.version})`,
    `${firstLine('rclone', ['version'])} (Debian ${dpkgVersion('rclone')})`,
    `${firstLine('tar', ['--version'])}, ${firstLine('dd', ['--version'])}, ${firstLine('fusermount3', ['--version'])}`,
  ];
}

function cell(fig: Figure, tool: WriteToolId): string {
  const ss = samples(fig.id, tool);
  if (ss.length === 0) return '—';
  const v = okValues(fig.id, tool);
  if (v.length === 0) return 'failed';
  let text = fig.fmt(median(v));
  if (v.length > 1) text += ` (${fig.fmt(Math.min(...v))}–${fig.fmt(Math.max(...v))})`;
  if (ss.some((x) => x.capped === true)) text += ' †';
  const failed = ss.length - v.length;
  if (failed > 0) text += ` [${failed}/${ss.length} runs failed]`;
  return text;
}

function ratioCell(fig: Figure): string {
  const r = ratio(fig.id);
  return r === undefined ? '—' : `${formatRatio(r)}x`;
}

function runsCell(fig: Figure, tool: WriteToolId): string {
  const ss = samples(fig.id, tool);
  return ss.length === 0 ? '—' : ss.map((s) => (s.v === undefined ? 'failed' : `${fig.fmt(s.v)}${s.capped === true ? '†' : ''}`)).join(' · ');
}

interface Target {
  text: string;
  fig: FigId;
  /** The target holds for this ratio fusestream ÷ rclone. */
  ok: (r: number) => boolean;
  unit: string;
}

const TARGETS: Target[] = [
  { text: 'sequential write throughput (until close) >= 1.5x rclone', fig: 'seqClose', ok: (r) => r >= 1.5, unit: 'MiB/s' },
  { text: `untar of ${treeLabel} (until tar exits) <= rclone's time`, fig: 'untarExit', ok: (r) => r <= 1, unit: 's' },
];

function targetLines(): string[] {
  return TARGETS.map((t) => {
    const f = FIGURES.find((x) => x.id === t.fig);
    const r = ratio(t.fig);
    const a = med(t.fig, FS);
    const b = med(t.fig, RC);
    if (!f || r === undefined || a === undefined || b === undefined) return `- ${t.text}: **not measured** (fusestream or rclone failed or was not run)`;
    const capped = [FS, RC].some((tool) => samples(t.fig, tool).some((x) => x.capped === true)) ? ', † extrapolated from capped runs' : '';
    return `- ${t.text}: **${t.ok(r) ? 'met' : 'missed'}**, ${formatRatio(r)}x (${f.fmt(a)} vs ${f.fmt(b)} ${t.unit}${capped})`;
  });
}

function chart(title: string): string {
  const groups: { fig: FigId; label: string }[] = [
    { fig: 'seqClose', label: 'sequential write, until close' },
    { fig: 'seqRemote', label: 'sequential write, until on the remote' },
    { fig: 'untarExit', label: 'untar, until tar exits' },
    { fig: 'untarRemote', label: 'untar, until on the remote' },
    { fig: 'createRate', label: 'small-file creates, files/s' },
    { fig: 'createRemote', label: 'small-file creates, until on the remote' },
    { fig: 'seqCpu', label: 'daemon CPU per GiB written' },
  ];
  const svg = barChartSvg({
    title: 'fusestream writes relative to rclone mount --vfs-cache-mode writes',
    subtitle: `${title}. 1x = rclone in the same run; higher is better (times and CPU inverted); log scale; medians of ${cfg.runs} run(s); † some runs capped.`,
    series: [{ name: 'fusestream', color: '#d62728' }],
    groups: groups.map((g) => {
      const r = ratio(g.fig);
      const better = FIGURES.find((f) => f.id === g.fig)?.better ?? 'higher';
      const capped = [FS, RC].some((t) => samples(g.fig, t).some((x) => x.capped === true));
      const value = samples(g.fig, FS).length === 0 ? 'not measured' : r === undefined ? 'failed' : better === 'lower' ? 1 / r : r;
      return { label: `${g.label}${capped ? ' †' : ''}`, values: [value] };
    }),
    min: 0.01,
    max: 100,
    footnote: machine(),
  });
  // The chart module names its baseline "raw" (the read bench's); here the baseline is rclone.
  return svg.replace('1x (raw)', '1x (rclone)');
}

function commandsText(): string {
  const fsTool = ALL_TOOLS.find((t) => t.id === FS);
  const rcTool = ALL_TOOLS.find((t) => t.id === RC);
  const show = (t: MountTool<WriteToolId> | undefined): string => {
    if (!t) return '?';
    const { cmd, args } = t.command('REMOTE', 'MNT', 'CACHE', 'WORK');
    return [cmd === process.execPath ? 'node' : cmd, ...args.map((a) => a.replace(/^.*\/bin\/fusestream\.js$/, 'bin/fusestream.js'))].join(' ');
  };
  return `\`${show(fsTool)}\` and \`${show(rcTool)}\``;
}

function report(started: Date, minutes: number, loadBefore: number[], loadAfter: number[], vs: string[]): { md: string; table: string; title: string } {
  const both = tools.length === 2;
  const header = `| figure | ${tools.map((t) => t.label).join(' | ')}${both ? ' | fusestream ÷ rclone' : ''} |\n|---|${tools.map(() => '---').join('|')}${both ? '|---' : ''}|`;
  const table = [header, ...FIGURES.map((f) => `| ${f.label} | ${tools.map((t) => cell(f, t.id)).join(' | ')}${both ? ` | ${ratioCell(f)}` : ''} |`)].join('\n');
  const runsHeader = `| figure | ${tools.map((t) => t.label).join(' | ')} |\n|---|${tools.map(() => '---').join('|')}|`;
  const runsTable = [runsHeader, ...FIGURES.map((f) => `| ${f.label} | ${tools.map((t) => runsCell(f, t.id)).join(' | ')} |`)].join('\n');
  const la = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ');
  const mode = QUICK ? ' (QUICK mode: small sizes, not comparable)' : standard ? '' : ' (non-default sizes, delay or phases, not comparable)';
  const title = `npm run bench:write — ${started.toISOString().slice(0, 10)}${mode}`;
  const env = Object.entries(process.env)
    .filter(([k]) => k.startsWith('FUSESTREAM_BENCH_'))
    .map(([k, v]) => `${k}=${v ?? ''} `)
    .join('');
  const md = `# Write benchmark: fusestream and rclone mount --vfs-cache-mode writes

${title}. Command: \`${env}npm run bench:write\`; took ${minutes.toFixed(1)} min.

**Machine:** ${machine()}. Load average ${la(loadBefore)} before and ${la(loadAfter)} after the run (other work may share these cores).

**Versions:**
${vs.map((v) => `- ${v}`).join('\n')}

**Setup:** each tool mounts a local directory (the remote) read-write, with the same write-back delay of ${cfg.writeBackS} s (a closed file is uploaded that long after its last change): ${commandsText()}. Every pass starts a fresh mount over an empty remote directory and an empty cache dir (after a \`sync\`), on the same disk as the source data. Each figure is the median of ${cfg.runs} measured run(s)${cfg.warmUp ? `, after one throwaway warm-up pass per tool (stopped at ${WARMUP_CAP_MS / 1000} s)` : ''}; in parentheses, the lowest and highest run. The last column is fusestream ÷ rclone of the medians of this run: above 1 is faster for rates (MiB/s, files/s), slower for times and more for CPU and memory. Tools take turns within each run (the order alternates from run to run).

${table}

† at least one run was stopped at the ${cfg.capMs / 1000} s cap, and its value is extrapolated from what the client did until then (see below).

## Targets (fusestream, ratios to rclone in the same run)

${targetLines().join('\n')}

![fusestream ÷ rclone](write.svg)

## How each figure is taken

- **Sequential write:** \`dd if=SOURCE of=MNT/big.bin bs=1M\`, where SOURCE is a ${seqLabel} file of pseudo-random bytes (an AES-CTR keystream, incompressible) written to local disk before the first pass, so it is read from the page cache. *Until close returns*: bash's \`$EPOCHREALTIME\` around dd, whose exit follows its close(2) of the output (with the flush that close does). *Until on the remote*: from the same start until the remote directory holds the file with the right size, the right last MiB and 16 spread 4 KiB blocks, confirmed by a full sha256 (polled every ${POLL_MS} ms; the time is that of the poll, not of the hash). Both are given as ${seqLabel} ÷ time. The remote figure includes the ${cfg.writeBackS} s write-back delay of both tools.
- **Daemon CPU and RSS:** utime + stime from /proc/PID/stat (\`getconf CLK_TCK\` = ${clkTck}) from just before dd starts until the file is verified on the remote, divided by the GiB written; VmHWM from /proc/PID/status at that point (the daemon's peak since it started).
- **Untar:** \`tar -xf TREE.tar -C MNT --no-same-owner\` of a tarball of ${treeLabel} of 1–8 KiB (seeded random sizes and pseudo-random bytes) spread over ${treeDirs} directories, timed with \`$EPOCHREALTIME\` around tar. *Until on the remote*: from tar's start until every file is in the remote directory with exactly its bytes (each directory listed, then its files compared, every ${POLL_MS} ms).
- **Small-file creates:** a child \`node -e\` loop that makes one directory, then creates ${cfg.createFiles.toLocaleString('en')} files in it one after another (open O_CREAT|O_EXCL, one 4 KiB write, close), timed inside the child around the loop; files ÷ seconds. *Until on the remote*: from the loop's start until every file is on the remote with its bytes, as for the untar.
- **The cap:** a client still running after ${cfg.capMs / 1000} s (\`FUSESTREAM_BENCH_CAP\`) gets SIGINT, which keeps the whole bench near its time budget. Such a run is marked †: dd's MiB/s is then dd's own rate for what it copied; the untar time is ${treeLabel} × elapsed ÷ the files tar had completed (with \`tar -v\` line-buffered through \`stdbuf -oL\`, every member it named but the last), which is *optimistic* when the rate falls as the tree grows; the create rate is the files made ÷ the time taken. A capped run takes no "until on the remote" figure (nor CPU and RSS for the sequential write).
- No figure is taken by the process that serves a mount; every byte written to a mount is written by a child process, and this bench only reads the remote directories, which are plain local directories.

## Every run

${runsTable}
${passFailures.length > 0 ? `\n## Failures\n\n${passFailures.map((f) => `- ${f}`).join('\n')}\n` : ''}`;
  return { md, table, title };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  if (tools.length === 0) {
    progress(`FUSESTREAM_BENCH_TOOLS=${process.env.FUSESTREAM_BENCH_TOOLS ?? ''} names no write-bench tool; nothing to do`);
    return;
  }
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const started = new Date();
  const vs = versions();
  const t0 = performance.now();
  const loadBefore = loadavg();
  progress(`write bench, ${cfg.warmUp ? 'warm-up + ' : ''}${cfg.runs} run(s), tools: ${tools.map((t) => t.id).join(', ')}; write-back delay ${cfg.writeBackS} s`);
  workRoot = mkdtempSync(join(tmpdir(), 'fusestream-write-bench-'));
  try {
    progress(`writing the data (${seqLabel} source file, a tarball of ${treeLabel}) to ${workRoot}`);
    data = await writeDataset(workRoot);
    for (const phase of phases) {
      for (let run = cfg.warmUp ? 0 : 1; run <= cfg.runs; run++) {
        const order = run % 2 === 1 ? tools : [...tools].reverse();
        for (const t of order) {
          const rec = new Recorder(t.id, phase.figs, run > 0);
          const p0 = performance.now();
          try {
            await phase.run(t, rec, run === 0 ? WARMUP_CAP_MS : cfg.capMs);
          } catch (err) {
            rec.fail(err);
            if (run > 0) passFailures.push(`${t.label}, ${phase.name}, run ${run}: ${rec.failure ?? '?'}`);
          }
          const which = run === 0 ? 'warm-up, dropped' : `run ${run}/${cfg.runs}`;
          progress(`${phase.name} [${which}] ${t.id}: ${rec.summary()} (${((performance.now() - p0) / 1000).toFixed(1)} s)`);
        }
      }
    }
  } finally {
    await cleanup();
  }
  const minutes = (performance.now() - t0) / 60_000;
  const { md, table, title } = report(started, minutes, loadBefore, loadavg(), vs);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'write.md'), md);
  writeFileSync(join(outDir, 'write.svg'), chart(title));
  process.stdout.write(`\n${table}\n\n${targetLines().join('\n')}\n\nwrote ${join(outDir, 'write.md')} and ${join(outDir, 'write.svg')} (${minutes.toFixed(1)} min)\n`);
}

await runBench('write', main, cleanup, progress);
