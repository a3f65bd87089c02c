// RangeSet: a set of half-open byte ranges [start, end) over safe non-negative integers. Used
// for the present and dirty bytes of cache files, and persisted by the store (toJSON/fromJSON,
// or one row per range).
//
// Invariants (the normal form, checked by the property tests after every operation):
// - #starts and #ends have the same length; range i is [#starts[i], #ends[i]) with start < end;
// - ranges are sorted and neither overlap nor touch: #ends[i] < #starts[i + 1] (touching ranges
//   are merged), so two sets are equal iff their arrays are;
// - #size is the sum of the range lengths.
//
// Cost: ranges are located by binary search, so add/remove are O(log n + k) comparisons for k
// ranges touched, plus one splice (a memmove of the tail). union/subtract are linear merges.
// Arguments are validated: a bound that is negative, NaN, not a safe integer, or a range with
// start > end throws RangeError; start === end is an empty range (a no-op for add/remove).

export interface Range {
  readonly start: number;
  readonly end: number;
}

function checkRange(start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start > end) {
    throw new RangeError(`bad range [${start}, ${end})`);
  }
}

function checkOffset(offset: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`bad offset ${offset}`);
}

export class RangeSet implements Iterable<Range> {
  #starts: number[] = [];
  #ends: number[] = [];
  #size = 0;

  constructor(ranges?: Iterable<Range>) {
    if (ranges) for (const r of ranges) this.add(r.start, r.end);
  }

  /**
   * Parses what toJSON produced: an array of [start, end] pairs with start < end. Pairs may
   * come in any order and overlap (they are normalised); anything else throws TypeError.
   */
  static fromJSON(v: unknown): RangeSet {
    if (!Array.isArray(v)) throw new TypeError('RangeSet JSON must be an array of [start, end] pairs');
    const s = new RangeSet();
    for (const pair of v as unknown[]) {
      if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError(`bad RangeSet JSON entry ${JSON.stringify(pair)}`);
      const [start, end] = pair as unknown[];
      if (typeof start !== 'number' || typeof end !== 'number' || !(start < end)) {
        throw new TypeError(`bad RangeSet JSON entry ${JSON.stringify(pair)}`);
      }
      try {
        s.add(start, end);
      } catch (cause) {
        throw new TypeError(`bad RangeSet JSON entry ${JSON.stringify(pair)}`, { cause });
      }
    }
    return s;
  }

  toJSON(): [number, number][] {
    return this.#starts.map((s, i) => [s, this.#ends[i] as number]);
  }

  /** Total bytes covered. */
  get size(): number {
    return this.#size;
  }

  /** Number of disjoint ranges. */
  get count(): number {
    return this.#starts.length;
  }

  isEmpty(): boolean {
    return this.#starts.length === 0;
  }

  /** Index of the first range whose end is >= x (ranges ending before x come earlier). */
  #firstEndingAtOrAfter(x: number): number {
    let lo = 0;
    let hi = this.#ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#ends[mid] as number) < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  add(start: number, end: number): void {
    checkRange(start, end);
    if (start === end) return;
    // Ranges touching or overlapping [start, end) merge with it: those with end >= start and
    // start <= end. Only the first can start before `start`, only the last end after `end`.
    const i = this.#firstEndingAtOrAfter(start);
    let j = i;
    let removed = 0;
    while (j < this.#starts.length && (this.#starts[j] as number) <= end) {
      removed += (this.#ends[j] as number) - (this.#starts[j] as number);
      j++;
    }
    const newStart = j > i ? Math.min(start, this.#starts[i] as number) : start;
    const newEnd = j > i ? Math.max(end, this.#ends[j - 1] as number) : end;
    this.#starts.splice(i, j - i, newStart);
    this.#ends.splice(i, j - i, newEnd);
    this.#size += newEnd - newStart - removed;
  }

  remove(start: number, end: number): void {
    checkRange(start, end);
    if (start === end) return;
    // Ranges overlapping [start, end) are those with end > start and start < end; the first
    // may keep a head [s, start), the last a tail [end, e).
    const i = this.#firstEndingAtOrAfter(start + 1);
    let j = i;
    let removed = 0;
    while (j < this.#starts.length && (this.#starts[j] as number) < end) {
      removed += Math.min(this.#ends[j] as number, end) - Math.max(this.#starts[j] as number, start);
      j++;
    }
    if (j === i) return;
    const keepS: number[] = [];
    const keepE: number[] = [];
    const firstStart = this.#starts[i] as number;
    const lastEnd = this.#ends[j - 1] as number;
    if (firstStart < start) {
      keepS.push(firstStart);
      keepE.push(start);
    }
    if (lastEnd > end) {
      keepS.push(end);
      keepE.push(lastEnd);
    }
    this.#starts.splice(i, j - i, ...keepS);
    this.#ends.splice(i, j - i, ...keepE);
    this.#size -= removed;
  }

  has(offset: number): boolean {
    checkOffset(offset);
    const i = this.#firstEndingAtOrAfter(offset + 1);
    return i < this.#starts.length && (this.#starts[i] as number) <= offset;
  }

  /** Every byte of [start, end) is present (true for an empty range). */
  covers(start: number, end: number): boolean {
    checkRange(start, end);
    if (start === end) return true;
    const i = this.#firstEndingAtOrAfter(end);
    return i < this.#starts.length && (this.#starts[i] as number) <= start;
  }

  /** The gaps within [start, end), in order. */
  missing(start: number, end: number): Range[] {
    checkRange(start, end);
    const out: Range[] = [];
    let pos = start;
    for (let i = this.#firstEndingAtOrAfter(start + 1); pos < end && i < this.#starts.length; i++) {
      const s = this.#starts[i] as number;
      if (s >= end) break;
      if (s > pos) out.push({ start: pos, end: s });
      pos = this.#ends[i] as number;
    }
    if (pos < end) out.push({ start: pos, end });
    return out;
  }

  /** The present parts within [start, end), in order. */
  intersect(start: number, end: number): Range[] {
    checkRange(start, end);
    const out: Range[] = [];
    if (start === end) return out;
    for (let i = this.#firstEndingAtOrAfter(start + 1); i < this.#starts.length && (this.#starts[i] as number) < end; i++) {
      out.push({ start: Math.max(start, this.#starts[i] as number), end: Math.min(end, this.#ends[i] as number) });
    }
    return out;
  }

  /** End of the present run that contains `offset` (`offset` itself if that byte is absent). */
  contiguousFrom(offset: number): number {
    checkOffset(offset);
    const i = this.#firstEndingAtOrAfter(offset + 1);
    if (i < this.#starts.length && (this.#starts[i] as number) <= offset) return this.#ends[i] as number;
    return offset;
  }

  /** A new set holding the bytes of either set (linear merge). */
  union(other: RangeSet): RangeSet {
    const r = new RangeSet();
    const [as, ae, bs, be] = [this.#starts, this.#ends, other.#starts, other.#ends];
    let i = 0;
    let j = 0;
    while (i < as.length || j < bs.length) {
      let s: number;
      let e: number;
      if (j >= bs.length || (i < as.length && (as[i] as number) <= (bs[j] as number))) {
        s = as[i] as number;
        e = ae[i++] as number;
      } else {
        s = bs[j] as number;
        e = be[j++] as number;
      }
      const last = r.#ends.length - 1;
      if (last >= 0 && s <= (r.#ends[last] as number)) {
        if (e > (r.#ends[last] as number)) {
          r.#size += e - (r.#ends[last] as number);
          r.#ends[last] = e;
        }
      } else {
        r.#starts.push(s);
        r.#ends.push(e);
        r.#size += e - s;
      }
    }
    return r;
  }

  /** A new set holding the bytes of this set that are not in `other` (linear sweep). */
  subtract(other: RangeSet): RangeSet {
    const r = new RangeSet();
    const [bs, be] = [other.#starts, other.#ends];
    let j = 0;
    for (let i = 0; i < this.#starts.length; i++) {
      let s = this.#starts[i] as number;
      const e = this.#ends[i] as number;
      while (j < bs.length && (be[j] as number) <= s) j++;
      // Ranges of `other` from j on end after s; cut each one that starts before e.
      let k = j;
      while (s < e && k < bs.length && (bs[k] as number) < e) {
        const cs = bs[k] as number;
        if (cs > s) {
          r.#starts.push(s);
          r.#ends.push(cs);
          r.#size += cs - s;
        }
        s = Math.max(s, be[k] as number);
        k++;
      }
      if (s < e) {
        r.#starts.push(s);
        r.#ends.push(e);
        r.#size += e - s;
      }
    }
    return r;
  }

  clone(): RangeSet {
    const r = new RangeSet();
    r.#starts = [...this.#starts];
    r.#ends = [...this.#ends];
    r.#size = this.#size;
    return r;
  }

  equals(other: RangeSet): boolean {
    if (other.#starts.length !== this.#starts.length || other.#size !== this.#size) return false;
    return this.#starts.every((s, i) => s === other.#starts[i] && this.#ends[i] === other.#ends[i]);
  }

  /** Yields fresh Range objects in order; do not mutate the set while iterating. */
  *[Symbol.iterator](): Iterator<Range> {
    for (let i = 0; i < this.#starts.length; i++) yield { start: this.#starts[i] as number, end: this.#ends[i] as number };
  }
}
