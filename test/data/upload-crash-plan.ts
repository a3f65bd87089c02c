// The seeded write plan of the upload crash test, shared by the child that writes it and the
// test that picks kill points: a few files, some written several times (coalescing and
// rewrites during uploads), sizes from empty to a few hundred KiB, each version's bytes ramp
// data with its own seed.
export interface PlanStep {
  path: string;
  /** Ramp seed of this version's bytes. */
  seed: number;
  sizeBytes: number;
}

import { prng } from '../support/prng.js';

export { prng };

export function crashPlan(seed: number): PlanStep[] {
  const rnd = prng(seed);
  const files = 3 + Math.floor(rnd() * 4);
  const steps: PlanStep[] = [];
  const count = files + Math.floor(rnd() * 5);
  for (let i = 0; i < count; i++) {
    const f = i < files ? i : Math.floor(rnd() * files);
    const sizeBytes = rnd() < 0.1 ? 0 : Math.floor(rnd() * 400 * 1024);
    steps.push({ path: `f${f}.bin`, seed: seed * 1000 + i + 1, sizeBytes });
  }
  return steps;
}
