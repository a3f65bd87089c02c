// The composition root: parses the command line, builds the pieces and runs them.
// Commands: `mount` (a remote: read-write where it can write, else read-only), `demo` (the README's main job), `memfs` (an
// in-memory read-write filesystem, for trying the kernel layer), `unmount`, and the control
// commands of a running mount: `status`, `invalidate`, `flush`. Settings of
// `mount` and `memfs` come from the one table in base/settings.ts; settings.ts turns it into
// options, environment variables, the config file and --help. Exit codes: 0 clean unmount,
// 2 a usage or mount problem the user can fix (message on stderr), 1 anything else.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { LOG_LEVELS, type Settings } from '../base/settings.js';
import { createLogger, type LogLevelName } from '../observability/logger.js';
import { MountError, unmount } from '../kernel/mount.js';
import { DEFAULT_DEMO_CACHE, runDemo } from './demo.js';
import { runMount } from './mount-command.js';
import { runMemfs } from './memfs-command.js';
import { runInvalidate, runStatus } from './status-command.js';
import { DEFAULT_FLUSH_TIMEOUT_S, parseFlushTimeout, runFlush } from './flush-command.js';
import { addSettingOptions, applyConfigFile, settingsFromOptions } from './settings.js';
import { DEFAULT_LOG_FILE_HELP, defaultLogFile, readyChannel, runDaemon } from './daemon.js';
import { UsageError } from './usage-error.js';

/** bin/fusestream.js: what a --daemon mount runs in the background. */
const CLI_SCRIPT = fileURLToPath(new URL('../../../bin/fusestream.js', import.meta.url));
/** A --daemon mount's start may take twice the deadline (listing the remote, opening the cache) and this much more. */
const DAEMON_START_SLACK_MS = 120_000;

/** The version in package.json (three levels above dist/src/cli/, in a checkout and installed alike). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command('fusestream')
    .description('Mount remote storage as a local directory, streamed on demand.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError()
    .exitOverride((err) => {
      // --help/--version exit 0; every bad flag, value or environment variable is a usage error.
      process.exit(err.exitCode === 0 ? 0 : 2);
    });

  const mountCmd = program
    .command('mount')
    .description('Mount a remote (http(s)://… read-only, webdav+http(s)://… or a local directory read-write) in the foreground.\nSettings: flag > environment (FUSESTREAM_*) > config file > default.')
    .argument('<remote>', 'http(s)://host/path/, webdav+https://[user@]host/path/ or a local directory')
    .argument('<mountpoint>', 'an existing empty directory');
  addSettingOptions(mountCmd, 'mount');
  mountCmd
    .option('--daemon', 'run in the background: return once the mount is ready (exit 0), or with the reason it is not (non-zero); the daemon logs to --log-file')
    .option('--log-file <file>', `with --daemon, append the daemon's output and log here (default: ${DEFAULT_LOG_FILE_HELP})`);
  mountCmd.action(async (remote: string, mountpoint: string, o: { daemon?: boolean; logFile?: string }, cmd: Command) => {
    let settings: Settings;
    try {
      settings = settingsFromOptions(cmd, 'mount');
    } catch (err) {
      fail(err);
    }
    if (o.daemon === true) {
      // The same command again, in the background, minus --daemon (its settings were checked above).
      const args = [CLI_SCRIPT, ...argv.slice(2).filter((a) => a !== '--daemon')];
      try {
        process.exitCode = await runDaemon({ args, logFile: o.logFile ?? defaultLogFile(mountpoint), readyMs: 2 * settings.deadlineMs + DAEMON_START_SLACK_MS });
      } catch (err) {
        fail(err);
      }
      return;
    }
    const ready = readyChannel(); // set when this process is the daemon of a --daemon mount
    const logger = createLogger({ level: settings.logLevel });
    try {
      process.exitCode = await runMount({ remote, mountpoint, settings, logger, ...(ready !== undefined ? { onMounted: (line: string) => ready.ready(line) } : {}) });
    } catch (err) {
      fail(err);
    }
    logger.flush();
  });

  const memfsCmd = program
    .command('memfs')
    .description('Mount the core over an in-memory remote, read-write (for trying and testing the whole stack), or the reference model.')
    .argument('<mountpoint>', 'an existing empty directory');
  addSettingOptions(memfsCmd, 'memfs');
  memfsCmd.action(async (mountpoint: string, _o: unknown, cmd: Command) => {
    let s: Settings;
    try {
      s = settingsFromOptions(cmd, 'memfs');
    } catch (err) {
      fail(err);
    }
    const logger = createLogger({ level: s.logLevel });
    try {
      process.exitCode = await runMemfs(mountpoint, s, logger);
    } catch (err) {
      fail(err);
    }
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
    .command('status')
    .description('What running mounts are doing: remote and its state, cache use, requests in flight, polling. With no mountpoint, every mount of this user.')
    .argument('[mountpoint]', 'a fusestream mountpoint')
    .option('--json', 'print the raw status as JSON (for scripts)', false)
    .action(async (mountpoint: string | undefined, o: { json: boolean }) => {
      try {
        process.exitCode = await runStatus(mountpoint, o.json);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('invalidate')
    .description('Make a running mount forget what it knows of PATHs (listings, attributes, the kernel\'s cached pages and names), so the next access asks the remote.')
    .argument('<mountpoint>', 'a fusestream mountpoint')
    .argument('<path...>', 'paths under the mountpoint (or relative to it)')
    .action(async (mountpoint: string, paths: string[]) => {
      try {
        process.exitCode = await runInvalidate(mountpoint, paths);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('flush')
    .description('Wait until every change of a running mount is on its remote (files being written are saved first), showing what is left.\nExit status: 0 all on the remote; 1 some still pending when the timeout passed (each is listed with its last error; they stay journaled); 2 no mount answers.')
    .argument('<mountpoint>', 'a fusestream mountpoint')
    .addOption(new Option('--timeout <seconds>', 'give up after this long').default(DEFAULT_FLUSH_TIMEOUT_S).argParser(parseFlushTimeout))
    .action(async (mountpoint: string, o: { timeout: number }) => {
      try {
        process.exitCode = await runFlush(mountpoint, o.timeout);
      } catch (err) {
        fail(err);
      }
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

function fail(err: unknown): never {
  const message = `${err instanceof Error ? err.message : String(err)}${nativeModuleHint(err)}`;
  const code = err instanceof MountError || err instanceof UsageError ? 2 : 1;
  process.stderr.write(`fusestream: ${message}\n`);
  readyChannel()?.failed(message, code); // a --daemon mount's parent relays it
  process.exit(code);
}

/**
 * The likeliest cause of a failure to open the store after an install: better-sqlite3's
 * native module was never built (its install script was skipped: --ignore-scripts, or
 * strict-allow-scripts without better-sqlite3 allowed) or was built for another Node.
 */
function nativeModuleHint(err: unknown): string {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (/bindings file|better_sqlite3\.node|NODE_MODULE_VERSION|invalid ELF header/.test(e.message)) {
      return `\n  (${e.message.split('\n')[0] ?? ''})\n  better-sqlite3's native module is missing or was built for another Node: build it in the directory fusestream is installed in with \`npm rebuild better-sqlite3\` (README, "Installing")`;
    }
  }
  return '';
}
