// Fingerprints: which version of a remote object bytes belong to. One comparison for every
// place that asks "is this still the version I mean?": opening a cached object, checking a
// range response (in-thread and on transfer threads), the local remote's reads, and next the
// write path's conditional uploads (If-Match).
//
// The rule (a changed object must never serve old bytes, and a comparison must never invent a
// change it has no evidence for):
//   1. different sizes: changed;
//   2. both have an ETag: changed iff their opaque tags differ (an ETag names the version; equal
//      ETags with different mtimes are the same bytes). The weak prefix W/ is ignored (RFC 9110
//      weak comparison): Apache marks a file's ETag weak during the second it was modified and
//      strong afterwards, for the same bytes; size and mtime still have to agree elsewhere;
//   3. otherwise, both have an mtime: changed iff the mtimes differ (a server that stopped
//      sending ETags still shows a new Last-Modified);
//   4. otherwise nothing tells them apart: unchanged.
// It is symmetric, and every fingerprint is unchanged against itself (property-tested).
export interface Fingerprint {
  etag?: string;
  size: number;
  mtimeMs?: number;
}

/** Why `got` names another version than `expect`, or undefined when nothing says it does. */
export function fingerprintChange(expect: Fingerprint, got: Fingerprint): string | undefined {
  if (expect.size !== got.size) return `size is now ${got.size}, expected ${expect.size}`;
  if (expect.etag !== undefined && got.etag !== undefined) {
    return opaqueTag(expect.etag) === opaqueTag(got.etag) ? undefined : `ETag is now ${got.etag}, expected ${expect.etag}`;
  }
  if (expect.mtimeMs !== undefined && got.mtimeMs !== undefined && expect.mtimeMs !== got.mtimeMs) {
    return `mtime is now ${isoOrRaw(got.mtimeMs)}, expected ${isoOrRaw(expect.mtimeMs)}`;
  }
  return undefined;
}

/** The two fingerprints may name the same version (see the rule above). */
export function sameVersion(a: Fingerprint, b: Fingerprint): boolean {
  return fingerprintChange(a, b) === undefined;
}

/**
 * A stable string for a fingerprint, for cache keys and the catalogue: lossless (size, mtime
 * and opaque ETag), so `parseFingerprintKey` gives the fingerprint back and a cached version
 * can be compared with the rule above, not only by string.
 */
export function fingerprintKey(f: Fingerprint): string {
  return JSON.stringify([f.size, f.mtimeMs ?? null, f.etag === undefined ? null : opaqueTag(f.etag)]);
}

/**
 * The fingerprint a key names; also reads the keys of earlier versions ("etag:TAG:SIZE",
 * "sm:SIZE:MTIME"). Undefined for text that is no key.
 */
export function parseFingerprintKey(key: string): Fingerprint | undefined {
  if (key.startsWith('[')) {
    try {
      const v: unknown = JSON.parse(key);
      if (!Array.isArray(v) || v.length !== 3) return undefined;
      const [size, mtime, etag] = v as unknown[];
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return undefined;
      const f: Fingerprint = { size };
      if (typeof mtime === 'number') f.mtimeMs = mtime;
      if (typeof etag === 'string') f.etag = etag;
      return f;
    } catch {
      return undefined;
    }
  }
  const sm = /^sm:(\d+):(.+)$/.exec(key);
  if (sm) {
    const f: Fingerprint = { size: Number(sm[1]) };
    if (sm[2] !== '?' && Number.isFinite(Number(sm[2]))) f.mtimeMs = Number(sm[2]);
    return f;
  }
  const et = /^etag:(.*):(\d+)$/.exec(key);
  if (et) return { size: Number(et[2]), etag: et[1] as string };
  return undefined;
}

/**
 * Two fingerprints of one version (sameVersion) as one, with every field either knows: the
 * bytes cached under a listing's {size, mtime} are the version a later HEAD names with its
 * ETag too. Only for fingerprints that are the same version.
 */
export function mergeFingerprints(a: Fingerprint, b: Fingerprint): Fingerprint {
  const f: Fingerprint = { size: a.size };
  const mtime = a.mtimeMs ?? b.mtimeMs;
  const etag = a.etag ?? b.etag;
  if (mtime !== undefined) f.mtimeMs = mtime;
  if (etag !== undefined) f.etag = etag;
  return f;
}

/** An entity tag without its weakness indicator: `W/"x"` and `"x"` name the same version. */
function opaqueTag(etag: string): string {
  return etag.startsWith('W/') ? etag.slice(2) : etag;
}

function isoOrRaw(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}
