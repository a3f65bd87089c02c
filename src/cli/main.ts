// The composition root: parses the command line, builds the pieces and runs them.
// Commands: `memfs` (an in-memory read-write filesystem, for trying the kernel layer),
// `unmount`. The remote-backed `mount` command arrives with the data and core layers.
import { Command, InvalidArgumentError, Option } from 'commander';
import { createLogger, type LogLevelName } from '../observability/logger.js';
import { FuseServer } from '../kernel/fuse-server.js';
import { MemoryFs } from '../kernel/memory-fs.js';
import { MountError, unmount } from '../kernel/mount.js';
import { runUntilStopped } from './run-mounted.js';
import { DEFAULT_DEMO_CACHE, runDemo } from './demo.js';
import { UsageError, defaultCacheDir, runMount } from './mount-command.js';

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`"${v}" is not a size (examples: 4096, 512M, 10G)`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[(m[2] ?? '').toLowerCase()] ?? 1;
  return Math.floor(Number(m[1]) * unit);
}

function parseSeconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`"${v}" is not a number of seconds`);
  return n;
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command('fusestream')
    .description('Mount remote storage as a local directory, streamed on demand.')
    .showHelpAfterError()
    .exitOverride((err) => {
      process.exit(err.exitCode);
    });

  program
    .command('mount')
    .description('Mount a remote (http(s)://… or a local directory) read-only, in the foreground.')
    .argument('<remote>', 'http(s)://host/path/ or a local directory')
    .argument('<mountpoint>', 'an existing empty directory')
    .option('--cache-dir <dir>', 'where cached bytes and their catalogue live', defaultCacheDir())
    .option('--cache-max-size <size>', 'hard cap on cached bytes (e.g. 10G)', parseSize)
    .option('--deadline <seconds>', 'per-operation deadline: no syscall waits longer', parseSeconds, 30)
    .option('--attr-ttl <seconds>', 'how long attributes and names are trusted', parseSeconds, 10)
    .option('--dir-ttl <seconds>', 'how long a directory listing is reused', parseSeconds, 10)
    .option('--download-concurrency <n>', 'concurrent remote requests', (v) => Number.parseInt(v, 10))
    .option('--read-ahead-max <size>', 'largest read-ahead window per open file', parseSize)
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .option('--allow-other', 'let other users access the mount', false)
    .action(async (remote: string, mountpoint: string, o: { cacheDir: string; cacheMaxSize?: number; deadline: number; attrTtl: number; dirTtl: number; downloadConcurrency?: number; readAheadMax?: number; logLevel: LogLevelName; allowOther: boolean }) => {
      const logger = createLogger({ level: o.logLevel });
      try {
        process.exitCode = await runMount({
          remote,
          mountpoint,
          cacheDir: o.cacheDir,
          ...(o.cacheMaxSize === undefined ? {} : { cacheMaxSizeBytes: o.cacheMaxSize }),
          deadlineSeconds: o.deadline,
          attrTtlSeconds: o.attrTtl,
          dirTtlSeconds: o.dirTtl,
          ...(o.downloadConcurrency === undefined ? {} : { downloadConcurrency: o.downloadConcurrency }),
          ...(o.readAheadMax === undefined ? {} : { readAheadMaxBytes: o.readAheadMax }),
          allowOther: o.allowOther,
          logger,
        });
      } catch (err) {
        fail(err);
      }
      logger.flush();
    });

  program
    .command('memfs')
    .description('Mount an in-memory read-write filesystem (for trying and testing the FUSE layer).')
    .argument('<mountpoint>', 'an existing empty directory')
    .option('--ramp-file <size>', 'add /ramp.bin, a read-only generated file of this size', parseSize)
    .option('--files <count>', 'add /many/ with this many small files', (v) => Number.parseInt(v, 10))
    .option('--deadline <seconds>', 'per-request deadline', parseSeconds, 30)
    .addOption(new Option('--reader <kind>', '/dev/fuse reader design').choices(['uvpipe', 'worker']).default('uvpipe'))
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .option('--allow-other', 'let other users access the mount', false)
    .action(async (mountpoint: string, o: { rampFile?: number; files?: number; deadline: number; reader: 'uvpipe' | 'worker'; logLevel: LogLevelName; allowOther: boolean }) => {
      const logger = createLogger({ level: o.logLevel });
      const fs = new MemoryFs({ attrTtlMs: 1000, entryTtlMs: 1000 });
      if (o.rampFile !== undefined) fs.addFile('ramp.bin', { size: o.rampFile, generator: (off) => (off * 2654435761) >>> 24 });
      if (o.files !== undefined) {
        fs.addDir('many');
        for (let i = 0; i < o.files; i++) fs.addFile(`many/f${i}`, Buffer.from(`file ${i}\n`));
      }
      let server: FuseServer;
      try {
        server = await FuseServer.start({ mountpoint, ops: fs, logger, reader: o.reader, deadlineMs: o.deadline * 1000, allowOther: o.allowOther });
      } catch (err) {
        fail(err);
      }
      process.stdout.write(`mounted on ${server.mountpoint} (reader ${o.reader}); Ctrl-C unmounts\n`);
      process.exitCode = await runUntilStopped(server, logger);
      logger.flush();
    });

  program
    .command('demo')
    .description('Serve a generated dataset from an embedded HTTP server on 127.0.0.1, mount it on ./mnt and print what to try (Ctrl-C unmounts).')
    .option('--mountpoint <dir>', 'where to mount', 'mnt')
    .option('--cache-dir <dir>', 'the demo mount\'s cache', DEFAULT_DEMO_CACHE)
    .option('--tour', 'run a short tour of syscalls against the mount, then unmount and exit (default when CI=true)', process.env.CI === 'true')
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('warn'))
    .action(async (o: { mountpoint: string; cacheDir: string; tour: boolean; logLevel: LogLevelName }) => {
      const logger = createLogger({ level: o.logLevel });
      try {
        process.exitCode = await runDemo({ mountpoint: o.mountpoint, cacheDir: o.cacheDir, tour: o.tour, logger });
      } catch (err) {
        fail(err);
      }
      logger.flush();
    });

  program
    .command('unmount')
    .description('Unmount a fusestream mountpoint.')
    .argument('<mountpoint>')
    .action(async (mountpoint: string) => {
      try {
        await unmount(mountpoint);
      } catch (err) {
        fail(err);
      }
    });

  await program.parseAsync(argv);
}

function fail(err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`fusestream: ${message}\n`);
  process.exit(err instanceof MountError || err instanceof UsageError ? 2 : 1);
}
