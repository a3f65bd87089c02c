// Shared pieces of the listing parsers: what a link in an index page means. A link is an
// entry only if it names a direct child of the listed directory; everything else (parent and
// self links, sort links with a query, fragments, other hosts, deeper paths) is skipped, and a
// child whose decoded name fails `validateName` is refused, reported, and never followed.
import type { RemoteEntry } from '../../remote.js';
import { decodePathSegment, isRefused, validateName } from '../../names.js';

export interface RefusedListingName {
  /** The href (or JSON name) as the server sent it. */
  raw: string;
  reason: string;
}

export interface ParsedListing {
  entries: RemoteEntry[];
  refused: RefusedListingName[];
  /** True when every entry's size and mtime are exact (nginx JSON). */
  exact: boolean;
  format: ListingFormat;
}

export type ListingFormat = 'nginx-json' | 'nginx-html' | 'apache-html' | 'python-html' | 'generic-html';

export type LinkResult =
  | { kind: 'entry'; name: string; isDir: boolean }
  | { kind: 'refused'; raw: string; reason: string }
  | { kind: 'skip' };

const NAMED_ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

/** Decodes the HTML character references that index pages use. */
export function decodeHtmlEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (whole, ref: string) => {
    if (ref.startsWith('#x') || ref.startsWith('#X')) return safeCodePoint(parseInt(ref.slice(2), 16)) ?? whole;
    if (ref.startsWith('#')) return safeCodePoint(parseInt(ref.slice(1), 10)) ?? whole;
    return NAMED_ENTITIES[ref] ?? whole;
  });
}

function safeCodePoint(n: number): string | undefined {
  return Number.isInteger(n) && n >= 0 && n <= 0x10ffff ? String.fromCodePoint(n) : undefined;
}

const SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:/;

/**
 * Classifies one href (raw attribute text, entities not yet decoded) found in the index page
 * of `dirUrl` (which ends in '/').
 */
export function classifyHref(rawHref: string, dirUrl: URL): LinkResult {
  const href = decodeHtmlEntities(rawHref).trim();
  // A literal '?' or '#' starts a query or fragment; names holding them arrive as %3F / %23.
  if (href === '' || href.includes('?') || href.includes('#')) return { kind: 'skip' };
  let path = href;
  if (SCHEME.test(href) || href.startsWith('//')) {
    let u: URL;
    try {
      u = new URL(href, dirUrl);
    } catch {
      return { kind: 'skip' };
    }
    if (u.origin !== dirUrl.origin) return { kind: 'skip' };
    path = u.pathname;
  }
  let rawName: string;
  if (path.startsWith('/')) {
    const raw = path.split('/').slice(1);
    const dirSegs = dirUrl.pathname.split('/').filter((s) => s !== '');
    const trailing = raw.length > 0 && raw[raw.length - 1] === '';
    if (trailing) raw.pop();
    if (raw.length !== dirSegs.length + 1) return { kind: 'skip' };
    for (let i = 0; i < dirSegs.length; i++) {
      if (decodePathSegment(raw[i] ?? '') !== decodePathSegment(dirSegs[i] ?? '')) return { kind: 'skip' };
    }
    rawName = (raw[raw.length - 1] ?? '') + (trailing ? '/' : '');
  } else {
    rawName = href.startsWith('./') ? href.slice(2) : href;
  }
  const isDir = rawName.endsWith('/');
  const seg = isDir ? rawName.slice(0, -1) : rawName;
  // Deeper paths and the parent/self links are not entries of this directory.
  if (seg === '' || seg.includes('/') || seg === '.' || seg === '..') return { kind: 'skip' };
  const decoded = decodePathSegment(seg);
  if (decoded === undefined) return { kind: 'refused', raw: rawHref, reason: 'malformed percent-encoding' };
  const valid = validateName(decoded);
  if (isRefused(valid)) return { kind: 'refused', raw: rawHref, reason: valid.refused };
  return { kind: 'entry', name: valid, isDir };
}

const ANCHOR = /<a\s[^>]*?href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))[^>]*>/gi;

/** Every href of every anchor, in document order, with the index just past the opening tag. */
export function* anchors(html: string): Generator<{ href: string; end: number }> {
  for (const m of html.matchAll(ANCHOR)) {
    yield { href: m[1] ?? m[2] ?? m[3] ?? '', end: (m.index ?? 0) + m[0].length };
  }
}

/** Accumulates entries, dropping duplicates (icon and name links to the same child). */
export class ListingBuilder {
  readonly entries: RemoteEntry[] = [];
  readonly refused: RefusedListingName[] = [];
  readonly #seen = new Set<string>();

  add(link: LinkResult, extra: { size?: number; mtimeMs?: number; approxMtimeMs?: number } = {}): void {
    if (link.kind === 'skip') return;
    if (link.kind === 'refused') {
      this.refused.push({ raw: link.raw, reason: link.reason });
      return;
    }
    if (this.#seen.has(link.name)) return;
    this.#seen.add(link.name);
    const entry: RemoteEntry = { name: link.name, type: link.isDir ? 'dir' : 'file' };
    if (!link.isDir && extra.size !== undefined) entry.size = extra.size;
    if (extra.mtimeMs !== undefined) entry.mtimeMs = extra.mtimeMs;
    if (extra.approxMtimeMs !== undefined) entry.approxMtimeMs = extra.approxMtimeMs;
    this.entries.push(entry);
  }

  refuse(raw: string, reason: string): void {
    this.refused.push({ raw, reason });
  }

  result(format: ListingFormat, exact: boolean): ParsedListing {
    return { entries: this.entries, refused: this.refused, exact, format };
  }
}

/** Names-only parse: every anchor that is a direct child. */
export function parseAnchorsOnly(html: string, dirUrl: URL, format: ListingFormat): ParsedListing {
  const b = new ListingBuilder();
  for (const a of anchors(html)) b.add(classifyHref(a.href, dirUrl));
  return b.result(format, false);
}
