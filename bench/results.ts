/**
 * The shape of bench/results.json, and `--compare`: the per-figure change between two results files.
 * Pure; tested in test/unit/bench-harness.test.ts.
 */
import type { Summary } from './stats';

export type VariantName = 'native' | 'boxer';

export interface Measured {
  status: 'measured';
  summary: Summary;
  /** What the summary is over: the repetitions' values, or the samples of one long run (rtt, ttfb). */
  over: string;
  /** eCDF points (x, F(x)) where a distribution is plotted. */
  ecdf?: [number, number][];
  /** Time series plotted beside the figure (the burst's throughput over time, per member). */
  series?: Array<{ name: string; points: [number, number][] }>;
  note?: string;
}

export interface NotMeasured {
  status: 'not measured';
  reason: string;
}

export type Variant = Measured | NotMeasured;

/** Whether a variant was measured (it has a summary). */
export const measured = (v?: Variant): v is Measured => v?.status === 'measured';

export interface CaseResult {
  id: string;
  /** Table the case belongs to: throughput, rtt, ttfb, aggregate, membership, cost, connect. */
  group: string;
  title: string;
  unit: string;
  /** Whether a higher value is better (throughput) or a lower one (latency, size, memory). */
  better: 'higher' | 'lower';
  native?: Variant;
  boxer?: Variant;
  /** For a Boxer variant without a native counterpart: the native cases (ids) to compare it with. */
  baselines?: string[];
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  kernel: string;
  node: string;
  memGiB: number;
  hostname: string;
}

export interface Results {
  version: 1;
  date: string;
  quick: boolean;
  /** `--only` prefixes of a partial run (absent: every case ran). */
  only?: string[];
  durationS: number;
  machine: MachineInfo;
  boxerDataPath: { available: boolean; reason: string };
  cases: CaseResult[];
}

export interface Figure {
  value: number;
  unit: string;
  better: 'higher' | 'lower';
}

/** Every measured number worth comparing, by a stable key: `<case id> <variant> median` (and p99 for distributions). */
export function flattenFigures(r: Pick<Results, 'cases'>): Map<string, Figure> {
  const out = new Map<string, Figure>();
  for (const c of r.cases) {
    for (const v of ['native', 'boxer'] as const) {
      const x = c[v];
      if (!x || x.status !== 'measured') continue;
      out.set(`${c.id} ${v} median`, { value: x.summary.median, unit: c.unit, better: c.better });
      if (x.ecdf) out.set(`${c.id} ${v} p99`, { value: x.summary.p99, unit: c.unit, better: c.better });
    }
  }
  return out;
}

export interface ComparisonRow {
  key: string;
  unit: string;
  old?: number;
  new?: number;
  /** (new - old) / old in percent. */
  changePct?: number;
  /** better / worse / same (within thresholdPct) / added / removed. */
  verdict: 'better' | 'worse' | 'same' | 'added' | 'removed';
}

export function compareResults(oldR: Pick<Results, 'cases'>, newR: Pick<Results, 'cases'>, thresholdPct = 5): ComparisonRow[] {
  const a = flattenFigures(oldR);
  const b = flattenFigures(newR);
  const keys = [...new Set([...a.keys(), ...b.keys()])];
  return keys.map((key) => {
    const o = a.get(key);
    const n = b.get(key);
    if (!o && n) return { key, unit: n.unit, new: n.value, verdict: 'added' };
    if (o && !n) return { key, unit: o.unit, old: o.value, verdict: 'removed' };
    const ov = o!.value;
    const nv = n!.value;
    const changePct = ov !== 0 ? ((nv - ov) / Math.abs(ov)) * 100 : nv === 0 ? 0 : Infinity;
    let verdict: ComparisonRow['verdict'] = 'same';
    if (Math.abs(changePct) > thresholdPct) verdict = (changePct > 0) === (n!.better === 'higher') ? 'better' : 'worse';
    return { key, unit: n!.unit, old: ov, new: nv, changePct, verdict };
  });
}

function num(v: number | undefined): string {
  if (v === undefined) return '-';
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
}

export function formatComparison(rows: readonly ComparisonRow[]): string {
  const w = Math.max(10, ...rows.map((r) => r.key.length));
  const lines = [`${'figure'.padEnd(w)}  ${'old'.padStart(10)}  ${'new'.padStart(10)}  unit      change`];
  for (const r of rows) {
    const ch = r.changePct === undefined ? '' : `${r.changePct >= 0 ? '+' : ''}${r.changePct.toFixed(1)}%`;
    lines.push(`${r.key.padEnd(w)}  ${num(r.old).padStart(10)}  ${num(r.new).padStart(10)}  ${r.unit.padEnd(8)}  ${ch.padStart(7)} ${r.verdict}`);
  }
  const worse = rows.filter((r) => r.verdict === 'worse').length;
  const better = rows.filter((r) => r.verdict === 'better').length;
  lines.push(`${rows.length} figures: ${better} better, ${worse} worse (beyond 5%), ${rows.length - better - worse} same/added/removed`);
  return lines.join('\n');
}

/**
 * A bound on one figure that `--compare` checks (the connection set-up figures of issue 15): `max` in the
 * case's unit, or, with `overNative`, the native variant's value plus `max`. Where a target of the issue is
 * met the bound is the target; where not yet, it is the level reached with room for a busy machine, so that
 * it does not slip back unnoticed (`target` says where it should get to).
 */
export interface Guard {
  id: string;
  stat: 'median' | 'p99';
  max: number;
  overNative?: boolean;
  target: string;
}

export const GUARDS: Guard[] = [
  // Not met yet (quick runs at load 6-7: 830 / 878 us, from 1361 / 3463): the level reached, with room.
  { id: 'ttfb/vm-to-fn', stat: 'median', max: 1500, target: '<= 800 us (then native + 100 us)' },
  { id: 'ttfb/fn-to-fn', stat: 'median', max: 1500, target: '<= 800 us (then native + 100 us)' },
  // Not met yet (431 us beside native 67 us): the VM's accept() waits for the client agent's announcement.
  { id: 'ttfb/fn-to-vm', stat: 'median', max: 600, overNative: true, target: '<= native + 100 us' },
  // Not met yet (11.5 ms at load 6-7, from 83 ms): two hops through the seed, on cold agents.
  { id: 'ttfb/first/fn-to-fn', stat: 'median', max: 20_000, target: '<= 5 ms' },
  { id: 'connect/vm-to-vm', stat: 'p99', max: 200, target: 'p99 < 200 us' },
  { id: 'connect/vm-to-fn', stat: 'p99', max: 200, target: 'p99 < 200 us' },
  // Not met: a relayed connect() still waits for the relay's port and the far side's answer (~3 ms p50).
  { id: 'connect/fn-to-fn-relay', stat: 'p99', max: 30_000, target: 'p99 < 200 us' },
  // Not met yet (500 and 700 ms per 1000 set-ups, from 850 and 1150).
  { id: 'cost/setup-cpu/fn-to-fn/client', stat: 'median', max: 450, target: '<= 200 ms per 1000 set-ups' },
  { id: 'cost/setup-cpu/fn-to-fn/server', stat: 'median', max: 720, target: '<= 300 ms per 1000 set-ups' },
  // Met: the SO_ERROR calls after a burst of concurrent connects read refusals locally (0.61 ms for 200).
  { id: 'connect/burst', stat: 'median', max: 5, target: 'as native (issue 14: a round trip each, +2.1 s at 1000)' },
  // The control plane (issue 15): joins and membership at scale. Reached at load average 2-3 on the shared
  // 2-core machine (join 152-165 ms; barrier 196 ms / 0.86 s / 4.7 s; 0.21 and 0.82 ms per change); at load 12
  // the barriers took 2-3x longer: the bounds not yet at their target keep that level with room.
  { id: 'membership/join/fp', stat: 'median', max: 350, target: '<= 350 ms (process start -> joined behind a NAT)' },
  { id: 'membership/join/fta', stat: 'median', max: 350, target: '<= 350 ms' },
  { id: 'membership/barrier/64', stat: 'median', max: 600, target: '<= 150 ms' },
  { id: 'membership/barrier/256', stat: 'median', max: 3_000, target: '<= 600 ms' },
  { id: 'membership/barrier/1000', stat: 'median', max: 20_000, target: '<= 3 s' },
  { id: 'cost/member-change-cpu/1000', stat: 'median', max: 1, target: '<= 1 ms' },
  { id: 'cost/member-change-cpu/1000/alone', stat: 'median', max: 1, target: '<= 1 ms' },
];

export interface GuardCheck {
  guard: Guard;
  value?: number;
  limit?: number;
  /** undefined: the figure (or its native baseline) was not measured in this run. */
  ok?: boolean;
}

export function checkGuards(r: Pick<Results, 'cases'>, guards: readonly Guard[] = GUARDS): GuardCheck[] {
  return guards.map((guard) => {
    const c = r.cases.find((x) => x.id === guard.id);
    const b = c?.boxer;
    if (!b || b.status !== 'measured') return { guard };
    const value = b.summary[guard.stat];
    let limit = guard.max;
    if (guard.overNative) {
      const n = c.native;
      if (!n || n.status !== 'measured') return { guard, value };
      limit += n.summary[guard.stat];
    }
    return { guard, value, limit, ok: value <= limit };
  });
}

export function formatGuards(checks: readonly GuardCheck[]): string {
  const lines = ['guards (bench/results.ts GUARDS):'];
  for (const x of checks) {
    const what = `${x.guard.id} boxer ${x.guard.stat}`.padEnd(44);
    if (x.ok === undefined) lines.push(`  ${what} not measured in this run`);
    else lines.push(`  ${what} ${num(x.value).padStart(8)} <= ${num(x.limit).padStart(8)}  ${x.ok ? 'ok' : 'BROKEN'}  (target ${x.guard.target})`);
  }
  const broken = checks.filter((x) => x.ok === false).length;
  lines.push(broken ? `${broken} guard(s) broken` : 'no guard broken');
  return lines.join('\n');
}
