// Parser for Apache mod_autoindex pages (FancyIndexing, table or <pre> layout). Sizes are
// rounded ("1.2K") and dates have minute precision, so only names and types are taken. Sort
// links (?C=N;O=D) and "Parent Directory" are skipped by the shared href rules; icon links
// to the same child are de-duplicated.
import { parseAnchorsOnly, type ParsedListing } from './links.js';

export function parseApacheHtml(html: string, dirUrl: URL): ParsedListing {
  return parseAnchorsOnly(html, dirUrl, 'apache-html');
}

export function looksLikeApacheHtml(html: string): boolean {
  return /<address>Apache/i.test(html) || html.includes('?C=N;O=D') || html.includes('?C=N&amp;O=D');
}
