// The remote contract against MemoryRemote.
import { MemoryRemote } from '../../src/remote/memory/memory-remote.js';
import { runRemoteContract } from './contract.js';

runRemoteContract('MemoryRemote', async () => ({ remote: new MemoryRemote({ chunkBytes: 64 * 1024 }), dispose: async () => undefined }), {
  atomicRename: true,
  renameNoReplace: true,
  conditionalPut: true,
  symlinks: true,
  mtimes: true,
});
