// Worker-thread body of the 'worker' reader (device.ts): a blocking read loop on /dev/fuse.
// Each request is copied into its own ArrayBuffer and transferred (not cloned) to the main
// thread. It ends on ENODEV (unmounted) or any other hard error, posting {end: code}.
import { readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { fd, bufferSize } = workerData as { fd: number; bufferSize: number };
const port = parentPort;
if (!port) throw new Error('device-worker must run as a worker thread');

const buf = Buffer.allocUnsafe(bufferSize);
for (;;) {
  let n: number;
  try {
    n = readSync(fd, buf, 0, bufferSize, null);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // EINTR/EAGAIN: retry. ENOENT: the request was interrupted before we read it; retry.
    if (code === 'EINTR' || code === 'EAGAIN' || code === 'ENOENT') continue;
    port.postMessage({ end: code });
    break;
  }
  if (n === 0) {
    port.postMessage({ end: undefined });
    break;
  }
  const ab = new ArrayBuffer(n);
  buf.copy(Buffer.from(ab), 0, 0, n);
  port.postMessage(ab, [ab]);
}
