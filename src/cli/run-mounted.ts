// Runs a FuseServer in the foreground until SIGINT/SIGTERM/SIGHUP or until the kernel side goes
// away, then shuts down in order (fuse-server.ts) and resolves with the exit code. Signals that
// arrive during shutdown are logged and otherwise ignored: we never exit while still mounted.
import { Deferred } from '../base/async.js';
import type { Logger } from '../observability/logger.js';
import type { FuseServer } from '../kernel/fuse-server.js';

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export async function runUntilStopped(server: FuseServer, logger: Logger): Promise<number> {
  const stop = new Deferred<string>();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (!stop.resolve(sig)) logger.warn({ signal: sig }, 'already unmounting; waiting for it to finish');
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  void server.ended.then(() => stop.resolve('the kernel ended the session'));
  try {
    const why = await stop.promise;
    logger.info({ why, mountpoint: server.mountpoint }, 'unmounting');
    await server.unmount();
    logger.info({ mountpoint: server.mountpoint }, 'unmounted');
    return 0;
  } catch (err) {
    logger.error({ err }, 'shutdown failed');
    return 1;
  } finally {
    for (const s of SIGNALS) process.off(s, onSignal);
  }
}
