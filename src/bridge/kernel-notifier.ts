// KernelNotifier: the core's KernelCache served by a FUSE session's notifications. The core
// calls it from anywhere (a poll, a write's completion); this queues, coalesces and sends off
// the request path.
//
// Invariants:
// - Calls only queue (synchronously); a flush runs one macrotask later, so every invalidation
//   of one poll round or one handler goes out once (duplicates coalesced by key), never from
//   inside a request handler's synchronous step.
// - The session writes each notification from its own thread (kernel/notify-thread.ts); here
//   they are awaited in a TaskGroup, so close() waits for what is in flight and nothing floats.
// - Counters say what was sent and what the kernel did not take, for status and tests.
import { TaskGroup } from '../base/async.js';
import type { Ino } from '../base/ids.js';
import type { Logger } from '../observability/logger.js';
import type { FuseSession } from '../kernel/session/session.js';
import type { KernelCache } from '../core/filesystem.js';

type Pending = { kind: 'inode'; ino: Ino } | { kind: 'entry'; parent: Ino; name: string };

export class KernelNotifier implements KernelCache {
  readonly #session: FuseSession;
  readonly #log: Logger;
  readonly #tasks: TaskGroup;
  readonly #queue = new Map<string, Pending>();
  #scheduled = false;
  sent = 0;
  notDelivered = 0;

  constructor(session: FuseSession, log: Logger) {
    this.#session = session;
    this.#log = log;
    this.#tasks = new TaskGroup((err) => this.#log.error({ err }, 'kernel notification failed'));
    session.prepareNotifications();
  }

  invalidateInode(ino: Ino): void {
    this.#add(`i:${ino}`, { kind: 'inode', ino });
  }

  invalidateEntry(parent: Ino, name: string): void {
    this.#add(`e:${parent}/${name}`, { kind: 'entry', parent, name });
  }

  /** Resolves when everything queued so far has been sent (for tests). */
  async flushed(): Promise<void> {
    while (this.#queue.size > 0 || this.#tasks.size > 0) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      await this.#tasks.drain();
    }
  }

  async close(): Promise<void> {
    this.#queue.clear();
    await this.#tasks.close();
  }

  #add(key: string, p: Pending): void {
    if (this.#tasks.closed) return;
    this.#queue.set(key, p);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const batch = [...this.#queue.values()];
      this.#queue.clear();
      this.#tasks.run('kernel notifications', () => this.#send(batch));
    });
  }

  async #send(batch: readonly Pending[]): Promise<void> {
    for (const p of batch) {
      const ok = p.kind === 'inode' ? await this.#session.notifyInvalInode(p.ino) : await this.#session.notifyInvalEntry(p.parent, p.name);
      if (ok) this.sent++;
      else this.notDelivered++;
    }
  }
}
