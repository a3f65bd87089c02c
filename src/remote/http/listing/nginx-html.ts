// Parser for nginx `autoindex on` (HTML) pages. Each entry is one line inside <pre>:
//   <a href="a%20b.txt">a b.txt</a>          19-Nov-2025 21:02               1234
// The display text may be truncated ("..>"), so the name comes from the href only. The size
// column is bytes when it is plain digits (always with `autoindex_exact_size on`; below 10000
// otherwise) and "12K"/"3M"/"-" when not exact, which we leave undefined. The date has minute
// precision, so it is reported only as `approxMtimeMs` (for display): a rounded mtime would
// make a false fingerprint.
import { ListingBuilder, anchors, classifyHref, type ParsedListing } from './links.js';

const TAIL = /^[^<]*<\/a>[ \t]*(\d{2}-[A-Za-z]{3}-\d{4} \d{2}:\d{2})[ \t]+(\S+)/;

export function parseNginxHtml(html: string, dirUrl: URL): ParsedListing {
  const b = new ListingBuilder();
  for (const a of anchors(html)) {
    const link = classifyHref(a.href, dirUrl);
    const tail = TAIL.exec(html.slice(a.end, a.end + 512));
    const sizeText = tail?.[2];
    const approx = tail?.[1] === undefined ? undefined : parseNginxDate(tail[1]);
    const extra: { size?: number; approxMtimeMs?: number } = {};
    if (sizeText !== undefined && /^\d+$/.test(sizeText)) extra.size = Number(sizeText);
    if (approx !== undefined) extra.approxMtimeMs = approx;
    b.add(link, extra);
  }
  return b.result('nginx-html', false);
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** "19-Nov-2025 21:02" (nginx prints UTC unless autoindex_localtime) → epoch ms. */
export function parseNginxDate(text: string): number | undefined {
  const m = /^(\d{2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2})$/.exec(text);
  if (!m) return undefined;
  const month = MONTHS.indexOf((m[2] ?? '').toLowerCase());
  if (month < 0) return undefined;
  return Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]));
}

export function looksLikeNginxHtml(html: string): boolean {
  return /<h1>Index of [^<]*<\/h1>\s*<hr>\s*<pre>/i.test(html);
}
