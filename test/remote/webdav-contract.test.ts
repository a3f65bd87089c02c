// The remote contract (contract.ts) against WebdavRemote on each real server: Apache mod_dav
// (the reference), nginx dav + dav-ext and `rclone serve webdav`, one server per kind for the
// file, a fresh empty collection per test. Each remote is probed first, as a mount does, and
// must claim what the server was measured to honour (RESEARCH.md).
import { after } from 'node:test';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { WebdavRemote } from '../../src/remote/webdav/webdav-remote.js';
import { runRemoteContract, type ContractCapabilities } from './contract.js';
import { canRunApache, davAvailable, startDav, type DavKind, type DavServer } from '../support/webdav-servers.js';

const KINDS: { kind: DavKind; caps: ContractCapabilities }[] = [
  // Apache honours If-Match and If-None-Match: * (412): conditional puts are the server's.
  { kind: 'apache', caps: { atomicRename: false, renameNoReplace: false, conditionalPut: true, symlinks: false, mtimes: false } },
  // nginx and rclone ignore both: every condition is a check just before the request.
  { kind: 'nginx', caps: { atomicRename: false, renameNoReplace: false, conditionalPut: false, symlinks: false, mtimes: false } },
  { kind: 'rclone', caps: { atomicRename: false, renameNoReplace: false, conditionalPut: false, symlinks: false, mtimes: false } },
];

const servers = new Map<DavKind, Promise<DavServer>>();
const base = mkdtempSync(join(tmpdir(), 'fusestream-dav-contract-'));
let n = 0;

after(async () => {
  for (const s of servers.values()) await (await s).stop();
  rmSync(base, { recursive: true, force: true });
});

for (const { kind, caps } of KINDS) {
  if (!davAvailable(kind) || (kind === 'apache' && !canRunApache())) continue;
  runRemoteContract(
    `WebdavRemote on ${kind}`,
    async () => {
      let server = servers.get(kind);
      if (server === undefined) {
        const root = join(base, kind);
        mkdirSync(root);
        server = startDav(kind, root);
        servers.set(kind, server);
      }
      const s = await server;
      const name = `t${++n}`;
      mkdirSync(join(s.root, name));
      s.own();
      const remote = new WebdavRemote({ baseUrl: `${s.url}${name}/`, timeouts: { headersTimeoutMs: 10_000, bodyTimeoutMs: 10_000 } });
      await remote.probe(AbortSignal.timeout(10_000));
      return { remote, dispose: async () => rmSync(join(s.root, name), { recursive: true, force: true }) };
    },
    caps,
  );
}
