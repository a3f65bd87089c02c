// A bounded wait for a condition owned by another process (which no in-process gate can
// observe): checks `condition` every `everyMs` until it holds, or fails with a sentence naming
// what we waited for. Not for orchestrating overlaps inside one process: use gates there.
import { within } from '../../src/base/async.js';

export async function eventually(condition: () => boolean | Promise<boolean>, ms: number, what: string, everyMs = 25): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  try {
    await within(
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (stopped) return;
          Promise.resolve(condition()).then(
            (ok) => {
              if (ok) resolve();
              else if (!stopped) timer = setTimeout(check, everyMs);
            },
            reject,
          );
        };
        check();
      }),
      ms,
      what,
    );
  } finally {
    stopped = true;
    clearTimeout(timer);
  }
}
