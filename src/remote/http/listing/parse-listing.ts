// Picks the parser for an index response: JSON by Content-Type (nginx autoindex_format
// json), otherwise HTML by its recognisable shape, falling back to names-only anchors.
import { RemoteError } from '../../remote-error.js';
import { parseAnchorsOnly, type ParsedListing } from './links.js';
import { parseApacheHtml, looksLikeApacheHtml } from './apache-html.js';
import { parseNginxHtml, looksLikeNginxHtml } from './nginx-html.js';
import { parseNginxJson } from './nginx-json.js';
import { parsePythonHtml, looksLikePythonHtml } from './python-html.js';

export function parseListing(contentType: string | undefined, body: string, dirUrl: URL): ParsedListing {
  const mime = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (mime === 'application/json' || mime.endsWith('+json')) return parseNginxJson(body);
  if (mime !== '' && mime !== 'text/html' && mime !== 'application/xhtml+xml') {
    throw new RemoteError('protocol', `directory listing has unexpected Content-Type ${mime}`, { retryable: false });
  }
  if (looksLikeApacheHtml(body)) return parseApacheHtml(body, dirUrl);
  if (looksLikeNginxHtml(body)) return parseNginxHtml(body, dirUrl);
  if (looksLikePythonHtml(body)) return parsePythonHtml(body, dirUrl);
  return parseAnchorsOnly(body, dirUrl, 'generic-html');
}
