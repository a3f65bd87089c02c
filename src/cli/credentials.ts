// Where a WebDAV mount's credentials come from, in this order: `--user` (or FUSESTREAM_USER)
// with the password from `--password-file` (its first line) or the environment variable
// FUSESTREAM_PASSWORD; else the URL's own userinfo (webdav+https://user:pass@host/). A
// password is never a flag (it would show in `ps`) and never appears in a message: errors
// name the file or the variable, not its contents.
import { readFileSync, statSync } from 'node:fs';
import type { Settings } from '../base/settings.js';
import type { HttpCredentials } from '../remote/http/http-client.js';
import { UsageError } from './usage-error.js';

export const PASSWORD_ENV = 'FUSESTREAM_PASSWORD';

/**
 * The credentials for `url` (whose userinfo is removed from it here, so nothing downstream
 * sees it), or undefined for an anonymous mount.
 */
export function webdavCredentials(url: URL, settings: Pick<Settings, 'user' | 'passwordFile'>, env: NodeJS.ProcessEnv = process.env): HttpCredentials | undefined {
  const urlUser = url.username === '' ? undefined : safeDecode(url.username);
  const urlPassword = url.password === '' ? undefined : safeDecode(url.password);
  url.username = '';
  url.password = '';
  const username = settings.user ?? urlUser;
  let password: string | undefined;
  if (settings.passwordFile !== undefined) password = readPasswordFile(settings.passwordFile);
  else if (env[PASSWORD_ENV] !== undefined) password = env[PASSWORD_ENV];
  else if (settings.user === undefined || settings.user === urlUser) password = urlPassword;
  if (username === undefined) {
    if (password !== undefined && settings.passwordFile !== undefined) throw new UsageError('--password-file needs a user name (--user, or user@ in the URL)');
    return undefined;
  }
  return { username, password: password ?? '' };
}

function readPasswordFile(path: string): string {
  let text: string;
  try {
    if ((statSync(path).mode & 0o077) !== 0) process.emitWarning(`the password file ${path} is readable by others; chmod 600 it`);
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new UsageError(`cannot read the password file ${path}`, { cause });
  }
  return (text.split(/\r?\n/)[0] ?? '');
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
