// The client of the write-path model checker (write-model.test.ts): a child process that runs a
// seeded sequence of random file operations on a mountpoint (it serves nothing, so blocking
// syscalls are harmless here) and checks every answer against an in-memory model of the tree:
// each file's bytes and size, each directory's entries, each open descriptor (which follows
// its file through renames and keeps it after an unlink), and the errno of every failure.
//
// Usage: node write-model-child.js <root> <seed> <ops> <expectDir> <initDir|-> [direct]
//   initDir: a plain directory (outside the mount) holding what the mount starts with (the
//   test put the same tree on the remote); the model starts from it, and the mount is first
//   checked to show it. "-": the mount starts empty.
//   direct: "1" (default) opens about one file in ten with O_DIRECT; FUSE does not require
//   aligned buffers or offsets for it (the kernel hands the bytes to the daemon as they are),
//   so no aligned buffers are needed. "0" never does.
//   trace: a file (outside the mount) to record every op with its arguments in, one JSON a
//   line ({"i", "op"}), before it runs. replay: such a file, or a part of one, to run instead
//   of the seeded sequence (write-model-shrink.ts shrinks a failing trace that way).
// Output (stdout, one line each): `OP <i> <what>` before op i, so a hang names its op;
// `MISMATCH <i> <what>: <why>` and exit 1 at the first wrong answer; `DONE <ops> ...` (with
// coverage numbers) at the end, after every descriptor was closed, the whole tree was read back through
// the mount and compared, and the model's tree was written to <expectDir> (outside the mount)
// for the test to compare the remote directory with.
//
// The op sequence is a function of the seed alone (the model decides what each op expects;
// a run stops at the first answer that differs), so `<seed> <ops>` replays a failure exactly.
import { closeSync, constants, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmdirSync, statSync, truncateSync, ftruncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { prng } from '../support/prng.js';
import { rampBuffer } from '../support/ramp.js';
import { firstDifference, readTree } from '../support/tree-compare.js';

const [root = '', seedArg = '1', opsArg = '1000', expectDir = '', initDir = '-', directArg = '1', traceFile = '-', replayFile = '-'] = process.argv.slice(2);
if (!root || !expectDir) throw new Error('usage: write-model-child <root> <seed> <ops> <expectDir> <initDir|-> [direct] [trace|-] [replay|-]');
const seed = Number(seedArg);
const opCount = Number(opsArg);
const useDirect = directArg !== '0';

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_DIRECT } = constants;

/** Directories that come and go (the root always exists); files live in all four. */
const DIRS = ['d0', 'd1', 'd0/s'];
const FILE_PATHS = ['', ...DIRS].flatMap((d) => ['f0', 'f1', 'f2'].map((n) => (d === '' ? n : `${d}/${n}`)));
/** Files grow by holes and appends; past this size the sequence prefers shrinking them. */
const LARGE_BYTES = 1024 * 1024;
const MAX_OPEN = 10;

// --- the model -------------------------------------------------------------------------------

class FileNode {
  bytes = Buffer.alloc(0);
  constructor(readonly id: number) {}
  get size(): number {
    return this.bytes.length;
  }
  write(offset: number, data: Buffer): void {
    const end = offset + data.length;
    if (end > this.bytes.length) this.resize(end);
    data.copy(this.bytes, offset);
  }
  resize(size: number): void {
    const next = Buffer.alloc(size);
    this.bytes.copy(next, 0, 0, Math.min(size, this.bytes.length));
    this.bytes = next;
  }
}

type Entry = { kind: 'dir' } | { kind: 'file'; node: FileNode };

interface OpenFile {
  /** The handle the op sequence names it by. */
  h: number;
  fd: number;
  node: FileNode;
  /** The path it was opened by (it may have been renamed or unlinked since). */
  openedAs: string;
  readable: boolean;
  writable: boolean;
  append: boolean;
  direct: boolean;
}

const tree = new Map<string, Entry>([['', { kind: 'dir' }]]);
const open: OpenFile[] = [];
let nextNode = 1;

const parentOf = (p: string): string => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
const nameOf = (p: string): string => p.slice(p.lastIndexOf('/') + 1);
const childrenOf = (dir: string): string[] => [...tree.keys()].filter((p) => p !== '' && parentOf(p) === dir);
const fileAt = (p: string): FileNode | undefined => {
  const e = tree.get(p);
  return e?.kind === 'file' ? e.node : undefined;
};

// --- running an op and checking its answer -----------------------------------------------------

/** A wrong answer; `check` throws it (and only it) when the mount and the model disagree. */
class Mismatch extends Error {}

/** Coverage, for the DONE line: failures the model predicted, and files alive per op. */
const expectedErrors = new Map<string, number>();
let fileOps = 0;
let stepsRun = 0;

/** The op being run, for the MISMATCH line. */
let current = 'start';

/** What the model says an op does: succeed (then `apply` updates the model) or fail with `errno`. */
type Expect = { ok: true } | { errno: string };
const OK: Expect = { ok: true };

function say(line: string): void {
  if (line.startsWith('OP ')) current = line.slice(3).split(' ', 1)[0] ?? current;
  writeSync(1, `${line}\n`);
}

/** Runs `syscall`, checks its outcome against `expect`; returns the syscall's value when both succeeded. */
function check<T>(what: string, expect: Expect, syscall: () => T): T | undefined {
  let value: T;
  try {
    value = syscall();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if ('errno' in expect && code === expect.errno) {
      expectedErrors.set(code, (expectedErrors.get(code) ?? 0) + 1);
      return undefined;
    }
    throw new Mismatch(`${what}: failed with ${String(code)} (${err instanceof Error ? err.message : String(err)}), the model says ${'errno' in expect ? expect.errno : 'success'}`);
  }
  if ('errno' in expect) throw new Mismatch(`${what}: succeeded, the model says ${expect.errno}`);
  return value;
}

function readFull(fd: number, length: number, position: number): Buffer {
  const out = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, out, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return out.subarray(0, got);
}

function writeFull(fd: number, data: Buffer, position: number): void {
  for (let done = 0; done < data.length; ) {
    const n = writeSync(fd, data, done, data.length - done, position + done);
    if (n <= 0) throw new Mismatch(`write returned ${n}`);
    done += n;
  }
}

function checkBytes(what: string, got: Buffer, want: Buffer): void {
  const d = firstDifference(got, want);
  if (d) throw new Mismatch(`${what}: ${d}`);
}

// --- the random sequence ---------------------------------------------------------------------

const rnd = prng(seed);
const int = (n: number): number => Math.floor(rnd() * n);
const chance = (p: number): boolean => rnd() < p;
function pick<T>(items: readonly T[]): T {
  const v = items[int(items.length)];
  if (v === undefined) throw new Error('pick from an empty list');
  return v;
}

/**
 * Mostly a file that exists (ops collide), sometimes any path (ENOENT). `creating`: half the
 * time a path that does not exist in a directory that does, so creation keeps up with unlinks.
 */
function pickFilePath(creating = false): string {
  const existing = FILE_PATHS.filter((p) => fileAt(p));
  if (creating && chance(0.5)) {
    const free = FILE_PATHS.filter((p) => !fileAt(p) && tree.has(parentOf(p)));
    if (free.length > 0) return pick(free);
  }
  return existing.length > 0 && chance(0.85) ? pick(existing) : pick(FILE_PATHS);
}

function pickOffset(size: number): number {
  const r = rnd();
  if (r < 0.45) return int(size + 1);
  if (r < 0.6) return size;
  if (r < 0.8) return size + 1 + int(128 * 1024); // a hole
  return Math.max(0, (int(Math.ceil((size + 1) / 4096) + 1) * 4096) - 8 + int(16)); // straddles a page
}

function pickLength(): number {
  const r = rnd();
  if (r < 0.5) return 1 + int(4096);
  if (r < 0.85) return 1 + int(64 * 1024);
  return 1 + int(300 * 1024);
}

function describeFd(f: OpenFile): string {
  const flags = [f.readable && f.writable ? 'rw' : f.writable ? 'w' : 'r', f.append ? 'append' : '', f.direct ? 'direct' : ''].filter(Boolean).join(',');
  return `fd ${f.fd} (node ${f.node.id}, opened as ${f.openedAs}, ${flags})`;
}

const OPEN_VARIANTS: { flags: number; name: string }[] = [
  { flags: O_RDONLY, name: 'O_RDONLY' },
  { flags: O_RDWR, name: 'O_RDWR' },
  { flags: O_WRONLY, name: 'O_WRONLY' },
  { flags: O_RDWR | O_CREAT, name: 'O_RDWR|O_CREAT' },
  { flags: O_WRONLY | O_CREAT | O_TRUNC, name: 'O_WRONLY|O_CREAT|O_TRUNC' },
  { flags: O_RDWR | O_CREAT | O_TRUNC, name: 'O_RDWR|O_CREAT|O_TRUNC' },
  { flags: O_RDWR | O_APPEND | O_CREAT, name: 'O_RDWR|O_APPEND|O_CREAT' },
  { flags: O_WRONLY | O_APPEND, name: 'O_WRONLY|O_APPEND' },
  { flags: O_RDWR | O_CREAT | O_EXCL, name: 'O_RDWR|O_CREAT|O_EXCL' },
];

function flagNames(flags: number): string {
  const names: string[] = [['O_RDONLY', 'O_WRONLY', 'O_RDWR'][flags & 3] ?? '?'];
  for (const [bit, name] of [[O_CREAT, 'O_CREAT'], [O_EXCL, 'O_EXCL'], [O_TRUNC, 'O_TRUNC'], [O_APPEND, 'O_APPEND'], [O_DIRECT, 'O_DIRECT']] as const) if (flags & bit) names.push(name);
  return names.join('|');
}

/**
 * One operation with all its arguments: what the random sequence chose, and what a trace
 * records and a replay runs. Descriptors are named by handle (`h`: the number of the open
 * that made them), so a replay with some ops left out still means the same descriptors.
 */
export type Op =
  | { k: 'open'; h: number; path: string; flags: number }
  | { k: 'close' | 'fstat' | 'fsync'; h: number }
  | { k: 'pwrite'; h: number; offset: number; length: number; seed: number }
  | { k: 'pread'; h: number; offset: number; length: number }
  | { k: 'ftruncate'; h: number; size: number }
  | { k: 'truncate'; path: string; size: number }
  | { k: 'rename'; from: string; to: string }
  | { k: 'stat' | 'unlink' | 'mkdir' | 'rmdir' | 'readdir' | 'readFile'; path: string };

let nextHandle = 1;

/** Picks the next op and its arguments from the model's state. */
function generate(i: number): Op {
  const writable = open.filter((f) => f.writable);
  const readable = open.filter((f) => f.readable);
  const weights: [Op['k'], number][] = [
    ['open', open.length < MAX_OPEN ? 12 : 0],
    ['close', open.length > 0 ? (open.length >= MAX_OPEN ? 30 : 8) : 0],
    ['pwrite', writable.length > 0 ? 22 : 0],
    ['pread', readable.length > 0 ? 14 : 0],
    ['fstat', open.length > 0 ? 4 : 0],
    ['ftruncate', writable.length > 0 ? 5 : 0],
    ['fsync', open.length > 0 ? 4 : 0],
    ['stat', 4],
    ['truncate', 3],
    ['rename', 6],
    ['unlink', 2],
    ['mkdir', 3],
    ['rmdir', 1],
    ['readdir', 4],
    ['readFile', 3],
  ];
  let r = rnd() * weights.reduce((sum, [, w]) => sum + w, 0);
  let k: Op['k'] = 'stat';
  for (const [name, w] of weights) {
    if (r < w) {
      k = name;
      break;
    }
    r -= w;
  }
  switch (k) {
    case 'open': {
      const v = pick(OPEN_VARIANTS);
      const path = pickFilePath((v.flags & O_CREAT) !== 0);
      return { k, h: nextHandle++, path, flags: v.flags | (useDirect && chance(0.1) ? O_DIRECT : 0) };
    }
    case 'close':
    case 'fstat':
    case 'fsync':
      return { k, h: pick(open).h };
    case 'pwrite': {
      const f = pick(writable);
      const size = f.node.size;
      return { k, h: f.h, offset: size > LARGE_BYTES ? int(size) : pickOffset(size), length: pickLength(), seed: i + 1 };
    }
    case 'pread': {
      const f = pick(readable);
      const size = f.node.size;
      return { k, h: f.h, offset: chance(0.1) ? size + int(4096) : int(size + 1), length: pickLength() };
    }
    case 'ftruncate': {
      const f = pick(writable);
      const size = f.node.size;
      return { k, h: f.h, size: chance(0.2) ? 0 : chance(0.5) || size > LARGE_BYTES ? int(size + 1) : size + 1 + int(100 * 1024) };
    }
    case 'truncate': {
      const path = pickFilePath();
      const size = fileAt(path)?.size ?? 0;
      return { k, path, size: chance(0.5) || size > LARGE_BYTES ? int(size + 1) : size + 1 + int(100 * 1024) };
    }
    case 'rename':
      return { k, from: pickFilePath(), to: pick(FILE_PATHS) };
    case 'stat':
      return { k, path: chance(0.3) ? pick(DIRS) : pickFilePath() };
    case 'unlink':
    case 'readFile':
      return { k, path: pickFilePath() };
    case 'mkdir':
    case 'rmdir':
      return { k, path: pick(DIRS) };
    case 'readdir':
      return { k, path: chance(0.3) ? '' : pick(DIRS) };
  }
}

/**
 * Says what op `i` is, runs it and checks its answer against the model, then updates the
 * model. An op on a handle that is not open (a replay left its open out) is skipped.
 */
function execute(i: number, op: Op): void {
  if ('h' in op && op.k !== 'open') {
    const f = open.find((o) => o.h === op.h);
    if (!f || ((op.k === 'pwrite' || op.k === 'ftruncate') && !f.writable) || (op.k === 'pread' && !f.readable)) return;
    executeOnFd(i, op, f);
    return;
  }
  switch (op.k) {
    case 'open': {
      const { path, flags } = op;
      const what = `open ${path} ${flagNames(flags)}`;
      say(`OP ${i} ${what}`);
      const acc = flags & 3;
      const existing = fileAt(path);
      let expect: Expect = OK;
      if (!tree.has(parentOf(path))) expect = { errno: 'ENOENT' };
      else if (!existing && !(flags & O_CREAT)) expect = { errno: 'ENOENT' };
      else if (existing && flags & O_CREAT && flags & O_EXCL) expect = { errno: 'EEXIST' };
      const fd = check(what, expect, () => openSync(join(root, path), flags, 0o644));
      if (fd === undefined) return;
      let node = existing;
      if (!node) {
        node = new FileNode(nextNode++);
        tree.set(path, { kind: 'file', node });
      }
      const canWrite = acc !== O_RDONLY;
      if (flags & O_TRUNC && canWrite) node.resize(0);
      open.push({ h: op.h, fd, node, openedAs: path, readable: acc !== O_WRONLY, writable: canWrite, append: (flags & O_APPEND) !== 0, direct: (flags & O_DIRECT) !== 0 });
      return;
    }
    case 'stat': {
      const what = `stat ${op.path}`;
      say(`OP ${i} ${what}`);
      const e = tree.get(op.path);
      const st = check(what, e ? OK : { errno: 'ENOENT' }, () => statSync(join(root, op.path)));
      if (!st || !e) return;
      if (e.kind === 'dir' ? !st.isDirectory() : !st.isFile() || st.size !== e.node.size) {
        throw new Mismatch(`${what}: ${st.isDirectory() ? 'a directory' : `a file of size ${st.size}`}, the model says ${e.kind === 'dir' ? 'a directory' : `a file of size ${e.node.size}`}`);
      }
      return;
    }
    case 'truncate': {
      const node = fileAt(op.path);
      const what = `truncate ${op.path} to ${op.size} (size ${node ? node.size : 'none'})`;
      say(`OP ${i} ${what}`);
      check(what, node ? OK : { errno: 'ENOENT' }, () => truncateSync(join(root, op.path), op.size));
      node?.resize(op.size);
      return;
    }
    case 'rename': {
      const { from, to } = op;
      const what = `rename ${from} ${to}${fileAt(to) ? ' (over an existing file)' : ''}`;
      say(`OP ${i} ${what}`);
      const node = fileAt(from);
      const expect: Expect = node && tree.has(parentOf(to)) ? OK : { errno: 'ENOENT' };
      check(what, expect, () => renameSync(join(root, from), join(root, to)));
      if ('ok' in expect && node && from !== to) {
        tree.set(to, { kind: 'file', node });
        tree.delete(from);
      }
      return;
    }
    case 'unlink': {
      const node = fileAt(op.path);
      const what = `unlink ${op.path}${node && open.some((f) => f.node === node) ? ' (open)' : ''}`;
      say(`OP ${i} ${what}`);
      check(what, node ? OK : { errno: 'ENOENT' }, () => unlinkSync(join(root, op.path)));
      if (node) tree.delete(op.path);
      return;
    }
    case 'mkdir': {
      const what = `mkdir ${op.path}`;
      say(`OP ${i} ${what}`);
      const expect: Expect = tree.has(op.path) ? { errno: 'EEXIST' } : tree.has(parentOf(op.path)) ? OK : { errno: 'ENOENT' };
      check(what, expect, () => mkdirSync(join(root, op.path), 0o755));
      if ('ok' in expect) tree.set(op.path, { kind: 'dir' });
      return;
    }
    case 'rmdir': {
      const what = `rmdir ${op.path}`;
      say(`OP ${i} ${what}`);
      const expect: Expect = !tree.has(op.path) ? { errno: 'ENOENT' } : childrenOf(op.path).length > 0 ? { errno: 'ENOTEMPTY' } : OK;
      check(what, expect, () => rmdirSync(join(root, op.path)));
      if ('ok' in expect) tree.delete(op.path);
      return;
    }
    case 'readdir': {
      const what = `readdir ${op.path || '/'}`;
      say(`OP ${i} ${what}`);
      const names = check(what, tree.has(op.path) ? OK : { errno: 'ENOENT' }, () => readdirSync(join(root, op.path)).sort());
      if (!names) return;
      const want = childrenOf(op.path).map(nameOf).sort();
      if (names.join('/') !== want.join('/')) throw new Mismatch(`${what}: [${names.join(' ')}], the model says [${want.join(' ')}]`);
      return;
    }
    case 'readFile': {
      const what = `readFile ${op.path}`;
      say(`OP ${i} ${what}`);
      const node = fileAt(op.path);
      const got = check(what, node ? OK : { errno: 'ENOENT' }, () => readFileSync(join(root, op.path)));
      if (got && node) checkBytes(what, got, node.bytes);
      return;
    }
  }
}

type FdOp = Exclude<Extract<Op, { h: number }>, { k: 'open' }>;

function executeOnFd(i: number, op: FdOp, f: OpenFile): void {
  const size = f.node.size;
  switch (op.k) {
    case 'close': {
      say(`OP ${i} close ${describeFd(f)}`);
      open.splice(open.indexOf(f), 1);
      check(`close ${describeFd(f)}`, OK, () => closeSync(f.fd));
      return;
    }
    case 'pwrite': {
      const data = rampBuffer(op.offset, op.length, op.seed);
      const at = f.append ? size : op.offset;
      const what = `pwrite ${describeFd(f)} offset ${op.offset}${f.append ? ` (append: at ${at})` : ''} length ${op.length} (size ${size})`;
      say(`OP ${i} ${what}`);
      check(what, OK, () => writeFull(f.fd, data, op.offset));
      f.node.write(at, data);
      return;
    }
    case 'pread': {
      const what = `pread ${describeFd(f)} offset ${op.offset} length ${op.length} (size ${size})`;
      say(`OP ${i} ${what}`);
      const got = check(what, OK, () => readFull(f.fd, op.length, op.offset));
      if (got) checkBytes(what, got, f.node.bytes.subarray(Math.min(op.offset, size), Math.min(size, op.offset + op.length)));
      return;
    }
    case 'fstat': {
      const what = `fstat ${describeFd(f)}`;
      say(`OP ${i} ${what}`);
      const st = check(what, OK, () => fstatSync(f.fd));
      if (st && (!st.isFile() || st.size !== size)) throw new Mismatch(`${what}: ${st.isFile() ? 'a file' : 'not a file'} of size ${st.size}, the model says a file of ${size}`);
      return;
    }
    case 'ftruncate': {
      const what = `ftruncate ${describeFd(f)} to ${op.size} (size ${size})`;
      say(`OP ${i} ${what}`);
      check(what, OK, () => ftruncateSync(f.fd, op.size));
      f.node.resize(op.size);
      return;
    }
    case 'fsync': {
      const what = `fsync ${describeFd(f)}`;
      say(`OP ${i} ${what}`);
      check(what, OK, () => fsyncSync(f.fd));
      return;
    }
  }
}

/** The model starts as `initDir` holds it (only names the sequence uses: d*, f*). */
function loadInitial(): void {
  if (initDir === '-') return;
  for (const [rel, bytes] of readTree(initDir)) {
    if (bytes === null) tree.set(rel, { kind: 'dir' });
    else {
      const node = new FileNode(nextNode++);
      node.write(0, bytes);
      tree.set(rel, { kind: 'file', node });
    }
  }
}

/** Reads the whole tree through the mount and compares it with the model. */
function compareTree(what: string): void {
  for (const [path, e] of [...tree].sort(([a], [b]) => a.localeCompare(b))) {
    if (e.kind === 'dir') {
      const names = check(`${what} readdir ${path || '/'}`, OK, () => readdirSync(join(root, path)).sort()) ?? [];
      const want = childrenOf(path).map(nameOf).sort();
      if (names.join('/') !== want.join('/')) throw new Mismatch(`${what} readdir ${path || '/'}: [${names.join(' ')}], the model says [${want.join(' ')}]`);
    } else checkBytes(`${what} read of ${path}`, check(`${what} read of ${path}`, OK, () => readFileSync(join(root, path))) ?? Buffer.alloc(0), e.node.bytes);
  }
}

/** Closes everything, then reads the whole tree back through the mount. */
function finish(): void {
  for (const f of open.splice(0)) {
    say(`OP final close ${describeFd(f)}`);
    check(`final close ${describeFd(f)}`, OK, () => closeSync(f.fd));
  }
  say('OP final compare');
  compareTree('final');
}

function writeExpected(): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const [path, e] of [...tree].sort(([a], [b]) => a.length - b.length)) {
    if (path === '') continue;
    if (e.kind === 'dir') mkdirSync(join(expectDir, path));
    else {
      writeFileSync(join(expectDir, path), e.node.bytes);
      files++;
      bytes += e.node.size;
    }
  }
  return { files, bytes };
}

try {
  loadInitial();
  say('OP initial compare');
  compareTree('initial');
  const replay = replayFile === '-' ? undefined : (readFileSync(replayFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { i: number; op: Op }));
  const traceFd = traceFile === '-' ? undefined : openSync(traceFile, 'w');
  const steps = replay ?? Array.from({ length: opCount }, (_, i) => ({ i, op: undefined }));
  for (const s of steps) {
    const op = s.op ?? generate(s.i);
    if (traceFd !== undefined) writeSync(traceFd, `${JSON.stringify({ i: s.i, op })}\n`);
    execute(s.i, op);
    fileOps += FILE_PATHS.filter((p) => fileAt(p)).length;
    stepsRun++;
  }
  finish();
  const { files, bytes } = writeExpected();
  const errors = [...expectedErrors].map(([k, n]) => `${k}:${n}`).join(',');
  say(`DONE ${stepsRun} ops; at the end ${files} files, ${bytes} bytes; ${(fileOps / Math.max(1, stepsRun)).toFixed(1)} files on average; expected failures ${errors || 'none'}`);
} catch (err) {
  if (!(err instanceof Mismatch)) throw err;
  say(`MISMATCH ${current} ${err.message}`);
  process.exitCode = 1;
}
