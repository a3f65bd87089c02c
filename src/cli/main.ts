// The composition root: parses the command line, builds the pieces and runs them.
// Commands: `mount` (a remote, read-only), `demo` (the README's main job), `memfs` (an
// in-memory read-write filesystem, for trying the kernel layer) and `unmount`. Settings of
// `mount` and their precedence live in settings.ts. Exit codes: 0 clean unmount, 2 a usage or
// mount problem the user can fix (message on stderr), 1 anything else.
import { Command, Option } from 'commander';
import { createLogger, type LogLevelName } from '../observability/logger.js';
import { FuseServer } from '../kernel/fuse-server.js';
import { MemoryFs } from '../core/memory-fs.js';
import { fuseOpsFor } from '../bridge/fuse-adapter.js';
import { MountError, unmount } from '../kernel/mount.js';
import { runUntilStopped } from './run-mounted.js';
import { DEFAULT_DEMO_CACHE, runDemo } from './demo.js';
import { runMount } from './mount-command.js';
import { LOG_LEVELS, applyConfigFile, mountOptions, parseSeconds, parseSize } from './settings.js';
import { UsageError } from './usage-error.js';

export async function main(argv: string[]): Promise<void> {
  const program = new Command('fusestream')
    .description('Mount remote storage as a local directory, streamed on demand.')
    .showHelpAfterError()
    .exitOverride((err) => {
      // --help/--version exit 0; every bad flag, value or environment variable is a usage error.
      process.exit(err.exitCode === 0 ? 0 : 2);
    });

  const mountCmd = program
    .command('mount')
    .description('Mount a remote (http(s)://… or a local directory) read-only, in the foreground.\nSettings: flag > environment (FUSESTREAM_*) > config file > default.')
    .argument('<remote>', 'http(s)://host/path/ or a local directory')
    .argument('<mountpoint>', 'an existing empty directory');
  for (const opt of mountOptions()) mountCmd.addOption(opt);
  mountCmd.action(async (remote: string, mountpoint: string, o: MountFlags) => {
    const logger = createLogger({ level: o.logLevel });
    try {
      process.exitCode = await runMount({
        remote,
        mountpoint,
        cacheDir: o.cacheDir,
        cacheMaxSizeBytes: o.cacheMaxSize,
        deadlineSeconds: o.deadline,
        attrTtlSeconds: o.attrTtl,
        dirTtlSeconds: o.dirTtl,
        downloadConcurrency: o.downloadConcurrency,
        readAheadMaxBytes: o.readAheadMax,
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
        server = await FuseServer.start({ mountpoint, ops: fuseOpsFor(fs), logger, reader: o.reader, deadlineMs: o.deadline * 1000, allowOther: o.allowOther });
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

  // The config file is the lowest-precedence source: load it before commander parses flags
  // and environment on top of it.
  if (argv[2] === 'mount') {
    try {
      applyConfigFile(mountCmd, argv.slice(3));
    } catch (err) {
      fail(err);
    }
  }
  await program.parseAsync(argv);
}

/** The mount command's option values, after flags, environment and config file. */
export interface MountFlags {
  cacheDir: string;
  cacheMaxSize: number;
  deadline: number;
  attrTtl: number;
  dirTtl: number;
  downloadConcurrency: number;
  readAheadMax: number;
  logLevel: LogLevelName;
  allowOther: boolean;
  config?: string;
}

function fail(err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`fusestream: ${message}\n`);
  process.exit(err instanceof MountError || err instanceof UsageError ? 2 : 1);
}
