// Names and remote-relative paths. Every name that comes from a remote (a listing, a readdir)
// passes `validateName` before anyone may use it; every path a caller hands to a Remote passes
// `splitPath`, so a '..' or an embedded '/' can never walk out of the remote's root.
//
// Invariants:
// - A valid name is non-empty, not '.' or '..', has no '/' and no NUL, and is at most 255 bytes
//   of UTF-8 (the Linux NAME_MAX the kernel will accept in a dirent).
// - Remote-relative paths are '/'-separated without a leading or trailing slash; '' is the root.
// - `encodePath(p)` percent-encodes each segment on its own, so `decodePathSegment` of every
//   encoded segment gives the name back exactly (spaces, unicode, '%', '#', '?' round-trip).
import { RemoteError } from './remote-error.js';

export const NAME_MAX_BYTES = 255;

// With the u flag a surrogate pair is one code point, so this matches lone halves only.
const LONE_SURROGATE = /\p{Cs}/u;

export interface RefusedName {
  refused: string;
}

/** Returns the name itself when it is usable, or why it is refused. */
export function validateName(name: string): string | RefusedName {
  if (name.length === 0) return { refused: 'empty name' };
  if (name === '.' || name === '..') return { refused: `reserved name "${name}"` };
  if (name.includes('/')) return { refused: 'name contains "/"' };
  if (name.includes('\0')) return { refused: 'name contains NUL' };
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > NAME_MAX_BYTES) return { refused: `name is ${bytes} bytes of UTF-8 (max ${NAME_MAX_BYTES})` };
  // Lone surrogates cannot be encoded as UTF-8: they would not survive a round trip.
  if (LONE_SURROGATE.test(name)) return { refused: 'name is not well-formed unicode' };
  return name;
}

export function isRefused(v: string | RefusedName): v is RefusedName {
  return typeof v !== 'string';
}

/**
 * Splits a remote-relative path into validated segments. Empty segments (leading, trailing or
 * doubled slashes) are dropped; '.', '..', NUL and over-long segments throw RemoteError 'invalid'.
 */
export function splitPath(path: string): string[] {
  const out: string[] = [];
  for (const seg of path.split('/')) {
    if (seg === '') continue;
    const v = validateName(seg);
    if (isRefused(v)) throw new RemoteError('invalid', `invalid path ${JSON.stringify(path)}: ${v.refused}`);
    out.push(v);
  }
  return out;
}

/** The canonical form of a remote-relative path: 'a//b/' → 'a/b', '/' → ''. Throws like splitPath. */
export function normalizePath(path: string): string {
  return splitPath(path).join('/');
}

/** Joins path pieces (each may hold several segments) into one normalized path. */
export function joinPath(...parts: readonly string[]): string {
  return parts.flatMap((p) => splitPath(p)).join('/');
}

/** The parent of a normalized path ('' for a top-level name and for the root). */
export function parentPath(path: string): string {
  const segs = splitPath(path);
  segs.pop();
  return segs.join('/');
}

/** The last segment of a path ('' for the root). */
export function baseName(path: string): string {
  const segs = splitPath(path);
  return segs[segs.length - 1] ?? '';
}

/** Percent-encodes one segment for a URL path (everything but unreserved characters). */
export function encodePathSegment(segment: string): string {
  // encodeURIComponent leaves !'()* alone; they are legal in a path, but encoding them too
  // keeps the form canonical for every server.
  return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Encodes a remote-relative path segment by segment ('a b/c#d' → 'a%20b/c%23d'). */
export function encodePath(path: string): string {
  return splitPath(path).map(encodePathSegment).join('/');
}

/**
 * Decodes one percent-encoded URL segment. Returns undefined for malformed escapes or bytes
 * that are not UTF-8 (such a name cannot be represented faithfully).
 */
export function decodePathSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
