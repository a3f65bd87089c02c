// Listing parsers on fixture pages from nginx (HTML and JSON), Apache mod_autoindex and
// Python http.server, including hostile names that must be refused and never followed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyHref, decodeHtmlEntities } from '../../src/remote/http/listing/links.js';
import { parseListing } from '../../src/remote/http/listing/parse-listing.js';
import { parseNginxJson } from '../../src/remote/http/listing/nginx-json.js';
import type { RemoteEntry } from '../../src/remote/remote.js';
import { RemoteError } from '../../src/remote/remote-error.js';

const DIR = new URL('http://127.0.0.1:8080/files/sub%20dir/');

// nginx 1.22 `autoindex on; autoindex_exact_size on;` (display names longer than 50 chars are cut
// with "..&gt;", which is why names come from the href).
const NGINX_HTML = `<html>
<head><title>Index of /files/sub dir/</title></head>
<body>
<h1>Index of /files/sub dir/</h1><hr><pre><a href="../">../</a>
<a href="nested/">nested/</a>                                            19-Nov-2025 21:02                   -
<a href="a%20b%20%C3%BC.txt">a b ü.txt</a>                                      19-Nov-2025 21:02                1234
<a href="100%25%20sure%23%3F.bin">100% sure#?.bin</a>                                   19-Nov-2025 21:03             1048576
<a href="empty">empty</a>                                              19-Nov-2025 21:03                   0
<a href="rounded.bin">rounded.bin</a>                                        19-Nov-2025 21:03                 12K
<a href="this-is-a-very-long-file-name-that-nginx-will-truncate-in-display.bin">this-is-a-very-long-file-name-that-nginx-will-tru..&gt;</a> 19-Nov-2025 21:04                  42
<a href="a&amp;b.txt">a&amp;b.txt</a>                                          19-Nov-2025 21:04                   7
<a href="%2E%2E/">../</a>                                                19-Nov-2025 21:04                   -
<a href="a%2Fb">a/b</a>                                                19-Nov-2025 21:04                   5
<a href="nul%00x">nul</a>                                              19-Nov-2025 21:04                   5
<a href="bad%E0%A4">bad</a>                                            19-Nov-2025 21:04                   5
</pre><hr></body>
</html>
`;

const NGINX_JSON = `[
{ "name":"nested", "type":"directory", "mtime":"Wed, 19 Nov 2025 21:02:03 GMT" },
{ "name":"a b ü.txt", "type":"file", "mtime":"Wed, 19 Nov 2025 21:02:04 GMT", "size":1234 },
{ "name":"100% sure#?.bin", "type":"file", "mtime":"Wed, 19 Nov 2025 21:03:05 GMT", "size":1048576 },
{ "name":"empty", "type":"file", "mtime":"Wed, 19 Nov 2025 21:03:06 GMT", "size":0 },
{ "name":"sock", "type":"other", "mtime":"Wed, 19 Nov 2025 21:03:06 GMT" },
{ "name":"..", "type":"directory", "mtime":"Wed, 19 Nov 2025 21:03:06 GMT" },
{ "name":"a/b", "type":"file", "mtime":"Wed, 19 Nov 2025 21:03:06 GMT", "size":5 },
{ "name":"", "type":"file", "mtime":"Wed, 19 Nov 2025 21:03:06 GMT", "size":5 },
{ "name":"nul\\u0000x", "type":"file", "mtime":"Wed, 19 Nov 2025 21:03:06 GMT", "size":5 }
]
`;

// Apache 2.4 mod_autoindex, FancyIndexing with HTMLTable (the Debian default).
const APACHE_HTML = `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html>
 <head>
  <title>Index of /files/sub dir</title>
 </head>
 <body>
<h1>Index of /files/sub dir</h1>
  <table>
   <tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th><th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>
   <tr><th colspan="5"><hr></th></tr>
<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td><td><a href="/files/">Parent Directory</a></td><td>&nbsp;</td><td align="right">  - </td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/text.txt" alt="[TXT]"></td><td><a href="a%20b%20%c3%bc.txt">a b ü.txt</a></td><td align="right">2025-11-19 21:02  </td><td align="right">1.2K</td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/folder.gif" alt="[DIR]"></td><td><a href="nested/">nested/</a></td><td align="right">2025-11-19 21:02  </td><td align="right">  - </td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/unknown.gif" alt="[   ]"></td><td><a href="100%25%20sure%23%3f.bin">100% sure#?.bin</a></td><td align="right">2025-11-19 21:03  </td><td align="right">1.0M</td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/unknown.gif" alt="[   ]"></td><td><a href="/files/sub%20dir/abs.bin">abs.bin</a></td><td align="right">2025-11-19 21:03  </td><td align="right"> 10 </td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/unknown.gif" alt="[   ]"></td><td><a href="http://evil.example/steal">steal</a></td><td align="right">2025-11-19 21:03  </td><td align="right"> 10 </td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/unknown.gif" alt="[   ]"></td><td><a href="a%2fb">a/b</a></td><td align="right">2025-11-19 21:03  </td><td align="right"> 10 </td><td>&nbsp;</td></tr>
   <tr><th colspan="5"><hr></th></tr>
</table>
<address>Apache/2.4.62 (Debian) Server at 127.0.0.1 Port 8080</address>
</body></html>
`;

// Python 3 http.server (SimpleHTTPRequestHandler.list_directory).
const PYTHON_HTML = `<!DOCTYPE HTML>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Directory listing for /files/sub dir/</title>
</head>
<body>
<h1>Directory listing for /files/sub dir/</h1>
<hr>
<ul>
<li><a href="100%25%20sure%23%3F.bin">100% sure#?.bin</a></li>
<li><a href="a%20b%20%C3%BC.txt">a b ü.txt</a></li>
<li><a href="link">link@</a></li>
<li><a href="nested/">nested/</a></li>
<li><a href="%2e%2e">..</a></li>
<li><a href="%00">nul</a></li>
<li><a href="">empty</a></li>
<li><a href="sub/deeper.txt">deeper</a></li>
<li><a href="#top">top</a></li>
</ul>
<hr>
</body>
</html>
`;

function byName(entries: RemoteEntry[]): Map<string, RemoteEntry> {
  return new Map(entries.map((e) => [e.name, e]));
}

void describe('nginx autoindex HTML', () => {
  const parsed = parseListing('text/html', NGINX_HTML, DIR);
  const m = byName(parsed.entries);

  void test('is detected and parsed with exact sizes only where exact', () => {
    assert.equal(parsed.format, 'nginx-html');
    assert.equal(parsed.exact, false);
    assert.deepEqual(m.get('nested'), { name: 'nested', type: 'dir', approxMtimeMs: Date.UTC(2025, 10, 19, 21, 2) });
    assert.deepEqual(m.get('a b ü.txt'), { name: 'a b ü.txt', type: 'file', size: 1234, approxMtimeMs: Date.UTC(2025, 10, 19, 21, 2) });
    assert.deepEqual(m.get('100% sure#?.bin'), { name: '100% sure#?.bin', type: 'file', size: 1048576, approxMtimeMs: Date.UTC(2025, 10, 19, 21, 3) });
    assert.deepEqual(m.get('empty'), { name: 'empty', type: 'file', size: 0, approxMtimeMs: Date.UTC(2025, 10, 19, 21, 3) });
    assert.deepEqual(m.get('rounded.bin'), { name: 'rounded.bin', type: 'file', approxMtimeMs: Date.UTC(2025, 10, 19, 21, 3) }, '"12K" is not exact');
    assert.equal(m.get('this-is-a-very-long-file-name-that-nginx-will-truncate-in-display.bin')?.size, 42);
    assert.equal(m.get('a&b.txt')?.size, 7);
    for (const e of parsed.entries) assert.equal(e.mtimeMs, undefined, 'minute-precision dates are not exact: display-only approxMtimeMs');
  });

  void test('refuses hostile names and skips the parent link', () => {
    assert.deepEqual(
      [...m.keys()].sort(),
      ['100% sure#?.bin', 'a b ü.txt', 'a&b.txt', 'empty', 'nested', 'rounded.bin', 'this-is-a-very-long-file-name-that-nginx-will-truncate-in-display.bin'],
    );
    const refused = parsed.refused.map((r) => r.raw);
    assert.deepEqual(refused, ['%2E%2E/', 'a%2Fb', 'nul%00x', 'bad%E0%A4']);
  });
});

void describe('nginx autoindex JSON', () => {
  void test('exact sizes and second-precision mtimes', () => {
    const parsed = parseListing('application/json', NGINX_JSON, DIR);
    assert.equal(parsed.format, 'nginx-json');
    assert.equal(parsed.exact, true);
    const m = byName(parsed.entries);
    assert.deepEqual(m.get('nested'), { name: 'nested', type: 'dir', mtimeMs: Date.UTC(2025, 10, 19, 21, 2, 3) });
    assert.deepEqual(m.get('a b ü.txt'), { name: 'a b ü.txt', type: 'file', size: 1234, mtimeMs: Date.UTC(2025, 10, 19, 21, 2, 4) });
    assert.equal(m.get('empty')?.size, 0);
    assert.equal(m.get('100% sure#?.bin')?.size, 1048576);
    assert.equal(m.has('sock'), false, '"other" types are skipped');
    assert.deepEqual([...m.keys()].sort(), ['100% sure#?.bin', 'a b ü.txt', 'empty', 'nested']);
    assert.deepEqual(
      parsed.refused.map((r) => r.raw),
      ['..', 'a/b', '', 'nul\0x'],
    );
  });

  void test('malformed JSON is a protocol error', () => {
    for (const bad of ['[{', '{"a":1}', '[1]', '[{"type":"file"}]', '[{"name":"x","type":"file","size":-1}]']) {
      assert.throws(() => parseNginxJson(bad), (e: unknown) => e instanceof RemoteError && e.kind === 'protocol', bad);
    }
  });
});

void describe('Apache mod_autoindex', () => {
  void test('names and types only; sort, parent and foreign links skipped', () => {
    const parsed = parseListing('text/html;charset=UTF-8', APACHE_HTML, DIR);
    assert.equal(parsed.format, 'apache-html');
    assert.deepEqual(parsed.entries, [
      { name: 'a b ü.txt', type: 'file' },
      { name: 'nested', type: 'dir' },
      { name: '100% sure#?.bin', type: 'file' },
      { name: 'abs.bin', type: 'file' },
    ]);
    assert.deepEqual(parsed.refused.map((r) => r.raw), ['a%2fb']);
  });
});

void describe('Python http.server', () => {
  void test('names only; hostile names refused', () => {
    const parsed = parseListing('text/html; charset=utf-8', PYTHON_HTML, DIR);
    assert.equal(parsed.format, 'python-html');
    assert.deepEqual(parsed.entries, [
      { name: '100% sure#?.bin', type: 'file' },
      { name: 'a b ü.txt', type: 'file' },
      { name: 'link', type: 'file' },
      { name: 'nested', type: 'dir' },
    ]);
    assert.deepEqual(parsed.refused.map((r) => r.raw), ['%2e%2e', '%00']);
  });
});

void describe('href rules', () => {
  void test('classification', () => {
    assert.deepEqual(classifyHref('./x', DIR), { kind: 'entry', name: 'x', isDir: false });
    assert.deepEqual(classifyHref('http://127.0.0.1:8080/files/sub%20dir/y/', DIR), { kind: 'entry', name: 'y', isDir: true });
    assert.deepEqual(classifyHref('//evil.example/files/sub%20dir/y', DIR), { kind: 'skip' });
    assert.deepEqual(classifyHref('/other/y', DIR), { kind: 'skip' });
    assert.deepEqual(classifyHref('/files/sub%20dir/', DIR), { kind: 'skip' });
    assert.deepEqual(classifyHref('?C=N;O=D', DIR), { kind: 'skip' });
    assert.deepEqual(classifyHref('../', DIR), { kind: 'skip' });
    assert.deepEqual(classifyHref('javascript:alert(1)', DIR), { kind: 'skip' });
    assert.equal(classifyHref('%2e%2e', DIR).kind, 'refused');
    assert.equal(classifyHref(`${'x'.repeat(256)}`, DIR).kind, 'refused');
  });

  void test('HTML entities', () => {
    assert.equal(decodeHtmlEntities('a&amp;b&lt;&gt;&quot;&#39;&#x263A;&#9731;&bogus;'), 'a&b<>"\'☺☃&bogus;');
  });

  void test('unexpected Content-Type is a protocol error', () => {
    assert.throws(() => parseListing('application/octet-stream', 'x', DIR), (e: unknown) => e instanceof RemoteError && e.kind === 'protocol');
  });
});
