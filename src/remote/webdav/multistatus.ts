// The body of a PROPFIND answer (207 Multi-Status, RFC 4918 §13), read as it streams: one
// `<response>` element at a time is cut out of the text and parsed with fast-xml-parser, so a
// listing of 100,000 entries costs the entries, not a DOM of the whole document.
//
// Invariants:
// - Namespace prefixes are ignored (`D:`, `d:`, `lp1:`, none at all): elements are matched by
//   their local name. Only DAV: element names are looked at.
// - Memory is bounded: the whole body by `maxBytes`, one `<response>` by `maxResponseBytes`;
//   past either the answer is RemoteError 'protocol' (not retryable) naming the limit.
// - A body that is not well-formed where it matters (a `<response>` the XML validator refuses,
//   no `<multistatus>` root, a document that ends before `</multistatus>`) is RemoteError
//   'protocol'; nothing is returned from a broken answer.
// - XML entities (`&quot;` in ETags, `&amp;` and numeric references in hrefs) are decoded once;
//   a DOCTYPE's own entity declarations are never expanded (the prelude is not parsed).
import { StringDecoder } from 'node:string_decoder';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { RemoteError } from '../remote-error.js';
import { mapBodyError } from '../http/http-errors.js';

/** What one `<response>` says about one resource. */
export interface DavResponse {
  /** The href as sent (entity-decoded, still percent-encoded). */
  href: string;
  /** The response-level status ("HTTP/1.1 404 Not Found" as 404), when there is one. */
  status?: number;
  /** Properties from the propstats whose status is 2xx. */
  collection: boolean;
  size?: number;
  mtimeMs?: number;
  etag?: string;
  /** Whether the answer carried a getetag property at all (for the capability probe). */
  hasEtag: boolean;
}

export interface MultistatusLimits {
  maxBytes: number;
  maxResponseBytes: number;
}

const parser = new XMLParser({
  removeNSPrefix: true,
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: true,
  htmlEntities: true,
  isArray: (name) => name === 'propstat' || name === 'href' || name === 'response',
});

// `response` and not `responsedescription`: the local name must end at a space, '>' or '/'.
const RESPONSE_OPEN = /<([A-Za-z_][\w.-]*:)?response(?=[\s>/])/g;
const RESPONSE_CLOSE = /<\/([A-Za-z_][\w.-]*:)?response\s*>/g;
const MULTISTATUS_OPEN = /<([A-Za-z_][\w.-]*:)?multistatus(?=[\s>/])/;
const MULTISTATUS_CLOSE = /<\/([A-Za-z_][\w.-]*:)?multistatus\s*>/;

/** Reads a multistatus body, calling `onResponse` for each `<response>` in order. */
export async function readMultistatus(body: AsyncIterable<Buffer>, limits: MultistatusLimits, signal: AbortSignal, what: string, onResponse: (r: DavResponse) => void): Promise<void> {
  const decoder = new StringDecoder('utf8');
  let text = '';
  let total = 0;
  let sawRoot = false;
  // The complete <response> elements in `text` are parsed together, in one batch per chunk
  // (fast-xml-parser builds a parser per call: one call per entry costs more than the entry);
  // the text before the last complete one is then dropped.
  const take = (final: boolean): void => {
    let pos = 0;
    let batchStart = -1;
    for (;;) {
      RESPONSE_OPEN.lastIndex = pos;
      const open = RESPONSE_OPEN.exec(text);
      if (open === null) break;
      if (!sawRoot) {
        if (!MULTISTATUS_OPEN.test(text.slice(pos, open.index))) throw new RemoteError('protocol', `${what}: a <response> outside a <multistatus>`, { retryable: false });
        sawRoot = true;
      }
      RESPONSE_CLOSE.lastIndex = open.index;
      const close = RESPONSE_CLOSE.exec(text);
      const end = close === null ? text.length : close.index + close[0].length;
      if (end - open.index > limits.maxResponseBytes) {
        throw new RemoteError('protocol', `${what}: one <response> is larger than ${limits.maxResponseBytes} bytes`, { retryable: false });
      }
      if (close === null) break;
      if (batchStart < 0) batchStart = open.index;
      pos = end;
    }
    if (batchStart >= 0) for (const r of parseResponses(text.slice(batchStart, pos), what)) onResponse(r);
    if (!sawRoot && MULTISTATUS_OPEN.test(text.slice(pos))) sawRoot = true;
    // Keep what may hold an unfinished <response>, or the start of a tag split across chunks.
    RESPONSE_OPEN.lastIndex = pos;
    const pending = RESPONSE_OPEN.exec(text);
    if (pending !== null) text = text.slice(pending.index);
    else text = final ? text.slice(pos) : text.slice(Math.max(pos, text.length - 256));
  };
  try {
    for await (const chunk of body) {
      total += chunk.length;
      if (total > limits.maxBytes) throw new RemoteError('protocol', `${what}: multistatus larger than ${limits.maxBytes} bytes; refused`, { retryable: false });
      text += decoder.write(chunk);
      take(false);
    }
  } catch (err) {
    throw mapBodyError(err, signal, what);
  }
  text += decoder.end();
  take(true);
  if (!sawRoot) throw new RemoteError('protocol', `${what}: the 207 body is not a <multistatus> document`, { retryable: false });
  if (!MULTISTATUS_CLOSE.test(text)) throw new RemoteError('protocol', `${what}: the multistatus document ends without </multistatus> (truncated or broken XML)`, { retryable: false });
}

function parseResponses(xml: string, what: string): DavResponse[] {
  const doc = `<batch>${xml}</batch>`;
  const valid = XMLValidator.validate(doc);
  if (valid !== true) {
    throw new RemoteError('protocol', `${what}: broken XML in the multistatus (${valid.err.msg})`, { retryable: false });
  }
  const parsed = parser.parse(doc) as { batch?: { response?: unknown } };
  const responses = parsed.batch?.response;
  return (Array.isArray(responses) ? responses : []).map((r) => toResponse(r, what));
}

function toResponse(raw: unknown, what: string): DavResponse {
  const r = asObject(raw);
  const hrefs = r?.['href'];
  const href = Array.isArray(hrefs) ? textOf(hrefs[0]) : undefined;
  if (r === undefined || href === undefined || href === '') throw new RemoteError('protocol', `${what}: a <response> without an <href>`, { retryable: false });
  const out: DavResponse = { href, collection: false, hasEtag: false };
  const status = statusCode(textOf(r['status']));
  if (status !== undefined) out.status = status;
  const propstats = Array.isArray(r['propstat']) ? (r['propstat'] as unknown[]) : [];
  for (const ps of propstats) {
    const o = asObject(ps);
    const code = statusCode(textOf(o?.['status']));
    const prop = asObject(o?.['prop']);
    if (prop === undefined || code === undefined || code < 200 || code > 299) continue;
    if ('resourcetype' in prop) {
      const rt = asObject(prop['resourcetype']);
      out.collection = rt !== undefined && 'collection' in rt;
    }
    const len = textOf(prop['getcontentlength']);
    if (len !== undefined && /^\d+$/.test(len)) {
      const n = Number(len);
      if (Number.isSafeInteger(n)) out.size = n;
    }
    const lm = textOf(prop['getlastmodified']);
    if (lm !== undefined) {
      const ms = Date.parse(lm);
      if (Number.isFinite(ms)) out.mtimeMs = ms;
    }
    if ('getetag' in prop) {
      out.hasEtag = true;
      const etag = textOf(prop['getetag']);
      if (etag !== undefined && etag !== '') out.etag = etag;
    }
  }
  return out;
}

function asObject(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function textOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  const o = asObject(v);
  const t = o?.['#text'];
  return typeof t === 'string' ? t : undefined;
}

/** "HTTP/1.1 200 OK" → 200. */
function statusCode(line: string | undefined): number | undefined {
  if (line === undefined) return undefined;
  const m = /^\s*HTTP\/[\d.]+\s+(\d{3})/i.exec(line);
  return m === null ? undefined : Number(m[1]);
}
