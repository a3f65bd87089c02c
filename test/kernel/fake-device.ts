// An in-memory FuseDevice and a few builders, to drive a FuseSession without a mount: tests
// push request bytes in with `send` and read the session's replies from `replies`.
// Also a recording logger, so tests can count log lines (ENOSYS once, EIO once...).
import { pino } from 'pino';
import type { Logger } from '../../src/observability/logger.js';
import * as abi from '../../src/kernel/abi.js';
import type { DeviceCallbacks, FuseDevice } from '../../src/kernel/device.js';
import { FuseSession, type SessionOptions } from '../../src/kernel/session/session.js';

/** One message the session wrote: struct fuse_out_header + payload. */
export interface Reply {
  unique: bigint;
  /** 0, a negative errno, or a notify code. */
  error: number;
  payload: Buffer;
}

export class FakeDevice implements FuseDevice {
  readonly fd = -1;
  readonly kind = 'uvpipe';
  readonly maxWrite = 61440;
  readonly replies: Reply[] = [];
  #callbacks: DeviceCallbacks | undefined;

  start(callbacks: DeviceCallbacks): void {
    this.#callbacks = callbacks;
  }

  write(chunks: readonly Buffer[]): 'ENOENT' | 'ENODEV' | undefined {
    const b = Buffer.concat(chunks);
    if (b.readUInt32LE(0) !== b.length) throw new Error(`out_header.len ${b.readUInt32LE(0)} != ${b.length} bytes written`);
    this.replies.push({ unique: b.readBigUInt64LE(8), error: b.readInt32LE(4), payload: b.subarray(abi.FUSE_OUT_HEADER_SIZE) });
    return undefined;
  }

  close(): void {}

  /** Delivers request bytes; with `release`, lent as the uvpipe reader lends a large request. */
  send(request: Buffer, release?: () => void): void {
    if (!this.#callbacks) throw new Error('session not started');
    this.#callbacks.onData(request, release);
  }

  /** The connection went away (as ENODEV after unmount). */
  end(): void {
    this.#callbacks?.onEnd(undefined);
  }

  /** Every reply written for `unique`. */
  repliesTo(unique: number | bigint): Reply[] {
    return this.replies.filter((r) => r.unique === BigInt(unique));
  }
}

/** struct fuse_in_header (40 bytes) followed by `body`. */
export function request(opcode: number, unique: number, nodeid: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(abi.FUSE_IN_HEADER_SIZE);
  h.writeUInt32LE(abi.FUSE_IN_HEADER_SIZE + body.length, 0); // len
  h.writeUInt32LE(opcode, 4); // opcode
  h.writeBigUInt64LE(BigInt(unique), 8); // unique
  h.writeBigUInt64LE(BigInt(nodeid), 16); // nodeid
  h.writeUInt32LE(1000, 24); // uid
  h.writeUInt32LE(1000, 28); // gid
  h.writeUInt32LE(4242, 32); // pid
  return Buffer.concat([h, body]);
}

/** struct fuse_init_in for 7.45 without INIT_EXT (16 bytes read; the rest left out). */
export function initRequest(unique = 1): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(7, 0); // major
  b.writeUInt32LE(45, 4); // minor
  b.writeUInt32LE(131072, 8); // max_readahead
  b.writeUInt32LE(Number(abi.FUSE_ASYNC_READ | abi.FUSE_MAX_PAGES), 12); // flags
  return request(abi.FUSE_INIT, unique, 0, b);
}

/** A NUL-terminated name, the LOOKUP/UNLINK/RMDIR body. */
export function nameBody(name: string): Buffer {
  return Buffer.from(`${name}\0`, 'utf8');
}

/** struct fuse_interrupt_in. */
export function interruptRequest(unique: number, target: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(target), 0); // interrupt_in.unique
  return request(abi.FUSE_INTERRUPT, unique, 0, b);
}

/** struct fuse_write_in (40 bytes) followed by `data`. */
export function writeBody(fh: number, offset: number, data: Buffer): Buffer {
  const b = Buffer.alloc(40);
  b.writeBigUInt64LE(BigInt(fh), 0); // write_in.fh
  b.writeBigUInt64LE(BigInt(offset), 8); // write_in.offset
  b.writeUInt32LE(data.length, 16); // write_in.size
  b.writeUInt32LE(0, 20); // write_in.write_flags
  b.writeBigUInt64LE(0n, 24); // write_in.lock_owner
  b.writeUInt32LE(0, 32); // write_in.flags
  // 36: padding
  return Buffer.concat([b, data]);
}

/** struct fuse_getattr_in with no fh. */
export function getattrBody(): Buffer {
  return Buffer.alloc(16);
}

export interface LogRecord {
  level: number;
  msg: string;
  err?: { message?: string; stack?: string };
  [key: string]: unknown;
}

/** A synchronous pino logger that keeps every record (level numbers: 30 info, 40 warn, 50 error). */
export function recordingLogger(): { logger: Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const sink = {
    write(line: string): void {
      records.push(JSON.parse(line) as LogRecord);
    },
  };
  return { logger: pino({ level: 'trace' }, sink), records };
}

/** A started session over a FakeDevice, INIT already answered unless `init: false`. */
export function startSession(
  options: Partial<SessionOptions> & Pick<SessionOptions, 'ops'>,
  { init = true }: { init?: boolean } = {},
): { session: FuseSession; device: FakeDevice; records: LogRecord[] } {
  const { logger, records } = recordingLogger();
  const device = new FakeDevice();
  const session = new FuseSession(device, { logger, deadlineMs: 0, ...options });
  session.start();
  if (init) device.send(initRequest(1));
  return { session, device, records };
}
