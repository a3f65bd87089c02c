// Parser for nginx `autoindex_format json`: an array of
//   { "name": "a b.txt", "type": "file", "mtime": "Wed, 19 Nov 2025 21:02:03 GMT", "size": 1234 }
// Names are plain strings (not URL-encoded); sizes are exact bytes and mtimes exact to the
// second, so this is the one listing format that makes per-entry stats unnecessary.
// Types other than "file" and "directory" (sockets, fifos) are skipped.
import type { RemoteEntry } from '../../remote.js';
import { RemoteError } from '../../remote-error.js';
import { isRefused, validateName } from '../../names.js';
import type { ParsedListing, RefusedListingName } from './links.js';

export function parseNginxJson(text: string): ParsedListing {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new RemoteError('protocol', 'directory listing is not valid JSON', { cause: err });
  }
  if (!Array.isArray(data)) throw new RemoteError('protocol', 'JSON directory listing is not an array');
  const entries: RemoteEntry[] = [];
  const refused: RefusedListingName[] = [];
  const seen = new Set<string>();
  for (const item of data as unknown[]) {
    if (typeof item !== 'object' || item === null) throw new RemoteError('protocol', 'JSON listing item is not an object');
    const rec = item as Record<string, unknown>;
    const { name, type, mtime, size } = rec;
    if (typeof name !== 'string') throw new RemoteError('protocol', 'JSON listing item has no name');
    const valid = validateName(name);
    if (isRefused(valid)) {
      refused.push({ raw: name, reason: valid.refused });
      continue;
    }
    if (type !== 'file' && type !== 'directory') continue;
    if (seen.has(valid)) continue;
    seen.add(valid);
    const entry: RemoteEntry = { name: valid, type: type === 'directory' ? 'dir' : 'file' };
    if (type === 'file') {
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
        throw new RemoteError('protocol', `JSON listing gives no valid size for ${JSON.stringify(name)}`);
      }
      entry.size = size;
    }
    if (typeof mtime === 'string') {
      const ms = Date.parse(mtime);
      if (Number.isFinite(ms)) entry.mtimeMs = ms;
    }
    entries.push(entry);
  }
  return { entries, refused, exact: true, format: 'nginx-json' };
}
