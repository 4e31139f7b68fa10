/**
 * The paper's published numbers (its section 5), put beside ours in docs/benchmarks.md where a case
 * corresponds. Throughput: Table 2 (m5.large VMs, eu-west-3; Mbit/s, mean); RTT and TTFB: Table 3 (us);
 * aggregate: Figure 5; package size: section 4.
 */

export interface PaperFigure {
  mean?: number;
  median?: number;
}

export interface PaperEntry {
  native?: PaperFigure;
  boxer?: PaperFigure;
  source: string;
}

type ConnKey = 'fn-to-fn' | 'vm-to-fn' | 'fn-to-vm' | 'vm-to-vm';

/** Table 2, mean forward / reverse, Mbit/s. Native rows are the paper's "-native" connection types. */
const TPUT: Record<ConnKey, { boxer: [number, number]; native?: [number, number] }> = {
  'fn-to-fn': { boxer: [621.48, 621.44] },
  'vm-to-fn': { boxer: [622.98, 624.1] },
  'fn-to-vm': { boxer: [623.18, 621.78], native: [624.13, 622.39] },
  'vm-to-vm': { boxer: [4684.53, 4706.22], native: [4770.42, 4695.97] },
};

/** Table 3: RTT of 1 KiB messages and TTFB, mean and median, us. */
const T3: Record<ConnKey, { boxer: { rtt: PaperFigure; ttfb: PaperFigure }; native?: { rtt: PaperFigure; ttfb: PaperFigure } }> = {
  'fn-to-fn': { boxer: { rtt: { mean: 694.23, median: 758 }, ttfb: { mean: 2735.21, median: 2625 } } },
  'vm-to-fn': { boxer: { rtt: { mean: 547.84, median: 457 }, ttfb: { mean: 1981.38, median: 2153 } } },
  'fn-to-vm': {
    boxer: { rtt: { mean: 520.1, median: 436 }, ttfb: { mean: 2086.03, median: 2239 } },
    native: { rtt: { mean: 622.53, median: 686 }, ttfb: { mean: 1378.56, median: 1244 } },
  },
  'vm-to-vm': {
    boxer: { rtt: { mean: 193.69, median: 188 }, ttfb: { mean: 1067.24, median: 1034 } },
    native: { rtt: { mean: 197.62, median: 194 }, ttfb: { mean: 407.81, median: 345 } },
  },
};

export function paperFor(caseId: string): PaperEntry | undefined {
  const [group, conn, dir] = caseId.split('/');
  if (group === 'throughput' && conn in TPUT) {
    const t = TPUT[conn as ConnKey];
    const i = dir === 'reverse' ? 1 : 0;
    return { boxer: { mean: t.boxer[i] }, native: t.native ? { mean: t.native[i] } : undefined, source: 'Table 2 (Mbit/s, mean)' };
  }
  if ((group === 'rtt' || group === 'ttfb') && conn in T3) {
    const t = T3[conn as ConnKey];
    return { boxer: t.boxer[group], native: t.native?.[group], source: 'Table 3 (us)' };
  }
  if (caseId === 'cost/package') return { boxer: { median: 1.4 }, source: 'section 4 (MB added, compressed)' };
  return undefined;
}

/** Figure 5: aggregate receive throughput into one function, by number of sending functions (Mbit/s). */
export const PAPER_AGGREGATE = { maxMbps: 621.69, atSenders: 1, minMbps: 607.04, minAtSenders: 128, note: 'AWS Lambda ingress, 1 to 256 sending functions, under 3% degradation' };
/** Section 5.3: function-to-function TTFB 99.9th percentile. */
export const PAPER_FN_TO_FN_TTFB_P999_US = 20654;

/** Fig. 8 right (section 7): a burst absorbed by functions joining the service behind a VM front end, seconds. */
export const PAPER_BURST = { firstServedS: 8, absorbedS: 39 };
/** Fig. 8 left/centre: Boxer against native for the microservice application (throughput and p90 latency). */
export const PAPER_STATIC = { throughputRatio: 0.94, p90Ratio: 1.6 };
