// Where a multistatus `<href>` points, decided without trusting it: an href is a path (or an
// absolute URL) the server chose, and a hostile or buggy server can name anything with it.
//
// Invariants:
// - An href is split on '/' as sent, then each segment is percent-decoded on its own: a
//   segment that decodes to '.', '..', a name with '/' (%2F) or NUL, or bad UTF-8 is refused,
//   never normalized away (a URL parser would turn '/a/../b' into '/b' and hide it).
// - An absolute href must have the collection's origin; anything else is refused.
// - A child is an href whose decoded segments are the collection's plus exactly one name that
//   passes validateName; the collection itself (with or without its trailing slash) is "self";
//   every other href (outside the collection, deeper inside it) is refused with a reason.
import { decodePathSegment, isRefused, validateName } from '../names.js';

export type HrefPlace = { kind: 'self' } | { kind: 'child'; name: string } | { kind: 'refused'; reason: string };

/** The decoded segments of a percent-encoded URL path ('/a%20b/c/' → ['a b', 'c']). */
export function decodedSegments(urlPath: string): string[] | { refused: string } {
  const out: string[] = [];
  const raw = urlPath.split('/');
  for (let i = 0; i < raw.length; i++) {
    const seg = raw[i] as string;
    if (seg === '') {
      // Leading and trailing slashes; an empty segment in the middle ("a//b") is not a name.
      if (i === 0 || i === raw.length - 1) continue;
      return { refused: 'empty segment ("//")' };
    }
    const name = decodePathSegment(seg);
    if (name === undefined) return { refused: `segment "${seg}" is not percent-encoded UTF-8` };
    const v = validateName(name);
    if (isRefused(v)) return { refused: v.refused };
    out.push(name);
  }
  return out;
}

/**
 * Where `href` points relative to the collection whose decoded path segments are `collection`
 * (on `origin`, e.g. "http://127.0.0.1:8080").
 */
export function placeHref(href: string, origin: string, collection: readonly string[]): HrefPlace {
  let path = href;
  const abs = /^([a-z][a-z0-9+.-]*:\/\/[^/?#]*)(.*)$/i.exec(href);
  if (abs !== null) {
    let hrefOrigin: string;
    try {
      hrefOrigin = new URL(`${abs[1] as string}/`).origin;
    } catch {
      return { kind: 'refused', reason: 'not a URL' };
    }
    if (hrefOrigin !== origin) return { kind: 'refused', reason: `another origin (${hrefOrigin})` };
    path = abs[2] as string;
  }
  if (!path.startsWith('/')) return { kind: 'refused', reason: 'not an absolute path' };
  if (/[?#]/.test(path)) return { kind: 'refused', reason: 'has a query or fragment' };
  const segs = decodedSegments(path);
  if (!Array.isArray(segs)) return { kind: 'refused', reason: segs.refused };
  for (let i = 0; i < collection.length; i++) {
    if (segs[i] !== collection[i]) return { kind: 'refused', reason: 'outside the collection' };
  }
  if (segs.length === collection.length) return { kind: 'self' };
  if (segs.length > collection.length + 1) return { kind: 'refused', reason: 'deeper than one level inside the collection' };
  return { kind: 'child', name: segs[collection.length] as string };
}
