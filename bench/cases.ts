/**
 * The cases of `npm run bench`: each connection type of the paper has a native variant (where a native
 * connection exists) and a Boxer variant (run only once the data-path probe succeeded; otherwise reported as
 * "not measured" with the probe's reason). plan() turns them into a list of bounded tasks (one per
 * repetition) so that index.ts can show progress; finish() turns the collected values into CaseResults.
 * With `--only`, plan() keeps the tasks selected by prefix and finish() reports only their cases.
 *
 * The measurements live beside it: network.ts (throughput, latency, connect()), aggregate.ts (k senders),
 * costs.ts (agent CPU per setup, idle agent, package size; with their cases), lambda.ts, apps-plan.ts/apps.ts.
 */
import { benchJoin, JOIN_WORKERS } from './join';
import { planLambda } from './lambda';
import type { CaseResult, Variant } from './results';
import type { Mode, Runner } from './runner';
import { ecdf, median, summarize, type Summary } from './stats';
import type { Series } from './svg';
import { planApps } from './apps-plan';
import { AGG_BOXER_SENDERS, AGG_NATIVE_SENDERS, measureAggregate } from './aggregate';
import { planIdle, planJoinLab, planMemberChange, planPackage, planSetupCpu } from './costs';
import { connectLatency, connectLatencyBinary, iperf, latency } from './network';
import { planSetup } from './setup';

export interface Config {
  quick: boolean;
  tputReps: number;
  tputSeconds: number;
  /** Connection types whose throughput is also measured in reverse (-R); undefined: all of them. */
  tputReverse?: string[];
  latReps: number;
  rttN: number;
  ttfbN: number;
  aggSenders: number[];
  aggReps: number;
  aggSeconds: number;
  joinSizes: number[];
  joinReps: number;
  /** Connections per repetition of the setup-CPU cases (figures are scaled to SETUP_PER). */
  setupN: number;
  setupReps: number;
  connectN: number;
  connectReps: number;
  idleSeconds: number;
  /** The application experiments (bench/apps.ts): static repetitions and seconds of load; burst phases (s). */
  appsReps: number;
  appsSeconds: number;
  burst: { reps: number; before: number; during: number; after: number };
}

/**
 * Quick mode (`--quick`) is a smoke test of every group in under two minutes, lab included (90 s measured on
 * the shared 2-core machine, with another lab busy beside it): one short repetition of everything, aggregate
 * at 1 and 32 senders, and reverse throughput only for one connection type, function-to-function (each
 * throughput task costs ~2.5 s there, mostly the two agents' start).
 */
const QUICK_REVERSE = ['fn-to-fn'];

export function config(quick: boolean): Config {
  return quick
    ? { quick, tputReps: 1, tputSeconds: 1, tputReverse: QUICK_REVERSE, latReps: 1, rttN: 300, ttfbN: 100, aggSenders: [1, 32], aggReps: 1, aggSeconds: 1, joinSizes: [8, 64], joinReps: 1, setupN: 200, setupReps: 1, connectN: 300, connectReps: 1, idleSeconds: 2, appsReps: 1, appsSeconds: 2, burst: { reps: 1, before: 3, during: 6, after: 3 } }
    : { quick, tputReps: 3, tputSeconds: 5, latReps: 3, rttN: 1000, ttfbN: 1000, aggSenders: [1, 2, 4, 8, 16, 32], aggReps: 2, aggSeconds: 4, joinSizes: [8, 64, 256, 1000], joinReps: 3, setupN: 1000, setupReps: 3, connectN: 1000, connectReps: 3, idleSeconds: 10, appsReps: 3, appsSeconds: 5, burst: { reps: 2, before: 5, during: 15, after: 5 } };
}

export interface ConnType {
  id: string;
  label: string;
  client: string;
  server: string;
  /** Whether a native connection exists this way (nothing connects into a function natively). */
  native: boolean;
  /** For Boxer-only types: the native types to compare with. */
  baselines: string[];
  metrics: Array<'throughput' | 'rtt' | 'ttfb'>;
}

const ALL: ConnType['metrics'] = ['throughput', 'rtt', 'ttfb'];
export const CONN_TYPES: ConnType[] = [
  { id: 'fn-to-fn', label: 'function-to-function', client: 'fp', server: 'fsa', native: false, baselines: ['fn-to-vm', 'vm-to-vm'], metrics: ALL },
  { id: 'vm-to-fn', label: 'VM-to-function', client: 'vm1', server: 'fp', native: false, baselines: ['fn-to-vm'], metrics: ALL },
  { id: 'fn-to-vm', label: 'function-to-VM', client: 'fp', server: 'vm1', native: true, baselines: [], metrics: ALL },
  { id: 'vm-to-vm', label: 'VM-to-VM', client: 'vm1', server: 'vm2', native: true, baselines: [], metrics: ALL },
  { id: 'fn-to-fn-hairpin', label: 'function-to-function, same NAT, no LAN (relayed)', client: 'fsa', server: 'fsb', native: false, baselines: ['fn-to-vm'], metrics: ['throughput'] },
  { id: 'fn-to-fn-translating', label: 'function-to-function, translating NAT', client: 'fta', server: 'fp', native: false, baselines: ['fn-to-vm'], metrics: ['throughput'] },
  { id: 'fn-to-fn-lan', label: 'function-to-function, shared LAN', client: 'fla', server: 'flb', native: false, baselines: ['fn-to-vm'], metrics: ['throughput'] },
  { id: 'fn-to-fn-relay', label: 'function-to-function through the relay (random NAT)', client: 'fr', server: 'fp', native: false, baselines: ['fn-to-vm'], metrics: ['throughput'] },
];

export interface Task {
  label: string;
  /** The group of its cases (`--only` matches it, the label and the ids by prefix). */
  group: string;
  /** The cases it measures. */
  ids: string[];
  run: () => Promise<void>;
}

/** Whether a task or case with these keys (group, id(s), label) is selected by `--only` prefixes (none: all). */
export function selected(only: readonly string[] | undefined, keys: readonly string[]): boolean {
  return !only?.length || only.some((p) => keys.some((k) => k.startsWith(p)));
}

export interface Acc {
  c: Omit<CaseResult, 'native' | 'boxer'>;
  modes: Partial<Record<Mode, { values: number[]; distribution: boolean; errors: string[]; notMeasured?: string; over: string; summary?: Summary; note?: string; series?: Series[] }>>;
}

export class Bench {
  private readonly acc = new Map<string, Acc>();
  readonly tasks: Task[] = [];

  constructor(
    readonly cfg: Config,
    readonly runner: Runner,
    readonly boxer: { available: boolean; reason: string },
    /** `--only` prefixes: plan() keeps the tasks they select, finish() the cases those tasks measure. */
    readonly only: readonly string[] = [],
  ) {}

  /** Every case group defined by plan(), in order. */
  groups(): string[] {
    return [...new Set([...this.acc.values()].map((a) => a.c.group))];
  }

  /** A case and its variants (`boxerReason`: '' measured without the data-path probe, else why not measured). */
  define(c: Acc['c'], modes: Mode[], over: Partial<Record<Mode, string>>, distribution = false, boxerReason?: string): Acc {
    const a: Acc = { c, modes: {} };
    for (const m of modes) {
      const slot: NonNullable<Acc['modes'][Mode]> = { values: [], distribution, errors: [], over: over[m] ?? '' };
      if (m === 'boxer' && !this.boxer.available) slot.notMeasured = `Boxer data path not available: ${this.boxer.reason}`;
      if (m === 'boxer' && boxerReason !== undefined) slot.notMeasured = boxerReason === '' ? undefined : boxerReason;
      a.modes[m] = slot;
    }
    this.acc.set(c.id, a);
    return a;
  }

  /** Adds a task per repetition for each variant that can run. */
  addTasks(a: Acc, reps: number, label: (m: Mode, rep: number) => string, measure: (m: Mode) => Promise<number[] | number>): void {
    for (let rep = 1; rep <= reps; rep++) {
      for (const m of ['native', 'boxer'] as const) {
        const slot = a.modes[m];
        if (!slot || slot.notMeasured) continue;
        this.tasks.push({
          label: label(m, rep),
          group: a.c.group,
          ids: [a.c.id],
          run: async () => {
            try {
              const v = await measure(m);
              slot.values.push(...(Array.isArray(v) ? v : [v]));
            } catch (e) {
              slot.errors.push((e as Error).message.replace(/\s+/g, ' ').slice(0, 300));
            }
          },
        });
      }
    }
  }

  /** Defines every case and the tasks that measure them (with `--only`, the selected tasks). */
  plan(): void {
    this.planConnTypes();
    this.planOutside();
    this.planAggregate();
    this.planConnect();
    planSetup(this);
    this.planMembership();
    planJoinLab(this);
    planMemberChange(this);
    planPackage(this);
    planLambda(this);
    planIdle(this);
    planSetupCpu(this);
    planApps(this);

    if (this.only.length) {
      const keep = this.tasks.filter((t) => selected(this.only, [t.group, t.label, ...t.ids]));
      this.tasks.splice(0, this.tasks.length, ...keep);
    }
  }

  /** Throughput, RTT and TTFB of each connection type of the paper. */
  private planConnTypes(): void {
    const cfg = this.cfg;
    for (const t of CONN_TYPES) {
      const modes: Mode[] = t.native ? ['native', 'boxer'] : ['boxer'];
      const baselines = t.native ? undefined : t.baselines;
      if (t.metrics.includes('throughput')) {
        for (const dir of ['forward', 'reverse'] as const) {
          if (dir === 'reverse' && cfg.tputReverse && !cfg.tputReverse.includes(t.id)) continue;
          const over = `${cfg.tputReps} iperf3 runs of ${cfg.tputSeconds} s`;
          const a = this.define(
            { id: `throughput/${t.id}/${dir}`, group: 'throughput', title: `${t.label} (${t.client} → ${t.server}), ${dir}`, unit: 'Mbit/s', better: 'higher', baselines: baselines?.map((b) => `throughput/${b}/${dir}`) },
            modes,
            { native: over, boxer: over },
          );
          this.addTasks(a, cfg.tputReps, (m, rep) => `throughput ${t.id} ${dir} ${m}, rep ${rep}/${cfg.tputReps}`, (m) => iperf(this.runner, m, t.client, t.server, dir === 'reverse', cfg.tputSeconds));
        }
      }
      if (t.metrics.includes('rtt')) {
        const over = `${cfg.latReps}×${cfg.rttN} round trips of 1 KiB, one TCP_NODELAY connection each`;
        const a = this.define(
          { id: `rtt/${t.id}`, group: 'rtt', title: `${t.label} (${t.client} → ${t.server})`, unit: 'us', better: 'lower', baselines: baselines?.map((b) => `rtt/${b}`) },
          modes,
          { native: over, boxer: over },
          true,
        );
        this.addTasks(a, cfg.latReps, (m, rep) => `rtt ${t.id} ${m}, rep ${rep}/${cfg.latReps}`, (m) => latency(this.runner, this.cfg, m, 'rtt', t.client, t.server));
      }
      if (t.metrics.includes('ttfb')) {
        const over = `${cfg.latReps}×${cfg.ttfbN} connections (connect, 1 byte back, close)`;
        const a = this.define(
          { id: `ttfb/${t.id}`, group: 'ttfb', title: `${t.label} (${t.client} → ${t.server})`, unit: 'us', better: 'lower', baselines: baselines?.map((b) => `ttfb/${b}`) },
          modes,
          { native: over, boxer: over },
          true,
        );
        this.addTasks(a, cfg.latReps, (m, rep) => `ttfb ${t.id} ${m}, rep ${rep}/${cfg.latReps}`, (m) => latency(this.runner, this.cfg, m, 'ttfb', t.client, t.server));
      }
    }
  }

  /** Clients outside the network (not members). */
  private planOutside(): void {
    const cfg = this.cfg;
    // the lab's `seed` host, natively, to a server on vm1 that runs
    // natively or under Boxer. Under Boxer the server's accept() must not wait for a member's announcement.
    const outTitle = 'outside client to a VM (seed host → vm1, the client no member)';
    {
      const over = `${cfg.tputReps} iperf3 runs of ${cfg.tputSeconds} s`;
      const a = this.define({ id: 'throughput/outside-to-vm/forward', group: 'throughput', title: `${outTitle}, forward`, unit: 'Mbit/s', better: 'higher' }, ['native', 'boxer'], { native: over, boxer: over });
      this.addTasks(a, cfg.tputReps, (m, rep) => `throughput outside-to-vm ${m}, rep ${rep}/${cfg.tputReps}`, (m) => iperf(this.runner, m, 'seed', 'vm1', false, cfg.tputSeconds, 'native'));
    }
    {
      const over = `${cfg.latReps}×${cfg.ttfbN} connections (connect, 1 byte back, close)`;
      const a = this.define({ id: 'ttfb/outside-to-vm', group: 'ttfb', title: outTitle, unit: 'us', better: 'lower' }, ['native', 'boxer'], { native: over, boxer: over }, true);
      this.addTasks(a, cfg.latReps, (m, rep) => `ttfb outside-to-vm ${m}, rep ${rep}/${cfg.latReps}`, (m) => latency(this.runner, this.cfg, m, 'ttfb', 'seed', 'vm1', 'native'));
    }
  }

  /** k senders at once into one node (aggregate.ts). */
  private planAggregate(): void {
    const cfg = this.cfg;
    for (const k of cfg.aggSenders) {
      const fns = (n: number) => `${n} function${n > 1 ? 's' : ''}`;
      const over = `${cfg.aggReps} run${cfg.aggReps > 1 ? 's' : ''}, ${cfg.aggSeconds} s window of the receiver's rx_bytes once all ${k} stream${k > 1 ? 's' : ''} were established`;
      const a = this.define(
        {
          id: `aggregate/${k}`,
          group: 'aggregate',
          title: `${k} sender${k > 1 ? 's' : ''} (native: into vm1 from ${fns(Math.min(k, AGG_NATIVE_SENDERS.length))}; Boxer: into fp from ${fns(Math.min(k, AGG_BOXER_SENDERS.length))})`,
          unit: 'Mbit/s',
          better: 'higher',
        },
        ['native', 'boxer'],
        { native: over, boxer: over },
      );
      this.addTasks(a, cfg.aggReps, (m, rep) => `aggregate ${k} sender${k > 1 ? 's' : ''} ${m}, rep ${rep}/${cfg.aggReps}`, (m) =>
        measureAggregate(this.runner, m, m === 'native' ? 'vm1' : 'fp', m === 'native' ? AGG_NATIVE_SENDERS : AGG_BOXER_SENDERS, k, cfg.aggSeconds),
      );
    }
  }

  /** Time inside a non-blocking connect(). */
  private planConnect(): void {
    const cfg = this.cfg;
    const cl = connectLatencyBinary();
    const ca = this.define({ id: 'connect/vm-to-vm', group: 'connect', title: 'time inside a non-blocking connect() (p50; vm1 → vm2)', unit: 'us', better: 'lower' }, ['native', 'boxer'], {
      native: `${cfg.connectReps}×${cfg.connectN} calls (connect_latency)`,
      boxer: `${cfg.connectReps}×${cfg.connectN} calls under the shim`,
    });
    if (!cl) for (const m of ['native', 'boxer'] as const) ca.modes[m]!.notMeasured = 'native/out/connect_latency is not built (npm run build:native)';
    else this.addTasks(ca, cfg.connectReps, (m, rep) => `connect() latency ${m}, rep ${rep}/${cfg.connectReps}`, (m) => connectLatency(this.runner, this.cfg, m, cl, ca));
  }

  /** The control plane's joins (bench/join.ts): barrier, the seed's CPU, messages and bytes per join, an agent's start. */
  private planMembership(): void {
    const cfg = this.cfg;
    for (const n of cfg.joinSizes) {
      const where = `${n} agents (in ${Math.min(JOIN_WORKERS, n)} worker processes, the seed in the bench's; loopback)`;
      const barrier = this.define({ id: `membership/barrier/${n}`, group: 'membership', title: `${where}: go → barrier release`, unit: 'ms', better: 'lower' }, ['boxer'], { boxer: `${cfg.joinReps} runs (bench/join.ts)` }, false, '');
      const seedCpu = this.define({ id: `membership/seed-cpu/${n}`, group: 'membership', title: `${n} agents: the seed's CPU per join`, unit: 'ms', better: 'lower' }, ['boxer'], { boxer: `${cfg.joinReps} runs (bench/join.ts)` }, false, '');
      const msgs = this.define({ id: `membership/messages/${n}`, group: 'membership', title: `${n} agents: control messages per join`, unit: 'messages', better: 'lower' }, ['boxer'], { boxer: 'median of the runs' }, false, '');
      const bytes = this.define({ id: `membership/bytes/${n}`, group: 'membership', title: `${n} agents: control bytes per join`, unit: 'bytes', better: 'lower' }, ['boxer'], { boxer: 'median of the runs' }, false, '');
      const start = n === cfg.joinSizes[cfg.joinSizes.length - 1] ? this.define({ id: 'cost/agent-start', group: 'cost', title: 'one agent process (`boxer run`, loopback): start → joined', unit: 'ms', better: 'lower' }, ['boxer'], { boxer: `${cfg.joinReps} runs (bench/join.ts)` }, false, '') : undefined;
      this.tasks.push({
        label: `membership ${n} agents (${cfg.joinReps} run${cfg.joinReps > 1 ? 's' : ''})`,
        group: 'membership',
        ids: [barrier, seedCpu, msgs, bytes, start].flatMap((a) => (a ? [a.c.id] : [])),
        run: async () => {
          try {
            const j = (await benchJoin({ n, reps: cfg.joinReps })) as unknown as JoinResult;
            barrier.modes.boxer!.values.push(...j.runs.map((r) => r.ms));
            seedCpu.modes.boxer!.values.push(...j.runs.map((r) => r.seedCpuMs / n));
            const note = `load average ${j.loadAverage.toFixed(1)}; CPU over the barrier: seed ${Math.round(j.seedCpuMs)} ms, agents ${Math.round(j.agentsCpuMs)} ms (medians)`;
            barrier.modes.boxer!.note = seedCpu.modes.boxer!.note = note;
            msgs.modes.boxer!.values.push(j.messagesPerJoin);
            bytes.modes.boxer!.values.push(j.bytesPerJoin);
            if (start) setFromJoin(start, j.agentStartToJoinedMs);
          } catch (e) {
            for (const a of [barrier, seedCpu, msgs, bytes, start]) a?.modes.boxer!.errors.push((e as Error).message.slice(0, 300));
          }
        },
      });
    }
  }

  /** The results, in plan order (with `--only`: the cases of the selected tasks, and selected placeholders). */
  finish(): CaseResult[] {
    const out: CaseResult[] = [];
    const ran = new Set(this.tasks.flatMap((t) => t.ids));
    for (const a of this.acc.values()) {
      if (this.only.length && !ran.has(a.c.id) && !selected(this.only, [a.c.group, a.c.id])) continue;
      const c: CaseResult = { ...a.c };
      if (!c.baselines) delete c.baselines;
      for (const m of ['native', 'boxer'] as const) {
        const s = a.modes[m];
        if (!s) continue;
        c[m] = variantOf(s, c.id);
      }
      out.push(c);
    }
    return out;
  }
}

function variantOf(s: NonNullable<Acc['modes'][Mode]>, id: string): Variant {
  if (s.notMeasured !== undefined && s.notMeasured !== '') return { status: 'not measured', reason: s.notMeasured };
  if (s.summary) return { status: 'measured', summary: s.summary, over: s.over, ...(s.note ? { note: s.note } : {}) };
  if (!s.values.length) return { status: 'not measured', reason: s.errors.length ? `failed: ${s.errors[0]}` : 'no values' };
  let summary = summarize(s.values);
  const p99s = (s as { p99s?: number[] }).p99s;
  if (id.startsWith('connect/') && p99s?.length) summary = { ...summary, p99: median(p99s) };
  const v: Variant = { status: 'measured', summary, over: s.over, ...(s.series ? { series: s.series } : {}) };
  const notes = [s.note, s.errors.length ? `${s.errors.length} repetition(s) failed: ${s.errors[0]}` : undefined].filter(Boolean);
  if (notes.length) v.note = notes.join('; ');
  if (s.distribution) v.ecdf = ecdf(s.values, 200);
  return v;
}

interface JoinFigure {
  median: number;
  spread: string;
}
interface JoinResult {
  runs: { ms: number; seedCpuMs: number; agentsCpuMs: number }[];
  seedCpuMs: number;
  agentsCpuMs: number;
  loadAverage: number;
  barrierMs: JoinFigure;
  messagesPerJoin: number;
  bytesPerJoin: number;
  agentStartToJoinedMs: JoinFigure;
  agentRssMb: JoinFigure;
}

/** bench/join.ts reports a median and a "min–max" spread; keep them (the other statistics are unknown). */
function setFromJoin(a: Acc, f: JoinFigure): void {
  const [min, max] = f.spread.split('–').map(Number);
  a.modes.boxer!.summary = { n: NaN, mean: NaN, median: f.median, min, max, p25: NaN, p75: NaN, p99: NaN, spreadPct: f.median ? ((max - min) / f.median) * 100 : 0 };
}

