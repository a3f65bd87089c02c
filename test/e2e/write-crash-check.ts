// The judge of the write crash test: replays the workload's log (write-crash-child.ts) into
// what each path may hold after a crash and a drain, and names every path that holds
// something else.
// - An acknowledged close/fsync/rename/unlink is a promise: the path holds that version (a
//   renamed file at its new name, an unlinked or renamed-away path nothing).
// - Since its last promise a path may also hold an empty file if an open created or truncated
//   it (open(O_TRUNC) had returned: the file was empty), and whatever the one operation the
//   kill cut short (logged `try` then `fail`) would have made it.
// - Nothing else: not half-written bytes (writes after the last promise), not bytes of
//   another file, not a file the workload never made.
import { createHash } from 'node:crypto';

export const EMPTY_SHA = createHash('sha256').digest('hex');

export interface LogEvent {
  ev: 'init' | 'try' | 'ack' | 'fail';
  op?: string;
  path?: string;
  from?: string;
  to?: string;
  sha?: string;
  size?: number;
  trunc?: boolean;
  create?: boolean;
  code?: string;
}

/** A file's content by sha256, or null: absent. */
export type Content = string | null;

export interface Expectation {
  /**
   * The states the tree may be in, each as what every path may hold: one, or two when the
   * kill cut an operation short (done, or not done: a rename moves a file or does not; it
   * never loses it).
   */
  worlds: Map<string, Set<Content>>[];
  /** The log lines that touched each path, for the failure message. */
  history: Map<string, string[]>;
}

/** The promises so far: each path's last acknowledged content, and what it may hold besides. */
class Promises {
  readonly durable = new Map<string, string>();
  readonly extra = new Map<string, Set<Content>>();

  clone(): Promises {
    const c = new Promises();
    for (const [k, v] of this.durable) c.durable.set(k, v);
    for (const [k, v] of this.extra) c.extra.set(k, new Set(v));
    return c;
  }

  #set(p: string | undefined, c: Content): void {
    if (p === undefined) return;
    if (c === null) this.durable.delete(p);
    else this.durable.set(p, c);
    this.extra.delete(p);
  }

  #also(p: string | undefined, c: Content): void {
    if (p !== undefined) this.extra.set(p, new Set([...(this.extra.get(p) ?? []), c]));
  }

  /** What an operation that happened did to the promises. */
  apply(e: LogEvent): void {
    if (e.ev === 'init' || e.op === 'close' || e.op === 'fsync') this.#set(e.path, e.sha ?? null);
    else if (e.op === 'rename') {
      const moved = this.durable.get(e.from ?? '') ?? null;
      this.#set(e.from, null);
      this.#set(e.to, moved);
    } else if (e.op === 'unlink') this.#set(e.path, null);
    else if (e.op === 'open' && (e.trunc || e.create)) this.#also(e.path, EMPTY_SHA);
  }

  allowed(): Map<string, Set<Content>> {
    const out = new Map<string, Set<Content>>();
    for (const p of new Set([...this.durable.keys(), ...this.extra.keys()])) out.set(p, new Set([this.durable.get(p) ?? null, ...(this.extra.get(p) ?? [])]));
    return out;
  }
}

/** Replays the workload's log into what each path may hold after the crash and the drain. */
export function expectationFrom(lines: string[]): Expectation {
  const promises = new Promises();
  const history = new Map<string, string[]>();
  let cutShort: LogEvent | undefined;
  for (const line of lines) {
    const e = JSON.parse(line) as LogEvent;
    for (const p of [e.path, e.from, e.to]) if (p !== undefined) history.set(p, [...(history.get(p) ?? []), line]);
    if (e.ev === 'try') cutShort = e;
    else if (e.ev === 'fail') cutShort = { ...e, ev: 'ack' };
    else {
      cutShort = undefined;
      promises.apply(e);
    }
  }
  // A `fail`, or a `try` with no outcome (the workload died itself; the test fails on that).
  const worlds = [promises.allowed()];
  if (cutShort) {
    const done = promises.clone();
    done.apply({ ...cutShort, ev: 'ack' });
    worlds.push(done.allowed());
  }
  return { worlds, history };
}

export const show = (c: Content): string => (c === null ? 'absent' : c === EMPTY_SHA ? 'empty' : c.slice(0, 12));

/**
 * Every path whose content in `got` is not one that `want` allows, one sentence each; empty
 * when one of its worlds allows the whole tree (else the first world's complaints).
 */
export function violations(got: Map<string, Content>, want: Expectation, where: string): string[] {
  const each = want.worlds.map((allowedByPath) => {
    const out: string[] = [];
    for (const p of new Set([...got.keys(), ...allowedByPath.keys()])) {
      const g = got.get(p) ?? null;
      const allowed = allowedByPath.get(p) ?? new Set<Content>([null]);
      if (allowed.has(g)) continue;
      const h = (want.history.get(p) ?? []).slice(-6).join('\n      ');
      out.push(`${where} ${p}: ${show(g)}, want one of [${[...allowed].map(show).join(', ')}]; last log lines for it:\n      ${h || '(none: the workload never wrote it)'}`);
    }
    return out;
  });
  return each.some((v) => v.length === 0) ? [] : (each[0] ?? []);
}
