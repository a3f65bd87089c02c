// npm run bench — fusestream next to rclone mount (http backend, vfs cache off and full) and
// httpdirfs (with and without --cache), in one run against one nginx on 127.0.0.1 and one
// dataset, each figure also as a ratio to raw curl measured in the same run.
//
// Dataset: a big file (1 GiB), a directory of 10,000 files of 1 KiB, 64 files of 16 MiB.
// "Cold" means a fresh mount with an empty cache dir (the mount's page cache goes with it);
// nothing else is dropped. Every byte read from a mount is read by a child process (dd, fio,
// ls, bash); the bench only reads /proc, nginx's access log and its own temp files.
//
//   FUSESTREAM_BENCH_QUICK=1       small dataset (64 MiB file, 1,000 entries, 64 x 1 MiB), 1 run,
//                                  results written to $TMPDIR/fusestream-bench-results
//   FUSESTREAM_BENCH_RUNS=N        repetitions (default 3, quick 1)
//   FUSESTREAM_BENCH_TOOLS=a,b     subset of: fusestream,rclone-off,rclone-full,httpdirfs,httpdirfs-cache
//   FUSESTREAM_BENCH_OUT=DIR       where mount.md and mount.svg go (default bench/results)
//   FUSESTREAM_BENCH_CAP=SECONDS   longest single read phase; a slower tool is stopped there
//                                  and its rate is computed from what it read (default 60, quick 15)
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { startNginx, type NginxHandle } from '../test/support/nginx.js';
import { rampBuffer, writeRampFile } from '../test/support/ramp.js';
import {
  cpuTicks,
  exec,
  lastLines,
  MOUNT_TOOLS,
  mustExec,
  peakRssBytes,
  runBench,
  sleep,
  startDaemon,
  stopEverything,
  type Daemon,
  type ExecResult,
  type MountTool,
  type MountToolId,
} from './mount-tools.js';
import { barChartSvg, formatRatio, type ChartGroup } from './svg-chart.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

// ---------------------------------------------------------------- configuration

const QUICK = process.env.FUSESTREAM_BENCH_QUICK === '1';
const envInt = (name: string, dflt: number): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}=${v} is not a positive number`);
  return n;
};
const cfg = {
  bigBytes: QUICK ? 64 * MiB : GiB,
  manyEntries: QUICK ? 1000 : 10_000,
  manyBytes: KiB,
  parFiles: 64,
  parBytes: QUICK ? MiB : 16 * MiB,
  readers: 8,
  runs: Math.round(envInt('FUSESTREAM_BENCH_RUNS', QUICK ? 1 : 3)),
  capMs: envInt('FUSESTREAM_BENCH_CAP', QUICK ? 15 : 60) * 1000,
  fioSeconds: QUICK ? 3 : 10,
  rawRandomRequests: QUICK ? 2000 : 20_000,
  ttfbFiles: 5,
};
const repoRoot = new URL('../../', import.meta.url).pathname;
const outDir = process.env.FUSESTREAM_BENCH_OUT ?? (QUICK ? join(tmpdir(), 'fusestream-bench-results') : join(repoRoot, 'bench/results'));
const selected = (process.env.FUSESTREAM_BENCH_TOOLS ?? '').split(',').filter((s) => s !== '');
for (const s of selected) if (!MOUNT_TOOLS.some((t) => t.id === s)) throw new Error(`FUSESTREAM_BENCH_TOOLS: unknown tool "${s}"`);
const tools = MOUNT_TOOLS.filter((t) => selected.length === 0 || selected.includes(t.id));

type ToolId = 'raw' | MountToolId;
const columns: { id: ToolId; label: string }[] = [{ id: 'raw', label: 'raw (curl)' }, ...tools.map((t) => ({ id: t.id, label: t.label }))];

// ---------------------------------------------------------------- figures and results

type FigId =
  | 'seqCold'
  | 'seqWarm'
  | 'seqRemount'
  | 'ttfb'
  | 'rand1Iops'
  | 'rand1Lat'
  | 'rand1Amp'
  | 'rand4Iops'
  | 'rand4Lat'
  | 'rand4Amp'
  | 'par'
  | 'lsCold'
  | 'lsWarm'
  | 'rss'
  | 'cpuSeq'
  | 'cpuPar';

interface Figure {
  id: FigId;
  label: string;
  /** Ratio to raw shown (tool / raw). */
  ratio: boolean;
  fmt: (v: number) => string;
}

const sig3 = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toPrecision(2));
const bigLabel = cfg.bigBytes >= GiB ? `${cfg.bigBytes / GiB} GiB` : `${cfg.bigBytes / MiB} MiB`;
const parLabel = `${cfg.parFiles} x ${cfg.parBytes / MiB} MiB`;
const entries = cfg.manyEntries.toLocaleString('en');

const FIGURES: Figure[] = [
  { id: 'seqCold', label: `cold sequential read of ${bigLabel}, dd bs=1M, MiB/s`, ratio: true, fmt: sig3 },
  { id: 'seqWarm', label: 'warm re-read, same mount, MiB/s', ratio: true, fmt: sig3 },
  { id: 'seqRemount', label: 're-read after remount, disk cache kept, MiB/s', ratio: true, fmt: sig3 },
  { id: 'ttfb', label: 'time to first byte (open + 1-byte read), ms', ratio: true, fmt: (v) => v.toFixed(2) },
  { id: 'rand1Iops', label: 'random 4 KiB reads, fio psync, 1 job, IOPS', ratio: true, fmt: (v) => v.toFixed(0) },
  { id: 'rand1Lat', label: 'random 4 KiB, 1 job, latency p50 / p99, µs', ratio: false, fmt: (v) => v.toFixed(0) },
  { id: 'rand1Amp', label: 'random 4 KiB, 1 job, bytes fetched per byte read', ratio: true, fmt: sig3 },
  { id: 'rand4Iops', label: 'random 4 KiB reads, 4 jobs, IOPS', ratio: true, fmt: (v) => v.toFixed(0) },
  { id: 'rand4Lat', label: 'random 4 KiB, 4 jobs, latency p50 / p99, µs', ratio: false, fmt: (v) => v.toFixed(0) },
  { id: 'rand4Amp', label: 'random 4 KiB, 4 jobs, bytes fetched per byte read', ratio: true, fmt: sig3 },
  { id: 'par', label: `${cfg.readers} parallel readers over ${parLabel}, MiB/s`, ratio: true, fmt: sig3 },
  { id: 'lsCold', label: `ls -l of ${entries} entries, cold, s`, ratio: true, fmt: (v) => v.toFixed(3) },
  { id: 'lsWarm', label: `ls -l of ${entries} entries, warm, s`, ratio: true, fmt: (v) => v.toFixed(3) },
  { id: 'rss', label: `daemon peak RSS (VmHWM) after the ${cfg.readers} readers, MiB`, ratio: false, fmt: (v) => v.toFixed(0) },
  { id: 'cpuSeq', label: 'daemon CPU seconds per GiB read, cold sequential', ratio: false, fmt: (v) => v.toFixed(2) },
  { id: 'cpuPar', label: `daemon CPU seconds per GiB read, ${cfg.readers} readers`, ratio: false, fmt: (v) => v.toFixed(2) },
];

interface Sample {
  v?: number;
  /** Second value (p99 for the latency rows). */
  v2?: number;
  failed?: string;
  /** The read was stopped at the cap; the rate is from the bytes read until then. */
  capped?: boolean;
}

const results = new Map<FigId, Map<ToolId, Sample[]>>();
function put(fig: FigId, tool: ToolId, s: Sample): void {
  let byTool = results.get(fig);
  if (!byTool) results.set(fig, (byTool = new Map<ToolId, Sample[]>()));
  const list = byTool.get(tool) ?? [];
  list.push(s);
  byTool.set(tool, list);
}
const samples = (fig: FigId, tool: ToolId): Sample[] => results.get(fig)?.get(tool) ?? [];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 === 1 ? (s[(n - 1) / 2] ?? NaN) : ((s[n / 2 - 1] ?? NaN) + (s[n / 2] ?? NaN)) / 2;
}

function values(fig: FigId, tool: ToolId): { v: number[]; v2: number[] } {
  const ok = samples(fig, tool).filter((s) => s.v !== undefined);
  return { v: ok.map((s) => s.v ?? NaN), v2: ok.filter((s) => s.v2 !== undefined).map((s) => s.v2 ?? NaN) };
}
/** Median of a cell, or undefined when it has no successful sample. */
function med(fig: FigId, tool: ToolId): number | undefined {
  const { v } = values(fig, tool);
  return v.length === 0 ? undefined : median(v);
}
function ratio(fig: FigId, tool: ToolId): number | undefined {
  const a = med(fig, tool);
  const raw = med(fig, 'raw');
  return a === undefined || raw === undefined || raw === 0 ? undefined : a / raw;
}

/** Records samples for a set of figures; on failure, the ones not recorded yet get the reason. */
class Recorder {
  private readonly left: Set<FigId>;
  constructor(
    private readonly tool: ToolId,
    figs: FigId[],
  ) {
    this.left = new Set(figs);
  }
  put(fig: FigId, s: Sample): void {
    this.left.delete(fig);
    put(fig, this.tool, s);
  }
  fail(err: unknown): void {
    const why = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 400);
    for (const f of this.left) put(f, this.tool, { failed: why });
    this.left.clear();
  }
}

const progress = (msg: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

// ---------------------------------------------------------------- clients (child processes)

interface Rate {
  bytes: number;
  seconds: number;
  capped: boolean;
}
const mibps = (r: Rate): number => r.bytes / MiB / r.seconds;

/** dd's own statistics: "N bytes (...) copied, S s, ..." (all of them, one per dd). */
function ddStats(stderr: string): { bytes: number; seconds: number }[] {
  return [...stderr.matchAll(/^(\d+) bytes .*copied, ([\d.e+-]+) s/gm)].map((m) => ({ bytes: Number(m[1]), seconds: Number(m[2]) }));
}

/** Sequential read of one file with dd bs=1M, stopped at the cap. */
async function ddRead(path: string): Promise<Rate> {
  const r = await exec('dd', [`if=${path}`, 'of=/dev/null', 'bs=1M'], { timeoutMs: cfg.capMs + 60_000, capMs: cfg.capMs });
  const st = ddStats(r.stderr)[0];
  if ((r.code !== 0 && !r.capped) || st === undefined || st.seconds <= 0) throw new Error(`dd ${path}: ${describe(r)}`);
  if (!r.capped && st.bytes !== cfg.bigBytes) throw new Error(`dd ${path} read ${st.bytes} bytes, expected ${cfg.bigBytes}`);
  return { bytes: st.bytes, seconds: st.seconds, capped: r.capped };
}

function describe(r: ExecResult): string {
  return `${r.timedOut ? 'timed out' : r.capped ? 'capped' : `exit ${r.code ?? r.signal}`}: ${lastLines(r.stderr, 3)}`;
}

/** Runs `script` in bash timed with $EPOCHREALTIME around the measured part (no process-spawn cost). */
async function bashTimed(script: string, args: string[], timeoutMs: number): Promise<number> {
  const full = `t0=$EPOCHREALTIME; ${script} || exit 3; t1=$EPOCHREALTIME; echo "$t0 $t1"`;
  const r = await exec('bash', ['-c', full, 'bench', ...args], { timeoutMs });
  const m = /^([\d.]+) ([\d.]+)$/m.exec(r.stdout);
  if (r.code !== 0 || !m) throw new Error(`bash -c '${script}': ${describe(r)}`);
  return Number(m[2]) - Number(m[1]);
}

async function curlRate(url: string): Promise<Rate> {
  const r = await exec('curl', ['-sS', '--fail', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', url], { timeoutMs: 300_000 });
  const [size, secs] = r.stdout.trim().split(' ').map(Number);
  if (r.code !== 0 || size === undefined || secs === undefined) throw new Error(`curl ${url}: ${describe(r)}`);
  return { bytes: size, seconds: secs, capped: false };
}

/** A child `stat` of paths on a mount (so that lookups are done before a timed step). */
async function statOnMount(...paths: string[]): Promise<void> {
  await mustExec('stat', ['-c', '%s', ...paths], 120_000);
}

// nginx access log: "$request $status $body_bytes_sent".
function logOffset(): number {
  return statSync(accessLogPath).size;
}
function logSince(offset: number): { requests: number; bytes: number } {
  const text = readFileSync(accessLogPath).subarray(offset).toString('utf8');
  let requests = 0;
  let bytes = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    requests++;
    bytes += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
  }
  return { requests, bytes };
}

interface FioResult {
  iops: number;
  p50us: number;
  p99us: number;
  bytesRead: number;
}
interface FioJson {
  jobs?: { error?: number; read?: { iops?: number; io_bytes?: number; clat_ns?: { percentile?: Record<string, number> } } }[];
}

async function fioRandom(path: string, jobs: number): Promise<FioResult> {
  const args = [
    '--name=rand4k',
    `--filename=${path}`,
    '--readonly',
    '--rw=randread',
    '--bs=4k',
    '--ioengine=psync',
    `--numjobs=${jobs}`,
    '--group_reporting',
    '--time_based',
    `--runtime=${cfg.fioSeconds}`,
    '--percentile_list=50:99',
    '--output-format=json',
  ];
  const r = await exec('fio', args, { timeoutMs: cfg.fioSeconds * 1000 + 120_000 });
  const start = r.stdout.indexOf('{');
  if (r.code !== 0 || start < 0) {
    const errors = `${r.stderr}\n${r.stdout}`.split('\n').filter((l) => /error|fio:|err=/i.test(l) && !/"(error|.*_err)"\s*:\s*0/.test(l));
    throw new Error(`fio ${r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`}: ${errors.slice(0, 3).join(' | ').slice(0, 400) || lastLines(r.stderr, 3)}`);
  }
  const j = JSON.parse(r.stdout.slice(start)) as FioJson;
  const job = j.jobs?.[0];
  const read = job?.read;
  const pct = read?.clat_ns?.percentile;
  if (!read || !pct || read.iops === undefined || read.io_bytes === undefined || (job?.error ?? 0) !== 0) throw new Error(`fio: unexpected output ${r.stdout.slice(0, 200)}`);
  return { iops: read.iops, p50us: (pct['50.000000'] ?? NaN) / 1000, p99us: (pct['99.000000'] ?? NaN) / 1000, bytesRead: read.io_bytes };
}

/** The raw equivalent of fio: `procs` curl processes, each issuing ranged 4 KiB GETs on one keep-alive connection. */
async function curlRandom(url: string, procs: number, workDir: string): Promise<{ iops: number; p50us: number; p99us: number; bytesRead: number }> {
  const blocks = Math.floor(cfg.bigBytes / (4 * KiB));
  const configs: string[] = [];
  for (let p = 0; p < procs; p++) {
    let seed = 0x9e3779b1 + p * 7919;
    const lines: string[] = [];
    for (let i = 0; i < cfg.rawRandomRequests; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const off = (seed % blocks) * 4 * KiB;
      if (i > 0) lines.push('next');
      lines.push(`url = "${url}"`, `range = "${off}-${off + 4 * KiB - 1}"`, 'output = "/dev/null"', 'write-out = "%{http_code} %{size_download} %{time_total}\\n"');
    }
    const path = join(workDir, `curl-random-${procs}-${p}.cfg`);
    writeFileSync(path, `${lines.join('\n')}\n`);
    configs.push(path);
  }
  const t0 = performance.now();
  const rs = await Promise.all(configs.map((c) => exec('curl', ['-sS', '-K', c], { timeoutMs: 600_000 })));
  const seconds = (performance.now() - t0) / 1000;
  const lat: number[] = [];
  let bytesRead = 0;
  for (const r of rs) {
    if (r.code !== 0) throw new Error(`curl random reads: ${describe(r)}`);
    for (const line of r.stdout.trim().split('\n')) {
      const [code, size, secs] = line.split(' ');
      if (code !== '206') throw new Error(`curl random read got HTTP ${code}`);
      bytesRead += Number(size);
      lat.push(Number(secs) * 1e6);
    }
  }
  lat.sort((a, b) => a - b);
  const pct = (p: number): number => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] ?? NaN;
  return { iops: lat.length / seconds, p50us: pct(50), p99us: pct(99), bytesRead };
}

// ---------------------------------------------------------------- sessions

let nginx: NginxHandle | undefined;
let baseUrl = '';
let accessLogPath = '';
let workRoot = '';
let www = '';

/** Stops every client, daemon and the nginx this bench started, then removes its temp dirs (none holds a mount). */
async function cleanup(): Promise<void> {
  await stopEverything();
  await nginx?.stop();
  nginx = undefined;
  for (const dir of [www, workRoot]) if (dir !== '') rmSync(dir, { recursive: true, force: true });
}

/** A fresh mount of `tool` (with `cacheDir`, or an empty one), torn down even on failure. */
async function withMount<T>(tool: MountTool, cacheDir: string | undefined, fn: (d: Daemon) => Promise<T>): Promise<T> {
  const work = mkdtempSync(join(workRoot, `${tool.id}-`));
  const cache = cacheDir ?? join(work, 'cache');
  mkdirSync(cache, { recursive: true });
  let d: Daemon | undefined;
  try {
    d = await startDaemon(tool, baseUrl, cache, work);
    try {
      return await fn(d);
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

const ratePut = (rec: Recorder, fig: FigId, r: Rate): void => rec.put(fig, { v: mibps(r), ...(r.capped ? { capped: true } : {}) });
const bigPath = (mnt: string): string => join(mnt, 'big.bin');
const parName = (i: number): string => `par/p${String(i).padStart(2, '0')}.bin`;

async function phaseSequential(tool: MountTool | 'raw'): Promise<string> {
  if (tool === 'raw') {
    const rec = new Recorder('raw', ['seqCold', 'seqWarm', 'seqRemount']);
    try {
      const url = `${baseUrl}big.bin`;
      ratePut(rec, 'seqCold', await curlRate(url));
      ratePut(rec, 'seqWarm', await curlRate(url));
      ratePut(rec, 'seqRemount', await curlRate(url));
    } catch (err) {
      rec.fail(err);
    }
    return `cold ${fmtLast('seqCold', 'raw')} MiB/s`;
  }
  const rec = new Recorder(tool.id, ['seqCold', 'seqWarm', 'cpuSeq', ...(tool.diskCache ? (['seqRemount'] as const) : [])]);
  const cache = mkdtempSync(join(workRoot, `${tool.id}-keep-`));
  try {
    await withMount(tool, cache, async (d) => {
      await statOnMount(bigPath(d.mnt));
      const c0 = cpuTicks(d.pid);
      const cold = await ddRead(bigPath(d.mnt));
      const c1 = cpuTicks(d.pid);
      ratePut(rec, 'seqCold', cold);
      rec.put('cpuSeq', { v: (c1 - c0) / clkTck / (cold.bytes / GiB) });
      ratePut(rec, 'seqWarm', await ddRead(bigPath(d.mnt)));
    });
    if (tool.diskCache) {
      await withMount(tool, cache, async (d) => {
        await statOnMount(bigPath(d.mnt));
        ratePut(rec, 'seqRemount', await ddRead(bigPath(d.mnt)));
      });
    }
  } catch (err) {
    rec.fail(err);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
  return `cold ${fmtLast('seqCold', tool.id)}, warm ${fmtLast('seqWarm', tool.id)}, remount ${fmtLast('seqRemount', tool.id)} MiB/s`;
}

async function phaseTtfb(tool: MountTool | 'raw'): Promise<string> {
  const id = tool === 'raw' ? 'raw' : tool.id;
  const rec = new Recorder(id, ['ttfb']);
  try {
    if (tool === 'raw') {
      for (let i = 0; i < cfg.ttfbFiles; i++) {
        const r = await exec('curl', ['-sS', '--fail', '-o', '/dev/null', '-r', '0-0', '-w', '%{time_starttransfer}', `${baseUrl}${parName(i)}`], { timeoutMs: 60_000 });
        if (r.code !== 0) throw new Error(`curl: ${describe(r)}`);
        rec.put('ttfb', { v: Number(r.stdout.trim()) * 1000 });
      }
    } else {
      await withMount(tool, undefined, async (d) => {
        // Names and sizes first (a listing), so that only opening and reading data is timed.
        await statOnMount(...Array.from({ length: cfg.ttfbFiles }, (_, i) => join(d.mnt, parName(i))));
        for (let i = 0; i < cfg.ttfbFiles; i++) {
          const s = await bashTimed('IFS= read -r -N 1 x < "$1"', [join(d.mnt, parName(i))], 60_000);
          rec.put('ttfb', { v: s * 1000 });
        }
      });
    }
  } catch (err) {
    rec.fail(err);
  }
  const mine = samples('ttfb', id).slice(-cfg.ttfbFiles);
  return `ttfb ${mine.map((x) => (x.v === undefined ? 'failed' : x.v.toFixed(2))).join(' / ')} ms`;
}

async function phaseLs(tool: MountTool | 'raw'): Promise<string> {
  const id = tool === 'raw' ? 'raw' : tool.id;
  const rec = new Recorder(id, ['lsCold', 'lsWarm']);
  try {
    if (tool === 'raw') {
      const url = `${baseUrl}many/`;
      for (const fig of ['lsCold', 'lsWarm'] as const) rec.put(fig, { v: await bashTimed('curl -sS --fail -o /dev/null "$1"', [url], 120_000) });
    } else {
      await withMount(tool, undefined, async (d) => {
        const out = join(workRoot, `ls-${tool.id}.txt`);
        for (const fig of ['lsCold', 'lsWarm'] as const) {
          const s = await bashTimed('ls -l "$1" > "$2"', [join(d.mnt, 'many'), out], 600_000);
          const lines = readFileSync(out, 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('total ')).length;
          if (lines !== cfg.manyEntries) throw new Error(`ls -l listed ${lines} entries, expected ${cfg.manyEntries}`);
          rec.put(fig, { v: s });
        }
      });
    }
  } catch (err) {
    rec.fail(err);
  }
  return `ls cold ${fmtLast('lsCold', id)} s, warm ${fmtLast('lsWarm', id)} s`;
}

async function phaseRandom(tool: MountTool | 'raw', jobs: 1 | 4): Promise<string> {
  const id = tool === 'raw' ? 'raw' : tool.id;
  const [iopsFig, latFig, ampFig] = jobs === 1 ? (['rand1Iops', 'rand1Lat', 'rand1Amp'] as const) : (['rand4Iops', 'rand4Lat', 'rand4Amp'] as const);
  const rec = new Recorder(id, [iopsFig, latFig, ampFig]);
  try {
    let mark = 0;
    let res: FioResult;
    if (tool === 'raw') {
      mark = logOffset();
      res = await curlRandom(`${baseUrl}big.bin`, jobs, workRoot);
    } else {
      res = await withMount(tool, undefined, async (d) => {
        await statOnMount(bigPath(d.mnt));
        mark = logOffset();
        return fioRandom(bigPath(d.mnt), jobs);
      });
    }
    // The daemon is gone now, so every request it made (including aborted ones) is logged.
    await sleep(300);
    const fetched = logSince(mark);
    rec.put(iopsFig, { v: res.iops });
    rec.put(latFig, { v: res.p50us, v2: res.p99us });
    rec.put(ampFig, { v: fetched.bytes / res.bytesRead });
  } catch (err) {
    rec.fail(err);
  }
  return `${jobs} job(s): ${fmtLast(iopsFig, id)} IOPS, ${fmtLast(ampFig, id)} bytes fetched per byte read`;
}

async function phaseParallel(tool: MountTool | 'raw'): Promise<string> {
  const id = tool === 'raw' ? 'raw' : tool.id;
  const rec = new Recorder(id, tool === 'raw' ? ['par'] : ['par', 'rss', 'cpuPar']);
  const perReader = cfg.parFiles / cfg.readers;
  const filesOf = (k: number): string[] => Array.from({ length: perReader }, (_, j) => parName(k * perReader + j));
  try {
    if (tool === 'raw') {
      const t0 = performance.now();
      const rs = await Promise.all(
        Array.from({ length: cfg.readers }, (_, k) =>
          exec('curl', ['-sS', '--fail', ...filesOf(k).flatMap((f) => ['-o', '/dev/null', `${baseUrl}${f}`])], { timeoutMs: 600_000 }),
        ),
      );
      const seconds = (performance.now() - t0) / 1000;
      for (const r of rs) if (r.code !== 0) throw new Error(`curl: ${describe(r)}`);
      rec.put('par', { v: (cfg.parFiles * cfg.parBytes) / MiB / seconds });
    } else {
      await withMount(tool, undefined, async (d) => {
        const c0 = cpuTicks(d.pid);
        const t0 = performance.now();
        const script = 'for f in "$@"; do dd if="$f" of=/dev/null bs=1M || exit 3; done';
        const rs = await Promise.all(
          Array.from({ length: cfg.readers }, (_, k) =>
            exec('bash', ['-c', script, 'reader', ...filesOf(k).map((f) => join(d.mnt, f))], { timeoutMs: cfg.capMs + 60_000, capMs: cfg.capMs }),
          ),
        );
        const seconds = (performance.now() - t0) / 1000;
        let bytes = 0;
        let capped = false;
        for (const r of rs) {
          if (r.code !== 0 && !r.capped) throw new Error(`reader: ${describe(r)}`);
          capped ||= r.capped;
          for (const st of ddStats(r.stderr)) bytes += st.bytes;
        }
        if (!d.alive()) throw new Error('the daemon exited during the readers');
        const c1 = cpuTicks(d.pid);
        const hwm = peakRssBytes(d.pid);
        if (!capped && bytes !== cfg.parFiles * cfg.parBytes) throw new Error(`the readers read ${bytes} bytes, expected ${cfg.parFiles * cfg.parBytes}`);
        rec.put('par', { v: bytes / MiB / seconds, ...(capped ? { capped: true } : {}) });
        rec.put('rss', { v: hwm / MiB });
        rec.put('cpuPar', { v: (c1 - c0) / clkTck / (bytes / GiB) });
      });
    }
  } catch (err) {
    rec.fail(err);
  }
  return `${fmtLast('par', id)} MiB/s${tool === 'raw' ? '' : `, RSS ${fmtLast('rss', id)} MiB, CPU ${fmtLast('cpuPar', id)} s/GiB`}`;
}

function fmtLast(fig: FigId, tool: ToolId): string {
  const s = samples(fig, tool).at(-1);
  const f = FIGURES.find((x) => x.id === fig);
  if (!s || !f) return '—';
  if (s.v === undefined) return `failed (${s.failed ?? '?'})`;
  return `${f.fmt(s.v)}${s.capped === true ? ' (capped)' : ''}`;
}

// ---------------------------------------------------------------- dataset

async function writeDataset(root: string): Promise<void> {
  await writeRampFile(join(root, 'big.bin'), cfg.bigBytes);
  mkdirSync(join(root, 'many'));
  const small = rampBuffer(0, cfg.manyBytes);
  for (let i = 0; i < cfg.manyEntries; i++) writeFileSync(join(root, 'many', `f${String(i).padStart(5, '0')}.txt`), small);
  mkdirSync(join(root, 'par'));
  const chunk = rampBuffer(0, cfg.parBytes);
  for (let i = 0; i < cfg.parFiles; i++) writeFileSync(join(root, parName(i)), chunk);
}

// ---------------------------------------------------------------- report

function toolVersions(): string[] {
  const first = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n')[0] ?? '?';
    } catch {
      return 'not available';
    }
  };
  const both = (script: string): string => {
    try {
      return execFileSync('sh', ['-c', `${script} 2>&1`], { encoding: 'utf8' }).trim().split('\n').join('; ');
    } catch {
      return 'not available';
    }
  };
  const dpkg = (pkg: string): string => {
    try {
      return execFileSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8' }).trim();
    } catch {
      return '?';
    }
  };
  let commit = '?';
  try {
    commit = execFileSync('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', repoRoot, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).trim();
    if (dirty !== '') commit += ' + uncommitted changes under src/';
  } catch {
    // not a git checkout
  }
  return [
    `fusestream ${commit} (Node ${process.version})`,
    `${first('rclone', ['version'])} (Debian ${dpkg('rclone')})`,
    `${both('httpdirfs --version')} (Debian ${dpkg('httpdirfs')})`,
    `${first('fio', ['--version'])}, ${first('curl', ['--version'])}`,
    `${both('/usr/sbin/nginx -v')}, ${first('fusermount3', ['--version'])}, ${first('dd', ['--version'])}`,
  ];
}

function machine(): string {
  const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
  let debian = '';
  try {
    debian = `, Debian ${readFileSync('/etc/debian_version', 'utf8').trim()}`;
  } catch {
    // not Debian
  }
  return `${cpus().length} cores (${cpuModel}), ${(totalmem() / GiB).toFixed(1)} GiB RAM, Linux ${release()}${debian}, Node ${process.version}`;
}

function cell(fig: Figure, tool: ToolId): string {
  const ss = samples(fig.id, tool);
  if (ss.length === 0) return '—';
  const { v, v2 } = values(fig.id, tool);
  const failed = ss.filter((s) => s.v === undefined).length;
  if (v.length === 0) return 'failed';
  let text = v2.length > 0 ? `${fig.fmt(median(v))} / ${fig.fmt(median(v2))}` : fig.fmt(median(v));
  const r = fig.ratio && tool !== 'raw' ? ratio(fig.id, tool) : undefined;
  if (r !== undefined) text += ` (${formatRatio(r)}x)`;
  if (ss.some((s) => s.capped === true)) text += ' †';
  if (failed > 0) text += ` [${failed}/${ss.length} runs failed]`;
  return text;
}

function runsCell(fig: Figure, tool: ToolId): string {
  const ss = samples(fig.id, tool);
  if (ss.length === 0) return '—';
  return ss.map((s) => (s.v === undefined ? 'failed' : s.v2 !== undefined ? `${fig.fmt(s.v)}/${fig.fmt(s.v2)}` : `${fig.fmt(s.v)}${s.capped === true ? '†' : ''}`)).join(' · ');
}

interface Target {
  text: string;
  measured: () => { ok: boolean; figure: string } | undefined;
}

function targets(): Target[] {
  const T: ToolId = 'fusestream';
  const byRatio = (fig: FigId, min: number): Target['measured'] => () => {
    const r = ratio(fig, T);
    const v = med(fig, T);
    const raw = med(fig, 'raw');
    const f = FIGURES.find((x) => x.id === fig);
    if (r === undefined || v === undefined || raw === undefined || !f) return undefined;
    return { ok: r >= min, figure: `${formatRatio(r)}x (${f.fmt(v)} vs raw ${f.fmt(raw)})` };
  };
  const atMost = (fig: FigId, max: number, unit: string): Target['measured'] => () => {
    const v = med(fig, T);
    const f = FIGURES.find((x) => x.id === fig);
    if (v === undefined || !f) return undefined;
    return { ok: v <= max, figure: `${f.fmt(v)} ${unit}` };
  };
  const random = (iops: FigId, amp: FigId): Target['measured'] => () => {
    const r = ratio(iops, T);
    const a = med(amp, T);
    const v = med(iops, T);
    const raw = med(iops, 'raw');
    if (r === undefined || a === undefined || v === undefined || raw === undefined) return undefined;
    return { ok: r >= 0.7 && a <= 2, figure: `${formatRatio(r)}x IOPS (${v.toFixed(0)} vs raw ${raw.toFixed(0)}), ${sig3(a)} bytes fetched per byte read` };
  };
  return [
    { text: 'cold sequential >= 0.6x raw', measured: byRatio('seqCold', 0.6) },
    { text: `${cfg.readers} parallel readers >= 0.6x raw`, measured: byRatio('par', 0.6) },
    { text: 'random 4 KiB IOPS, 1 job, >= 0.7x raw with <= 2 bytes fetched per byte read', measured: random('rand1Iops', 'rand1Amp') },
    { text: 'random 4 KiB IOPS, 4 jobs, >= 0.7x raw with <= 2 bytes fetched per byte read', measured: random('rand4Iops', 'rand4Amp') },
    { text: 'time to first byte <= 3 ms', measured: atMost('ttfb', 3, 'ms') },
    { text: `ls -l of ${entries} entries, cold, <= 0.2 s`, measured: atMost('lsCold', 0.2, 's') },
    { text: `ls -l of ${entries} entries, warm, <= 0.05 s`, measured: atMost('lsWarm', 0.05, 's') },
    { text: `daemon peak RSS with ${cfg.readers} readers <= 150 MiB`, measured: atMost('rss', 150, 'MiB') },
    { text: 'daemon CPU <= 2 s per GiB read (cold sequential)', measured: atMost('cpuSeq', 2, 's/GiB') },
    { text: `daemon CPU <= 2 s per GiB read (${cfg.readers} readers)`, measured: atMost('cpuPar', 2, 's/GiB') },
  ];
}

const SERIES_COLORS: Record<MountToolId, string> = {
  fusestream: '#d62728',
  'rclone-off': '#1f77b4',
  'rclone-full': '#6baed6',
  httpdirfs: '#2ca02c',
  'httpdirfs-cache': '#98df8a',
};

function chart(when: string): string {
  // Higher is better everywhere: throughputs as tool/raw, times as raw/tool.
  const groups: { fig: FigId; label: string; invert: boolean }[] = [
    { fig: 'seqCold', label: 'cold sequential read', invert: false },
    { fig: 'seqWarm', label: 'warm re-read', invert: false },
    { fig: 'seqRemount', label: 're-read after remount', invert: false },
    { fig: 'par', label: `${cfg.readers} parallel readers`, invert: false },
    { fig: 'rand1Iops', label: 'random 4 KiB IOPS, 1 job', invert: false },
    { fig: 'rand4Iops', label: 'random 4 KiB IOPS, 4 jobs', invert: false },
    { fig: 'ttfb', label: 'time to first byte (raw ÷ tool)', invert: true },
    { fig: 'lsCold', label: 'ls -l cold (raw ÷ tool)', invert: true },
    { fig: 'lsWarm', label: 'ls -l warm (raw ÷ tool)', invert: true },
  ];
  const data: ChartGroup[] = groups.map((g) => ({
    label: g.label,
    values: tools.map((t) => {
      const ss = samples(g.fig, t.id);
      if (ss.length === 0) return 'n/a';
      const r = ratio(g.fig, t.id);
      if (r === undefined) return 'failed';
      return g.invert ? 1 / r : r;
    }),
  }));
  return barChartSvg({
    title: 'fusestream, rclone mount and httpdirfs over HTTP, relative to raw curl',
    subtitle: `${when}. 1x = raw curl in the same run; higher is better; log scale; medians of ${cfg.runs} run(s).`,
    series: tools.map((t) => ({ name: t.label, color: SERIES_COLORS[t.id] })),
    groups: data,
    min: 0.0001,
    max: 100,
    footnote: `${machine()}`,
  });
}

// ---------------------------------------------------------------- main

let clkTck = 100;

async function main(): Promise<void> {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const started = new Date();
  const versions = toolVersions();
  const t0 = performance.now();
  const loadBefore = loadavg();
  progress(`mode ${QUICK ? 'QUICK' : 'full'}, ${cfg.runs} run(s), tools: raw, ${tools.map((t) => t.id).join(', ')}; cap ${cfg.capMs / 1000} s per read phase`);
  www = mkdtempSync(join(tmpdir(), 'fusestream-bench-www-'));
  workRoot = mkdtempSync(join(tmpdir(), 'fusestream-bench-work-'));
  try {
    progress(`writing the dataset (${bigLabel} file, ${entries} x 1 KiB, ${parLabel}) to ${www}`);
    await writeDataset(www);
    nginx = await startNginx({ root: www, autoindex: 'html', accessLogFormat: '$request $status $body_bytes_sent' });
    baseUrl = nginx.url;
    accessLogPath = nginx.accessLogPath;
    progress(`nginx on ${baseUrl}`);

    const phases: { name: string; run: (t: MountTool | 'raw') => Promise<string> }[] = [
      { name: 'sequential', run: phaseSequential },
      { name: 'time to first byte', run: phaseTtfb },
      { name: 'ls -l', run: phaseLs },
      { name: 'random 4 KiB, 1 job', run: (t) => phaseRandom(t, 1) },
      { name: 'random 4 KiB, 4 jobs', run: (t) => phaseRandom(t, 4) },
      { name: `${cfg.readers} readers`, run: phaseParallel },
    ];
    // Phase by phase, run by run, raw first: each tool is measured next to raw in time.
    for (const phase of phases) {
      for (let run = 1; run <= cfg.runs; run++) {
        for (const t of ['raw' as const, ...tools]) {
          const name = t === 'raw' ? 'raw' : t.id;
          const p0 = performance.now();
          const summary = await phase.run(t);
          progress(`${phase.name} [run ${run}/${cfg.runs}] ${name}: ${summary} (${((performance.now() - p0) / 1000).toFixed(1)} s)`);
        }
      }
    }
  } finally {
    await cleanup();
  }
  const loadAfter = loadavg();
  const minutes = (performance.now() - t0) / 60_000;

  const header = `| figure | ${columns.map((c) => c.label).join(' | ')} |\n|---|${columns.map(() => '---').join('|')}|`;
  const table = [header, ...FIGURES.map((f) => `| ${f.label} | ${columns.map((c) => cell(f, c.id)).join(' | ')} |`)].join('\n');
  const runsTable = [header, ...FIGURES.map((f) => `| ${f.label} | ${columns.map((c) => runsCell(f, c.id)).join(' | ')} |`)].join('\n');
  const targetLines = targets().map((t) => {
    const m = t.measured();
    return m === undefined ? `- ${t.text}: **not measured** (fusestream failed or was not run)` : `- ${t.text}: **${m.ok ? 'met' : 'missed'}**, ${m.figure}`;
  });
  const failures: string[] = [];
  for (const f of FIGURES)
    for (const c of columns)
      samples(f.id, c.id).forEach((s, i) => {
        if (s.failed !== undefined) failures.push(`- ${c.label}, ${f.label}, sample ${i + 1}: ${s.failed}`);
      });
  const la = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ');
  const title = `npm run bench — ${started.toISOString().slice(0, 10)}${QUICK ? ' (QUICK mode: small dataset, not comparable)' : ''}`;
  const md = `# Mount benchmark: fusestream, rclone mount, httpdirfs and raw curl

${title}. Command: \`${QUICK ? 'FUSESTREAM_BENCH_QUICK=1 ' : ''}npm run bench\`; took ${minutes.toFixed(1)} min.

**Machine:** ${machine()}. Load average ${la(loadBefore)} before and ${la(loadAfter)} after the run (other work may share these cores).

**Versions:**
${versions.map((v) => `- ${v}`).join('\n')}

**Setup:** one nginx (Debian, \`worker_processes 1\`, sendfile, HTML autoindex) on 127.0.0.1 serving one dataset: a ${bigLabel} file, a directory of ${entries} files of 1 KiB, ${parLabel} files. Every tool mounts that URL read-only: \`fusestream mount URL MNT --cache-dir DIR\`, \`rclone mount :http: MNT --http-url URL --read-only --vfs-cache-mode off|full --cache-dir DIR\`, \`httpdirfs -f --no-range-check [--cache --cache-location DIR] URL MNT\`. Each figure is the median of ${cfg.runs} run(s); in parentheses, its ratio to raw curl in the same run (tool ÷ raw: above 1 is faster for rates, slower for times). Phases run one at a time, and within a run raw is measured just before the tools.

${table}

† stopped at the ${cfg.capMs / 1000} s cap; the rate is from the bytes read until then.

## Targets (fusestream, ratios to raw in the same run)

${targetLines.join('\n')}

![ratios to raw](mount.svg)

## How each figure is taken

- **Cold** means a fresh mount with an empty cache dir; the mount's page cache goes with the previous mount. Nothing else is dropped (nginx serves from the machine's page cache, for curl as for the mounts).
- **Sequential:** \`dd if=MNT/big.bin of=/dev/null bs=1M\` (dd's own timing); then again on the same mount (warm); then, for tools with a disk cache, again after unmount and a new mount on the same cache dir. Raw: \`curl -o /dev/null\` of the file (curl's own timing), three times.
- **Time to first byte:** on a fresh mount whose names and sizes are already looked up (\`stat\` of the files), the open and first read(2) of each of ${cfg.ttfbFiles} unread files, timed inside bash with \`$EPOCHREALTIME\` around its builtin \`read -N 1\` (no fork in the timed part). Raw: curl's \`time_starttransfer\` for \`-r 0-0\`. Median over all files and runs.
- **Random 4 KiB:** \`fio --rw=randread --bs=4k --ioengine=psync --numjobs=1|4 --time_based --runtime=${cfg.fioSeconds}\` on a fresh mount (fio's default fadvise hint turns kernel read-ahead off); p50 / p99 are fio's completion latencies. Raw: 1 or 4 curl processes each issuing ${cfg.rawRandomRequests.toLocaleString('en')} ranged 4 KiB GETs on one keep-alive connection; latencies from curl's \`time_total\`. **Bytes fetched per byte read** = \`$body_bytes_sent\` summed over nginx's access log from just before fio starts until the daemon has exited (so aborted and read-ahead transfers count), divided by the bytes fio read.
- **${cfg.readers} parallel readers:** ${cfg.readers} bash loops, each running \`dd bs=1M\` over its own ${cfg.parFiles / cfg.readers} of the ${cfg.parFiles} files, on a fresh mount; total bytes over wall time. Raw: ${cfg.readers} curl processes, ${cfg.parFiles / cfg.readers} URLs each.
- **ls -l:** \`ls -l MNT/many\` (output to a local file, entry count checked) on a fresh mount, then again (warm); timed inside bash. Raw: curl of the directory's HTML index, same timing.
- **Daemon RSS:** VmHWM from /proc/PID/status of the daemon, read right after the ${cfg.readers} readers finish (that mount served only them). **CPU seconds per GiB:** utime + stime from /proc/PID/stat (\`getconf CLK_TCK\` = ${clkTck}) over the measured phase, divided by the GiB read in it.

## Every run

${runsTable}
${failures.length > 0 ? `\n## Failures\n\n${failures.join('\n')}\n` : ''}`;
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'mount.md'), md);
  writeFileSync(join(outDir, 'mount.svg'), chart(title));
  process.stdout.write(`\n${table}\n\n${targetLines.join('\n')}\n\nwrote ${join(outDir, 'mount.md')} and ${join(outDir, 'mount.svg')} (${minutes.toFixed(1)} min)\n`);
}

await runBench('mount', main, cleanup, progress);
