// Temp files a put leaves while it writes (LocalRemote's `.fusestream-tmp-<pid>-…`, the WebDAV
// remote's `.fusestream-davtmp-<host>-<pid>-…`): whether the process that wrote one is gone,
// so a cleanup may remove it. One rule for every remote that names its temps by writer pid.

/**
 * True when the temp of writer `pid` (on this host) has no writer any more: the pid is not
 * alive, or it is this process and `ownedHere` says no put of ours is writing it.
 */
export function tempWriterGone(pid: number, ownedHere: boolean): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false; // not ours to judge
  if (pid === process.pid) return !ownedHere;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
