// Directory trees as data, for comparing what a remote directory holds with what a test
// expects: a Map from relative path to the file's bytes, or `null` for a directory. The
// remote's reserved temp names (`.fusestream-tmp-*`, an upload in progress or left by a
// crash) are not part of the tree: listings hide them, so users never see them.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isTempName } from '../../src/remote/local/local-remote.js';

export type Tree = Map<string, Buffer | null>;

/** Every directory (null) and file (its bytes) under `root`, by path relative to it. */
export function readTree(root: string): Tree {
  const out: Tree = new Map();
  const walk = (rel: string): void => {
    for (const d of readdirSync(join(root, rel), { withFileTypes: true })) {
      if (isTempName(d.name)) continue;
      const p = rel === '' ? d.name : `${rel}/${d.name}`;
      if (d.isDirectory()) {
        out.set(p, null);
        walk(p);
      } else out.set(p, readFileSync(join(root, p)));
    }
  };
  walk('');
  return out;
}

/** Where two byte strings first differ, as a phrase ("" when they are equal). */
export function firstDifference(got: Buffer, want: Buffer): string {
  if (got.equals(want)) return '';
  const n = Math.min(got.length, want.length);
  let i = 0;
  while (i < n && got[i] === want[i]) i++;
  if (i === n) return `size ${got.length}, want ${want.length} (equal up to ${n})`;
  return `size ${got.length} (want ${want.length}), first different byte at offset ${i}: 0x${(got[i] ?? 0).toString(16)}, want 0x${(want[i] ?? 0).toString(16)}`;
}

/** Every difference between `got` and `want`, one sentence each (empty when they are equal). */
export function treeDifferences(got: Tree, want: Tree): string[] {
  const out: string[] = [];
  for (const [p, w] of want) {
    const g = got.get(p);
    if (g === undefined) out.push(`${p}: missing (want ${w === null ? 'a directory' : `a file of ${w.length} bytes`})`);
    else if (w === null && g !== null) out.push(`${p}: a file, want a directory`);
    else if (w !== null && g === null) out.push(`${p}: a directory, want a file of ${w.length} bytes`);
    else if (w !== null && g !== null) {
      const d = firstDifference(g, w);
      if (d) out.push(`${p}: ${d}`);
    }
  }
  for (const [p, g] of got) if (!want.has(p)) out.push(`${p}: unexpected ${g === null ? 'directory' : `file of ${g.length} bytes`}`);
  return out.sort();
}
