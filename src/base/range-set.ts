// RangeSet: a set of half-open byte ranges [start, end) over safe integers, kept in normal
// form: sorted, disjoint and non-adjacent (touching ranges are merged). Used for the present
// and dirty bytes of cache files.
// Operations locate ranges by binary search: add/remove are O(log n + k) for k ranges touched.

export interface Range {
  readonly start: number;
  readonly end: number;
}

function check(start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start > end) {
    throw new RangeError(`bad range [${start}, ${end})`);
  }
}

export class RangeSet implements Iterable<Range> {
  #starts: number[] = [];
  #ends: number[] = [];
  #size = 0;

  constructor(ranges?: Iterable<Range>) {
    if (ranges) for (const r of ranges) this.add(r.start, r.end);
  }

  static fromJSON(v: unknown): RangeSet {
    if (!Array.isArray(v)) throw new TypeError('RangeSet JSON must be an array of [start, end] pairs');
    const s = new RangeSet();
    for (const pair of v) {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'number' || typeof pair[1] !== 'number') {
        throw new TypeError(`bad RangeSet JSON entry ${JSON.stringify(pair)}`);
      }
      try {
        s.add(pair[0], pair[1]);
      } catch (cause) {
        throw new TypeError(`bad RangeSet JSON entry ${JSON.stringify(pair)}`, { cause });
      }
    }
    return s;
  }

  toJSON(): [number, number][] {
    return this.#starts.map((s, i) => [s, this.#ends[i] as number]);
  }

  get size(): number {
    return this.#size;
  }

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
    check(start, end);
    if (start === end) return;
    // Ranges touching or overlapping [start, end) are merged: those with end >= start and
    // start <= end.
    const i = this.#firstEndingAtOrAfter(start);
    let j = i;
    let newStart = start;
    let newEnd = end;
    let removed = 0;
    while (j < this.#starts.length && (this.#starts[j] as number) <= end) {
      newStart = Math.min(newStart, this.#starts[j] as number);
      newEnd = Math.max(newEnd, this.#ends[j] as number);
      removed += (this.#ends[j] as number) - (this.#starts[j] as number);
      j++;
    }
    this.#starts.splice(i, j - i, newStart);
    this.#ends.splice(i, j - i, newEnd);
    this.#size += newEnd - newStart - removed;
  }

  remove(start: number, end: number): void {
    check(start, end);
    if (start === end) return;
    // Ranges with end > start and start < end overlap.
    let i = this.#firstEndingAtOrAfter(start);
    if (i < this.#ends.length && this.#ends[i] === start) i++;
    let j = i;
    const keepS: number[] = [];
    const keepE: number[] = [];
    let removed = 0;
    while (j < this.#starts.length && (this.#starts[j] as number) < end) {
      const s = this.#starts[j] as number;
      const e = this.#ends[j] as number;
      if (s < start) {
        keepS.push(s);
        keepE.push(start);
      }
      if (e > end) {
        keepS.push(end);
        keepE.push(e);
      }
      removed += Math.min(e, end) - Math.max(s, start);
      j++;
    }
    this.#starts.splice(i, j - i, ...keepS);
    this.#ends.splice(i, j - i, ...keepE);
    this.#size -= removed;
  }

  has(offset: number): boolean {
    const i = this.#firstEndingAtOrAfter(offset + 1);
    return i < this.#starts.length && (this.#starts[i] as number) <= offset;
  }

  /** Every byte of [start, end) is present (true for an empty range). */
  covers(start: number, end: number): boolean {
    check(start, end);
    if (start === end) return true;
    const i = this.#firstEndingAtOrAfter(end);
    return i < this.#starts.length && (this.#starts[i] as number) <= start;
  }

  /** The gaps within [start, end), in order. */
  missing(start: number, end: number): Range[] {
    check(start, end);
    const out: Range[] = [];
    let pos = start;
    let i = this.#firstEndingAtOrAfter(start + 1);
    while (pos < end && i < this.#starts.length) {
      const s = this.#starts[i] as number;
      if (s >= end) break;
      if (s > pos) out.push({ start: pos, end: s });
      pos = Math.max(pos, this.#ends[i] as number);
      i++;
    }
    if (pos < end) out.push({ start: pos, end });
    return out;
  }

  /** The present parts within [start, end), in order. */
  intersect(start: number, end: number): Range[] {
    check(start, end);
    const out: Range[] = [];
    let i = this.#firstEndingAtOrAfter(start + 1);
    while (i < this.#starts.length && (this.#starts[i] as number) < end) {
      const s = Math.max(start, this.#starts[i] as number);
      const e = Math.min(end, this.#ends[i] as number);
      if (s < e) out.push({ start: s, end: e });
      i++;
    }
    return out;
  }

  /** End of the present run that contains `offset` (offset itself if absent). */
  contiguousFrom(offset: number): number {
    const i = this.#firstEndingAtOrAfter(offset + 1);
    if (i < this.#starts.length && (this.#starts[i] as number) <= offset) return this.#ends[i] as number;
    return offset;
  }

  union(other: RangeSet): RangeSet {
    const r = this.clone();
    for (const x of other) r.add(x.start, x.end);
    return r;
  }

  subtract(other: RangeSet): RangeSet {
    const r = this.clone();
    for (const x of other) r.remove(x.start, x.end);
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

  *[Symbol.iterator](): Iterator<Range> {
    for (let i = 0; i < this.#starts.length; i++) yield { start: this.#starts[i] as number, end: this.#ends[i] as number };
  }
}
