/**
 * Statistics of the benchmarks: percentiles (linear interpolation between closest ranks, as numpy's default),
 * a summary per variant (median and spread), and eCDF points for the plots. Pure; tested in test/unit/bench-harness.test.ts.
 */

export interface Summary {
  n: number;
  mean: number;
  median: number;
  min: number;
  max: number;
  p25: number;
  p75: number;
  p99: number;
  /** (max - min) / median, in percent: the spread of the repetitions relative to the median. */
  spreadPct: number;
}

export function sortedCopy(xs: readonly number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

/** The p-th percentile (0..100) of xs, interpolating linearly between closest ranks. NaN for no values. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  if (p < 0 || p > 100 || Number.isNaN(p)) throw new RangeError(`percentile ${p} is not in 0..100`);
  const s = sortedCopy(xs);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo] + (s[hi] - s[lo]) * (rank - lo);
}

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

export function summarize(xs: readonly number[]): Summary {
  if (xs.length === 0) throw new RangeError('cannot summarize no values');
  const s = sortedCopy(xs);
  const med = percentile(s, 50);
  const min = s[0];
  const max = s[s.length - 1];
  return {
    n: s.length,
    mean: mean(s),
    median: med,
    min,
    max,
    p25: percentile(s, 25),
    p75: percentile(s, 75),
    p99: percentile(s, 99),
    spreadPct: med !== 0 ? ((max - min) / Math.abs(med)) * 100 : 0,
  };
}

/**
 * Points of the empirical CDF: (x, fraction of values <= x) for the sorted values, at most maxPoints of them
 * (evenly spaced in rank, always keeping the smallest and the largest value).
 */
export function ecdf(xs: readonly number[], maxPoints = 200): [number, number][] {
  const s = sortedCopy(xs);
  const n = s.length;
  if (n === 0) return [];
  const pick = (i: number): [number, number] => [s[i], (i + 1) / n];
  if (n <= maxPoints) return s.map((_, i) => pick(i));
  const k = Math.max(2, maxPoints);
  const out: [number, number][] = [];
  for (let j = 0; j < k; j++) out.push(pick(Math.round((j * (n - 1)) / (k - 1))));
  return out;
}

/** A ratio a/b, or undefined when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return undefined;
  return a / b;
}
