// The remote contract against LocalRemote, over a fresh temp directory per test.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalRemote } from '../../src/remote/local/local-remote.js';
import { runRemoteContract } from './contract.js';

runRemoteContract(
  'LocalRemote',
  async () => {
    const root = await mkdtemp(join(tmpdir(), 'fusestream-contract-'));
    return { remote: new LocalRemote({ root, chunkBytes: 64 * 1024 }), dispose: () => rm(root, { recursive: true, force: true }) };
  },
  // No renameat2 in Node: noReplace of a directory is checked. ifMatch is checked before the rename.
  { atomicRename: true, renameNoReplace: false, conditionalPut: false, symlinks: true, mtimes: true },
);
