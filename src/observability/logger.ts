// The process logger: pino, asynchronous so a log line never blocks a request. Components
// take a `Logger` and make child loggers carrying their context ({req, op, ino, fh},
// {debugId}); nothing else writes to stdout/stderr for diagnostics.
import { pino, type Logger as PinoLogger, type LevelWithSilent } from 'pino';

export type Logger = PinoLogger;
export type LogLevelName = LevelWithSilent;

export interface LoggerOptions {
  level?: LogLevelName;
  /** Where to write; defaults to stderr (fd 2), so stdout stays free for command output. */
  fd?: number;
  /** Synchronous destination (tests that read their own output). */
  sync?: boolean;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = pino.destination({ fd: options.fd ?? 2, sync: options.sync ?? false, minLength: 0 });
  return pino(
    {
      level: options.level ?? 'info',
      base: { pid: process.pid },
      redact: { paths: ['password', 'secret', 'authorization', '*.authorization', '*.password'], censor: '[redacted]' },
    },
    destination,
  );
}

/** A logger that drops everything; for tests and library callers that pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
