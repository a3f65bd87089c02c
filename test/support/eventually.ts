// A bounded wait for a condition owned by another process (which no in-process gate can
// observe): checks `condition` every `everyMs` until it holds, or fails with a sentence naming
// what we waited for. Not for orchestrating overlaps inside one process: use gates there.
import { within } from '../../src/base/async.js';

export async function eventually(condition: () => boolean, ms: number, what: string, everyMs = 25): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await within(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (condition()) resolve();
          else timer = setTimeout(check, everyMs);
        };
        check();
      }),
      ms,
      what,
    );
  } finally {
    clearTimeout(timer);
  }
}
