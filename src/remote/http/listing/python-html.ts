// Parser for Python's http.server (SimpleHTTPRequestHandler) pages:
//   <li><a href="a%20b.txt">a b.txt</a></li>
// Names only: the page carries neither size nor date. Directories link with a trailing '/'.
import { parseAnchorsOnly, type ParsedListing } from './links.js';

export function parsePythonHtml(html: string, dirUrl: URL): ParsedListing {
  return parseAnchorsOnly(html, dirUrl, 'python-html');
}

export function looksLikePythonHtml(html: string): boolean {
  return /<title>Directory listing for /i.test(html);
}
