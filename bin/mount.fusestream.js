#!/usr/bin/env node
// mount(8)'s helper for `mount -t fuse.fusestream` and fstab lines (dist/src/cli/mount-helper.js);
// installed as mount.fusestream and mount.fuse.fusestream. Same thread-pool headroom as fusestream.
process.env.UV_THREADPOOL_SIZE ??= '16';
const { mountHelperMain } = await import('../dist/src/cli/mount-helper.js');
await mountHelperMain(process.argv);
