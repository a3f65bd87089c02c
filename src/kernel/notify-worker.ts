// Worker-thread body of the notification writer (notify-thread.ts): writes each FUSE_NOTIFY_*
// message to /dev/fuse with one blocking write. The kernel may sleep inside that write until a
// request we are still answering releases a lock (an inode's pages, a directory's i_rwsem), so
// it must never run on the main thread, which has to stay free to send that answer.
// Messages: {id, buf: ArrayBuffer} in; {id, result: 'ok' | errno code} out.
import { writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { fd } = workerData as { fd: number };
const port = parentPort;
if (!port) throw new Error('notify-worker must run as a worker thread');

port.on('message', (m: { id: number; buf: ArrayBuffer }) => {
  let result: string = 'ok';
  try {
    writeSync(fd, Buffer.from(m.buf));
  } catch (err) {
    result = (err as NodeJS.ErrnoException).code ?? 'EIO';
  }
  port.postMessage({ id: m.id, result });
});
