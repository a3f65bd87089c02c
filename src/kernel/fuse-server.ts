// A mounted filesystem: mount + device + session, with an orderly, bounded shutdown.
// This is what the CLI and the mounted tests use; signals are the CLI's business.
//
// Shutdown order (unmount()):
//   1. stop: mark closing (new requests are still answered — the kernel decides what comes);
//   2. drain: wait up to `drainMs` for in-flight requests to finish;
//   3. abort: answer what is left with EIO and fire their signals;
//   4. unmount: fusermount3 -u, falling back to umount and lazy umount (mount.ts);
//   5. wait up to `endMs` for the device to report ENODEV; if it does not (a lazy unmount with
//      files still open), abort the connection through fusectl (only ours, by its minor);
//   6. close the device fd, wait (bounded) for handler promises, then ops.destroy().
// If the kernel side goes away first (someone ran fusermount3 -u), `ended` resolves and the
// owner should call unmount() to release the rest; it is idempotent.
import type { Logger } from '../observability/logger.js';
import { Errno } from '../base/errno.js';
import { within } from '../base/async.js';
import { openDevice, type FuseDevice, type ReaderKind } from './device.js';
import { abortConnection, mount, unmount as unmountPath, type MountOptions } from './mount.js';
import type { FuseOps, InitInfo } from './ops.js';
import { writeFileSync } from 'node:fs';
import type { Ino } from '../base/ids.js';
import type { InFlightInfo } from './session/in-flight.js';
import { FuseSession } from './session/session.js';

export interface FuseServerOptions {
  mountpoint: string;
  ops: FuseOps;
  logger: Logger;
  reader?: ReaderKind;
  /** Per-request deadline, ms (0 = none). */
  deadlineMs: number;
  fsName?: string;
  subtype?: string;
  allowOther?: boolean;
  readOnly?: boolean;
  defaultPermissions?: boolean;
  writebackCache?: boolean;
  autoInvalData?: boolean;
  maxReadahead?: number;
  /**
   * Sets the mount's kernel readahead (the bdi's read_ahead_kb) after INIT. The kernel default
   * of 128 KiB splits a sequential read into 128 KiB READs; 1024 makes them 1 MiB (the most a
   * READ carries with max_pages 256), measured 1.3-1.9x faster (RESEARCH.md). Best effort:
   * a failure is logged, the mount works with the default.
   */
  kernelReadAheadKb?: number;
  /** How long unmount waits for in-flight requests before aborting them. */
  drainMs?: number;
  /** How long unmount waits for the kernel to release the device. */
  endMs?: number;
  /** How long the mount may take to send INIT. */
  initTimeoutMs?: number;
  /** Log requests older than this (0 = off). Default: a quarter of the deadline, at least 1 s. */
  watchdogMs?: number;
  describeNode?: (ino: Ino) => string | undefined;
}

export class FuseServer {
  readonly session: FuseSession;
  readonly mountpoint: string;
  readonly connectionId: number;
  readonly init: InitInfo;
  readonly #device: FuseDevice;
  readonly #options: FuseServerOptions;
  readonly #log: Logger;
  #unmounting: Promise<void> | undefined;

  private constructor(session: FuseSession, device: FuseDevice, mountpoint: string, connectionId: number, init: InitInfo, options: FuseServerOptions) {
    this.session = session;
    this.#device = device;
    this.mountpoint = mountpoint;
    this.connectionId = connectionId;
    this.init = init;
    this.#options = options;
    this.#log = options.logger;
  }

  static async start(options: FuseServerOptions): Promise<FuseServer> {
    const mountOptions: MountOptions = {
      mountpoint: options.mountpoint,
      fsName: options.fsName ?? 'fusestream',
      subtype: options.subtype ?? 'fusestream',
      allowOther: options.allowOther ?? false,
      readOnly: options.readOnly ?? false,
      defaultPermissions: options.defaultPermissions ?? true,
      logger: options.logger,
    };
    const handle = await mount(mountOptions);
    const device = openDevice(handle.fd, options.reader ?? 'uvpipe', options.logger);
    const session = new FuseSession(device, {
      ops: options.ops,
      logger: options.logger,
      deadlineMs: options.deadlineMs,
      writebackCache: options.writebackCache ?? false,
      autoInvalData: options.autoInvalData ?? false,
      ...(options.maxReadahead === undefined ? {} : { maxReadahead: options.maxReadahead }),
      watchdogMs: options.watchdogMs ?? Math.max(1000, Math.floor(options.deadlineMs / 4)),
      ...(options.describeNode === undefined ? {} : { describeNode: options.describeNode }),
    });
    session.start();
    let init: InitInfo;
    try {
      init = await within(session.initialized, options.initTimeoutMs ?? 10_000, 'the kernel to send FUSE_INIT after mount');
    } catch (err) {
      device.close();
      await unmountPath(handle.mountpoint, { lazy: true, logger: options.logger }).catch(() => undefined);
      throw err;
    }
    if (options.kernelReadAheadKb !== undefined) setKernelReadAhead(handle.connectionId, options.kernelReadAheadKb, options.logger);
    return new FuseServer(session, device, handle.mountpoint, handle.connectionId, init, options);
  }

  /** Resolves when the kernel side ended (unmounted by anyone, or aborted). */
  get ended(): Promise<unknown> {
    return this.session.ended;
  }

  inFlight(): InFlightInfo[] {
    return this.session.inFlight();
  }

  unmount(): Promise<void> {
    this.#unmounting ??= this.#unmount();
    return this.#unmounting;
  }

  async #unmount(): Promise<void> {
    const drainMs = this.#options.drainMs ?? 2000;
    const endMs = this.#options.endMs ?? 3000;
    const log = this.#log;
    if (!this.session.isEnded) {
      const drained = await this.session.drained(drainMs);
      if (!drained) {
        log.warn({ inFlight: this.session.inFlight() }, 'requests still in flight at unmount; answering EIO');
        this.session.abortAll(Errno.EIO);
      }
      try {
        await unmountPath(this.mountpoint, { logger: log });
      } catch (err) {
        log.error({ err }, 'unmount failed; aborting the connection');
      }
      const ended = await within(this.session.ended, endMs, 'the kernel to release the fuse device').then(
        () => true,
        () => false,
      );
      if (!ended) {
        log.warn({ connection: this.connectionId }, 'device still busy after unmount; aborting our fuse connection');
        await abortConnection(this.connectionId).catch((err: unknown) => log.error({ err }, 'fuse connection abort failed'));
      }
    }
    this.#device.close();
    if (!(await this.session.settled(endMs))) {
      log.warn({ running: this.session.runningCount }, 'handlers still running after unmount');
    }
    try {
      await this.#options.ops.destroy?.();
    } catch (err) {
      log.error({ err }, 'filesystem destroy failed');
    }
  }
}

/**
 * Writes the readahead of the FUSE connection's bdi ("0:<minor>", FUSE mounts use anonymous
 * device numbers). Only sysfs is touched, never the mount itself.
 */
function setKernelReadAhead(connectionId: number, kb: number, log: Logger): void {
  const path = `/sys/class/bdi/0:${connectionId}/read_ahead_kb`;
  try {
    writeFileSync(path, `${kb}\n`);
  } catch (err) {
    log.warn({ err, path }, 'could not set the kernel readahead of the mount; sequential reads use the kernel default');
  }
}
