// WebdavRemote against bad server behaviour (the fault fixture, test/fakes/dav-fault-server.ts):
// hostile hrefs are skipped with a warning and never followed, a broken or truncated 207 is
// 'protocol' (nothing half-parsed is returned), namespace prefixes do not matter, a 100,000-
// entry multistatus is read streaming, and bodies over the caps are refused with a clear error.
// Also: hrefs.ts on its own, and credentials (URL userinfo or options) never in id or errors.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { placeHref } from '../../src/remote/webdav/hrefs.js';
import { WebdavRemote } from '../../src/remote/webdav/webdav-remote.js';
import { RemoteError } from '../../src/remote/remote-error.js';
import { answer207, davEntry, multistatus, startDavFaultServer, type DavFaultServer } from '../fakes/dav-fault-server.js';
import { rejectsKind } from '../support/remote-asserts.js';

const signal = new AbortController().signal;

void describe('hrefs: where a multistatus href points', () => {
  const origin = 'http://127.0.0.1:8080';
  const dir = ['dav', 'a b'];
  test('self, children, and everything else refused with a reason', () => {
    assert.deepEqual(placeHref('/dav/a%20b/', origin, dir), { kind: 'self' });
    assert.deepEqual(placeHref('/dav/a%20b', origin, dir), { kind: 'self' });
    assert.deepEqual(placeHref('http://127.0.0.1:8080/dav/a%20b/x%23y', origin, dir), { kind: 'child', name: 'x#y' });
    assert.deepEqual(placeHref('/dav/a%20b/sub/', origin, dir), { kind: 'child', name: 'sub' });
    assert.deepEqual(placeHref('/dav/a%20b/%C3%BC', origin, dir), { kind: 'child', name: 'ü' });
    for (const [href, why] of [
      ['/dav/a%20b/..', /reserved/],
      ['/dav/a%20b/%2e%2e', /reserved/],
      ['/dav/a%20b/.', /reserved/],
      ['/dav/a%20b/../etc/passwd', /reserved/],
      ['/dav/a%20b/x%2Fy', /"\/"/],
      ['/dav/a%20b/x%00y', /NUL/],
      ['/dav/a%20b/%ff', /UTF-8/],
      ['/dav/other/x', /outside/],
      ['/elsewhere', /outside/],
      ['/dav/a%20b/sub/deeper', /deeper/],
      ['/dav/a%20b//x', /empty segment/],
      ['http://evil.example/dav/a%20b/x', /another origin/],
      ['relative/x', /absolute/],
      ['/dav/a%20b/x?y=1', /query/],
    ] as const) {
      const got = placeHref(href, origin, dir);
      assert.equal(got.kind, 'refused', href);
      assert.match(got.kind === 'refused' ? got.reason : '', why, href);
    }
  });
});

void describe('WebdavRemote against the fault server', () => {
  let server: DavFaultServer;
  let warnings: string[];
  let remote: WebdavRemote;

  before(async () => {
    server = await startDavFaultServer();
  });
  after(async () => {
    await server.close();
  });

  const open = (options: { maxListingBytes?: number; maxResponseBytes?: number } = {}): WebdavRemote => {
    warnings = [];
    const logger = pino({ level: 'warn' }, { write: (s: string) => warnings.push(s) });
    remote = new WebdavRemote({ baseUrl: `${server.url}dav/`, logger, ...options });
    return remote;
  };
  const serve = (body: string | Iterable<string>): void => {
    server.intercept = (req, res) => {
      req.resume();
      if (req.method !== 'PROPFIND') return false;
      answer207(res, body);
      return true;
    };
  };

  test('namespace prefixes do not matter (D:, d:, lp1:, none)', async () => {
    const r = open();
    for (const prefix of ['D', 'd', 'lp1', '']) {
      serve(multistatus([davEntry('/dav/', undefined, undefined, prefix), davEntry('/dav/f.txt', 12, '"e1"', prefix), davEntry('/dav/sub/', undefined, undefined, prefix)], prefix));
      const entries = await r.list('', signal);
      assert.deepEqual(
        entries.map((e) => [e.name, e.type, e.size, e.etag, e.mtimeMs]),
        [
          ['f.txt', 'file', 12, '"e1"', Date.UTC(2026, 11, 2, 10)],
          ['sub', 'dir', 0, undefined, Date.UTC(2026, 11, 2, 10)],
        ],
        `prefix "${prefix}"`,
      );
    }
    // Apache's mix: D: for structure, lp1: (also DAV:) for live properties, entities in ETags.
    serve(
      '<?xml version="1.0"?><D:multistatus xmlns:D="DAV:"><D:response xmlns:lp1="DAV:"><D:href>/dav/a%26b</D:href><D:propstat><D:prop><lp1:resourcetype/><lp1:getcontentlength>5</lp1:getcontentlength><lp1:getetag>W/&quot;5-abc&quot;</lp1:getetag></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat><D:propstat><D:prop><D:quota/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat></D:response></D:multistatus>',
    );
    assert.deepEqual((await r.list('', signal)).map((e) => [e.name, e.size, e.etag]), [['a&b', 5, 'W/"5-abc"']]);
    await r.close();
  });

  test('hostile hrefs are skipped with a warning, never followed; good names are kept', async () => {
    const r = open();
    serve(
      multistatus([
        davEntry('/dav/', undefined),
        davEntry('/dav/ok%20name', 1),
        davEntry('/dav/..', 2),
        davEntry('/dav/%2e%2e/', undefined),
        davEntry('/dav/a%2Fb', 3),
        davEntry('/dav/nul%00', 4),
        davEntry('/etc/passwd', 5),
        davEntry('http://evil.example/dav/x', 6),
        davEntry('/dav/sub/deeper', 7),
        davEntry('/dav/ok%20name', 8),
      ]),
    );
    const before = server.requests.length;
    const entries = await r.list('', signal);
    assert.deepEqual(entries.map((e) => [e.name, e.size]), [['ok name', 1]], 'only the good name, once (the first of a duplicate)');
    assert.equal(server.requests.length, before + 1, 'one PROPFIND: no href was followed');
    const refused = warnings.filter((w) => w.includes('refused an href'));
    assert.equal(refused.length, 7, `every hostile href is logged: ${warnings.join('')}`);
    assert.ok(warnings.some((w) => w.includes('listed twice')), 'the duplicate is logged');
    await r.close();
  });

  test('a 207 with broken XML, a truncated document or no multistatus is a protocol error', async () => {
    const r = open();
    for (const [label, body] of [
      ['a mismatched tag', multistatus([davEntry('/dav/', undefined), '<D:href>/dav/x</D:href><D:propstat><D:prop></D:propstat>'])],
      ['a truncated document', multistatus([davEntry('/dav/', undefined), davEntry('/dav/x', 1)]).slice(0, -30)],
      ['no closing multistatus', multistatus([davEntry('/dav/', undefined)]).replace('</D:multistatus>', '')],
      ['not a multistatus', '<html><body>hello</body></html>'],
      ['a response without an href', multistatus(['<D:propstat><D:prop/><D:status>HTTP/1.1 200 OK</D:status></D:propstat>'])],
    ] as const) {
      serve(body);
      await rejectsKind(r.list('', signal), 'protocol', label);
    }
    await r.close();
  });

  test('a 100,000-entry multistatus streams into 100,000 entries; bodies past the caps are refused clearly', async () => {
    const N = 100_000;
    function* huge(): Generator<string> {
      yield '<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">';
      yield `<D:response>${davEntry('/dav/', undefined)}</D:response>`;
      for (let i = 0; i < N; i += 1000) {
        let chunk = '';
        for (let j = i; j < i + 1000; j++) chunk += `<D:response>${davEntry(`/dav/file-${j}.bin`, j, `"${j}"`)}</D:response>`;
        yield chunk;
      }
      yield '</D:multistatus>';
    }
    let r = open();
    serve(huge());
    const entries = await r.list('', signal);
    assert.equal(entries.length, N);
    assert.deepEqual([entries[0]?.name, entries[N - 1]?.name, entries[N - 1]?.size], ['file-0.bin', `file-${N - 1}.bin`, N - 1]);
    await r.close();

    r = open({ maxListingBytes: 1024 * 1024 });
    serve(huge());
    await assert.rejects(r.list('', signal), (err: unknown) => err instanceof RemoteError && err.kind === 'protocol' && /larger than 1048576 bytes/.test(err.message));
    await r.close();

    r = open({ maxResponseBytes: 4096 });
    serve(multistatus([davEntry('/dav/', undefined), `<D:href>/dav/x</D:href><D:propstat><D:prop><D:displayname>${'x'.repeat(10_000)}</D:displayname></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>`]));
    await assert.rejects(r.list('', signal), (err: unknown) => err instanceof RemoteError && err.kind === 'protocol' && /one <response> is larger than 4096 bytes/.test(err.message));
    await r.close();
  });

  test('credentials from the URL never show in the id, logs or errors', async () => {
    warnings = [];
    const logger = pino({ level: 'trace' }, { write: (s: string) => warnings.push(s) });
    let auth: string | undefined;
    server.intercept = (req, res) => {
      req.resume();
      auth = req.headers.authorization;
      res.writeHead(500, { 'content-length': '0' }).end();
      return true;
    };
    const r = new WebdavRemote({ baseUrl: server.url.replace('http://', 'http://alice:s%3Acret-pw@') + 'dav/', logger });
    assert.ok(!r.id.includes('s:cret') && !r.id.includes('alice'), r.id);
    const err = await r.list('', signal).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof RemoteError);
    assert.equal(auth, `Basic ${Buffer.from('alice:s:cret-pw').toString('base64')}`, 'sent as Basic auth');
    const everything = `${err.message} ${String(err.stack)} ${warnings.join('')} ${r.id}`;
    assert.ok(!everything.includes('s:cret') && !everything.includes('s%3Acret') && !everything.includes(Buffer.from('alice:s:cret-pw').toString('base64')), 'no secret anywhere');
    await r.close();
  });
});
