// Where a WebDAV mount's credentials come from (cli/credentials.ts): --user with
// --password-file or $FUSESTREAM_PASSWORD, else the URL's userinfo; the URL handed on has none,
// and no error message holds a password.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PASSWORD_ENV, webdavCredentials } from '../../src/cli/credentials.js';
import { UsageError } from '../../src/cli/usage-error.js';

void describe('webdavCredentials', () => {
  const none = { user: undefined, passwordFile: undefined };

  test('the URL userinfo, decoded, and removed from the URL', () => {
    const url = new URL('https://alice:p%40ss%3Aword@example.org/dav/');
    assert.deepEqual(webdavCredentials(url, none, {}), { username: 'alice', password: 'p@ss:word' });
    assert.equal(url.href, 'https://example.org/dav/');
  });

  test('anonymous without a user anywhere', () => {
    assert.equal(webdavCredentials(new URL('https://example.org/'), none, { [PASSWORD_ENV]: 'x' }), undefined);
  });

  test('--user with the password from the environment; --password-file wins over it (first line)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fusestream-cred-'));
    try {
      assert.deepEqual(webdavCredentials(new URL('https://example.org/'), { user: 'bob', passwordFile: undefined }, { [PASSWORD_ENV]: 'from-env' }), { username: 'bob', password: 'from-env' });
      const file = join(dir, 'pw');
      writeFileSync(file, 'from-file\nignored\n', { mode: 0o600 });
      assert.deepEqual(webdavCredentials(new URL('https://carol:inurl@example.org/'), { user: 'bob', passwordFile: file }, { [PASSWORD_ENV]: 'from-env' }), { username: 'bob', password: 'from-file' });
      // The URL's password belongs to the URL's user only.
      assert.deepEqual(webdavCredentials(new URL('https://carol:inurl@example.org/'), { user: 'bob', passwordFile: undefined }, {}), { username: 'bob', password: '' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an unreadable password file is a usage error naming the file, not a secret', () => {
    assert.throws(
      () => webdavCredentials(new URL('https://u:secret@example.org/'), { user: undefined, passwordFile: '/nonexistent/pw' }, {}),
      (err: unknown) => err instanceof UsageError && err.message.includes('/nonexistent/pw') && !err.message.includes('secret'),
    );
  });
});
