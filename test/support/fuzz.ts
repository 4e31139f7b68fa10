/**
 * Inputs for the fuzz tests: BOXER_FUZZ_N of them per parser (10,000 inside `npm test`; `npm run test:hostile`
 * runs 100,000), from a deterministic stream so that a failure can be replayed.
 */
export const N = Number(process.env.BOXER_FUZZ_N ?? 10_000);
/** N, written for test titles. */
export const n = N.toLocaleString('en');
/**
 * A deterministic stream (xorshift32), so that a failure can be replayed. Not `lcg % n`: the low bits of a
 * power-of-two linear congruential generator have tiny periods (its `% 4` repeats every 4 draws), which kept the
 * mutations to a few fixed patterns.
 */
let seed = 0x5eed;
export function rnd(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return Math.floor((seed / 2 ** 32) * n);
}
export function bytes(len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = rnd(256);
  return b;
}
/** A valid input with a few bits, bytes or its length changed. */
export function mutate(valid: Uint8Array): Uint8Array {
  const b = Uint8Array.from(valid);
  const k = 1 + rnd(4);
  for (let i = 0; i < k; i++) {
    const op = rnd(4);
    if (op === 0 && b.length) b[rnd(b.length)] ^= 1 << rnd(8);
    else if (op === 1 && b.length) b[rnd(b.length)] = rnd(256);
    else if (op === 2) return b.subarray(0, rnd(b.length + 1));
    else return Uint8Array.from([...b, ...bytes(rnd(16))]);
  }
  return b;
}
