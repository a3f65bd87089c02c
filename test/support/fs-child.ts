// The child process of mount-driver.ts: it performs path-level file operations on a mountpoint
// for a test process that serves the mount (and so must never touch it itself).
// Usage: node fs-child.js <root>. Protocol, one JSON object per line:
//   stdin:  {"id": 1, "op": "stat", "args": ["a/b"]}
//   stdout: {"id": 1, "ok": true, "value": ...} or {"id": 1, "ok": false, "code": "ENOENT", "message": "..."}
// Buffers travel as {"base64": "..."}. Requests are executed one at a time, in order, with
// synchronous syscalls (this process serves nothing, so blocking is harmless). It exits when
// stdin ends. renameat2 flags (RENAME_NOREPLACE...) go through python3's ctypes: node has no
// renameat2.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const root = process.argv[2];
if (!root) throw new Error('usage: fs-child <root>');
process.umask(0o022);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const at = (p: unknown): string => join(root, String(p));
const num = (v: unknown): number => Number(v);
const buf = (v: unknown): Buffer => Buffer.from((v as { base64: string }).base64, 'base64');
const encode = (b: Buffer): Json => ({ base64: b.toString('base64') });

function statOf(s: fs.Stats): Json {
  const kind = s.isFile() ? 'file' : s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : 'other';
  return { kind, perm: s.mode & 0o7777, size: s.size, nlink: s.nlink, uid: s.uid, gid: s.gid, atimeMs: s.atimeMs, mtimeMs: s.mtimeMs };
}

const RENAMEAT2 = `
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
r = libc.renameat2(-100, os.fsencode(sys.argv[1]), -100, os.fsencode(sys.argv[2]), int(sys.argv[3]))
if r != 0:
    sys.stdout.write(errno.errorcode[ctypes.get_errno()])
    sys.exit(1)
`;

function renameat2(from: string, to: string, flags: number): void {
  const r = spawnSync('python3', ['-c', RENAMEAT2, from, to, String(flags)], { encoding: 'utf8', timeout: 10_000 });
  if (r.status === 0) return;
  const code = r.stdout.trim();
  if (r.status === 1 && /^E[A-Z0-9]+$/.test(code)) throw Object.assign(new Error(`renameat2 ${from} ${to}`), { code });
  throw new Error(`python3 renameat2 failed (${r.status ?? r.signal}): ${r.stdout}${r.stderr}${r.error ? String(r.error) : ''}`);
}

function readFull(fd: number, length: number, position: number): Buffer {
  const out = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, out, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return out.subarray(0, got);
}

function writeFull(fd: number, data: Buffer, position: number): void {
  for (let done = 0; done < data.length; ) done += fs.writeSync(fd, data, done, data.length - done, position + done);
}

const ops: Record<string, (a: unknown[]) => unknown> = {
  stat: (a) => statOf(fs.statSync(at(a[0]))),
  lstat: (a) => statOf(fs.lstatSync(at(a[0]))),
  readdir: (a) => fs.readdirSync(at(a[0])).sort(),
  mkdir: (a) => fs.mkdirSync(at(a[0]), { mode: num(a[1]) }),
  rmdir: (a) => fs.rmdirSync(at(a[0])),
  unlink: (a) => fs.unlinkSync(at(a[0])),
  rename: (a) => (num(a[2]) === 0 ? fs.renameSync(at(a[0]), at(a[1])) : renameat2(at(a[0]), at(a[1]), num(a[2]))),
  symlink: (a) => fs.symlinkSync(String(a[0]), at(a[1])),
  readlink: (a) => fs.readlinkSync(at(a[0])),
  open: (a) => fs.openSync(at(a[0]), num(a[1]), num(a[2])),
  read: (a) => encode(readFull(num(a[0]), num(a[1]), num(a[2]))),
  write: (a) => writeFull(num(a[0]), buf(a[1]), num(a[2])),
  ftruncate: (a) => fs.ftruncateSync(num(a[0]), num(a[1])),
  truncate: (a) => fs.truncateSync(at(a[0]), num(a[1])),
  fsync: (a) => fs.fsyncSync(num(a[0])),
  close: (a) => fs.closeSync(num(a[0])),
  chmod: (a) => fs.chmodSync(at(a[0]), num(a[1])),
  utimes: (a) => fs.utimesSync(at(a[0]), num(a[1]) / 1000, num(a[2]) / 1000),
  readFile: (a) => encode(fs.readFileSync(at(a[0]))),
  writeFile: (a) => fs.writeFileSync(at(a[0]), buf(a[1]), { mode: 0o644 }),
};

function answer(line: string): unknown {
  let id: Json = null;
  try {
    const req = JSON.parse(line) as { id: number; op: string; args: unknown[] };
    id = req.id;
    const op = ops[req.op];
    if (!op) return { id, ok: false, message: `unknown op ${req.op}` };
    return { id, ok: true, value: op(req.args) ?? null };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return { id, ok: false, ...(typeof code === 'string' ? { code } : {}), message: err instanceof Error ? err.message : String(err) };
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  process.stdout.write(`${JSON.stringify(answer(line))}\n`);
});
