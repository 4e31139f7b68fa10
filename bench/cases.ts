/**
 * The cases of `npm run bench`: each connection type of the paper has a native variant (where a native
 * connection exists) and a Boxer variant (run only once the data-path probe succeeded; otherwise reported as
 * "not measured" with the probe's reason). plan() turns them into a list of bounded tasks (one per
 * repetition) so that index.ts can show progress; finish() turns the collected values into CaseResults.
 * With `--only`, plan() keeps the tasks selected by prefix and finish() reports only their cases.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchJoin } from './join';
import { benchLambda, LAMBDA_NODES } from './lambda';
import { dependencyClosure } from '../src/lambda/package';
import type { CaseResult, Variant } from './results';
import { HOST, Mode, NETBENCH, PY, ROOT, Runner, BOXER, sleep, type Group } from './runner';
import { ecdf, median, summarize, type Summary } from './stats';
import type { Series } from './svg';
import { planApps } from './apps-plan';

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
    : { quick, tputReps: 3, tputSeconds: 5, latReps: 3, rttN: 1000, ttfbN: 1000, aggSenders: [1, 2, 4, 8, 16, 32], aggReps: 2, aggSeconds: 4, joinSizes: [8, 32, 64, 128, 256], joinReps: 3, setupN: 1000, setupReps: 3, connectN: 1000, connectReps: 3, idleSeconds: 10, appsReps: 3, appsSeconds: 5, burst: { reps: 2, before: 5, during: 15, after: 5 } };
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

/**
 * The aggregate case. All k streams must be established within AGG_READY_MAX_S of the clients' launch (under
 * Boxer up to 8 agents join at once on two cores, then clients may be refused a few times until the server's
 * agent has learnt of the listeners); the window opens AGG_SETTLE_S later (slow start of the last streams).
 */
const AGG_READY_MAX_S = 30;
const AGG_SETTLE_S = 1;
/** iperf3 clients run this much longer than the latest possible window end (they are stopped after it). */
const AGG_TAIL_S = 2;
/** A refused connect is retried this many times, this far apart (the listener may not be known yet). */
export const AGG_CONNECT_TRIES = 20;
export const AGG_RETRY_PAUSE_S = 0.5;
/** iperf3's control connection setup gives up after this (a connect that hangs is retried like a refusal). */
const AGG_CONNECT_TIMEOUT_MS = 5000;
/** Extra seconds the process groups' `timeout` allows beyond the clients' own bound. */
const AGG_GROUP_MARGIN_S = 10;
/** The receiving node's servers must all listen within this. */
const AGG_LISTEN_MAX_MS = 20_000;
/** How often `ss` is polled while waiting for listeners and connections. */
const AGG_POLL_MS = 200;
/** An outside client's server under Boxer (agent start, join) must listen within this. */
const OUTSIDE_LISTEN_MAX_MS = 30_000;
/** Function nodes sending into vm1 (native) and into fp (Boxer) in the aggregate case. */
const AGG_NATIVE_SENDERS = ['fp', 'fsa', 'fsb', 'fr', 'fta', 'ftb', 'fla', 'flb'];
const AGG_BOXER_SENDERS = ['fsa', 'fsb', 'fr', 'fta', 'ftb', 'fla', 'flb'];

/**
 * Agent CPU during connection setups: a pair whose connections the agents set up directly (two VMs), and a
 * punched function-to-function pair (both agents take part in every connection). Figures are per SETUP_PER
 * connections; each repetition runs cfg.setupN of them.
 */
const SETUP_PAIRS = [
  { id: 'vm-to-vm', label: 'VM-to-VM, direct', client: 'vm1', server: 'vm2' },
  { id: 'fn-to-fn', label: 'function-to-function, punched', client: 'fp', server: 'fsa' },
] as const;
const SETUP_PER = 1000;
/** The client member waits this long after resolving the server before the first reading (join traffic done). */
const SETUP_QUIET_S = 1;
/** Bound on the n connections (netbench's MAX_S) and on the server's life. */
const SETUP_MAX_S = 90;
/** Bound on a member's start: join, resolve, the server's "ready", the client's "start". */
const SETUP_START_MAX_S = 30;
/** The client member idles this long after its connections, so that it is alive at the second reading. */
const SETUP_HOLD_S = 10;

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

  /** Boxer on Lambda in the lab (bench/lambda.ts): invoke → joined per function, cold and warm; the zip's size. */
  private planLambda(): void {
    const over = `${LAMBDA_NODES.length} functions, one per NAT kind (${LAMBDA_NODES.join(', ')})`;
    const title = (how: string) => `Lambda in the lab: asynchronous Invoke accepted → member joined, ${how}`;
    const cold = this.define({ id: 'lambda/invoke-to-joined/cold', group: 'lambda', title: title('new execution environment (cold start)'), unit: 'ms', better: 'lower' }, ['boxer'], { boxer: over }, true, '');
    const warm = this.define({ id: 'lambda/invoke-to-joined/warm', group: 'lambda', title: title('reused execution environment (warm)'), unit: 'ms', better: 'lower' }, ['boxer'], { boxer: over }, true, '');
    const zip = this.define({ id: 'cost/lambda-package', group: 'lambda', title: 'the zip of `boxer lambda package` (Boxer alone)', unit: 'MB', better: 'lower' }, ['boxer'], { boxer: 'one build' }, false, '');
    this.tasks.push({
      label: `lambda: package, deploy, 2 runs of ${LAMBDA_NODES.length} functions`,
      group: 'lambda',
      ids: [cold.c.id, warm.c.id, zip.c.id],
      run: async () => {
        try {
          const r = await benchLambda(this.runner.lab);
          const note = (xs: { node: string; ms: number; envMs: number }[]) => xs.map((x) => `${x.node} ${Math.round(x.ms)} ms (environment ${Math.round(x.envMs)})`).join(', ');
          cold.modes.boxer!.values.push(...r.cold.map((x) => x.ms));
          cold.modes.boxer!.note = note(r.cold);
          warm.modes.boxer!.values.push(...r.warm.map((x) => x.ms));
          warm.modes.boxer!.note = note(r.warm);
          zip.modes.boxer!.values.push(r.packageBytes / 1e6);
          zip.modes.boxer!.note = r.packageSummary;
        } catch (e) {
          for (const a of [cold, warm, zip]) a.modes.boxer!.errors.push((e as Error).message.replace(/\s+/g, ' ').slice(0, 300));
        }
      },
    });
  }

  /** Adds a task per repetition for each variant that can run. */
  private addTasks(a: Acc, reps: number, label: (m: Mode, rep: number) => string, measure: (m: Mode) => Promise<number[] | number>): void {
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

  plan(): void {
    const cfg = this.cfg;
    const r = this.runner;
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
          this.addTasks(a, cfg.tputReps, (m, rep) => `throughput ${t.id} ${dir} ${m}, rep ${rep}/${cfg.tputReps}`, (m) => this.iperf(m, t.client, t.server, dir === 'reverse', cfg.tputSeconds));
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
        this.addTasks(a, cfg.latReps, (m, rep) => `rtt ${t.id} ${m}, rep ${rep}/${cfg.latReps}`, (m) => this.latency(m, 'rtt', t.client, t.server));
      }
      if (t.metrics.includes('ttfb')) {
        const over = `${cfg.latReps}×${cfg.ttfbN} connections (connect, 1 byte back, close)`;
        const a = this.define(
          { id: `ttfb/${t.id}`, group: 'ttfb', title: `${t.label} (${t.client} → ${t.server})`, unit: 'us', better: 'lower', baselines: baselines?.map((b) => `ttfb/${b}`) },
          modes,
          { native: over, boxer: over },
          true,
        );
        this.addTasks(a, cfg.latReps, (m, rep) => `ttfb ${t.id} ${m}, rep ${rep}/${cfg.latReps}`, (m) => this.latency(m, 'ttfb', t.client, t.server));
      }
    }

    // Clients outside the network (not members): the lab's `seed` host, natively, to a server on vm1 that runs
    // natively or under Boxer. Under Boxer the server's accept() must not wait for a member's announcement.
    const outTitle = 'outside client to a VM (seed host → vm1, the client no member)';
    {
      const over = `${cfg.tputReps} iperf3 runs of ${cfg.tputSeconds} s`;
      const a = this.define({ id: 'throughput/outside-to-vm/forward', group: 'throughput', title: `${outTitle}, forward`, unit: 'Mbit/s', better: 'higher' }, ['native', 'boxer'], { native: over, boxer: over });
      this.addTasks(a, cfg.tputReps, (m, rep) => `throughput outside-to-vm ${m}, rep ${rep}/${cfg.tputReps}`, (m) => this.iperf(m, 'seed', 'vm1', false, cfg.tputSeconds, 'native'));
    }
    {
      const over = `${cfg.latReps}×${cfg.ttfbN} connections (connect, 1 byte back, close)`;
      const a = this.define({ id: 'ttfb/outside-to-vm', group: 'ttfb', title: outTitle, unit: 'us', better: 'lower' }, ['native', 'boxer'], { native: over, boxer: over }, true);
      this.addTasks(a, cfg.latReps, (m, rep) => `ttfb outside-to-vm ${m}, rep ${rep}/${cfg.latReps}`, (m) => this.latency(m, 'ttfb', 'seed', 'vm1', 'native'));
    }

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
        this.aggregate(m, m === 'native' ? 'vm1' : 'fp', m === 'native' ? AGG_NATIVE_SENDERS : AGG_BOXER_SENDERS, k, cfg.aggSeconds),
      );
    }

    const cl = connectLatencyBinary();
    const ca = this.define({ id: 'connect/vm-to-vm', group: 'connect', title: 'time inside a non-blocking connect() (p50; vm1 → vm2)', unit: 'us', better: 'lower' }, ['native', 'boxer'], {
      native: `${cfg.connectReps}×${cfg.connectN} calls (connect_latency)`,
      boxer: `${cfg.connectReps}×${cfg.connectN} calls under the shim`,
    });
    if (!cl) for (const m of ['native', 'boxer'] as const) ca.modes[m]!.notMeasured = 'native/out/connect_latency is not built (npm run build:native)';
    else this.addTasks(ca, cfg.connectReps, (m, rep) => `connect() latency ${m}, rep ${rep}/${cfg.connectReps}`, (m) => this.connectLatency(m, cl, ca));

    for (const n of cfg.joinSizes) {
      const barrier = this.define({ id: `membership/barrier/${n}`, group: 'membership', title: `${n} agents (one process, loopback): last start → barrier release`, unit: 'ms', better: 'lower' }, ['boxer'], { boxer: `${cfg.joinReps} runs (bench/join.ts)` }, false, '');
      const msgs = this.define({ id: `membership/messages/${n}`, group: 'membership', title: `${n} agents: control messages per join`, unit: 'messages', better: 'lower' }, ['boxer'], { boxer: 'median of the runs' }, false, '');
      const bytes = this.define({ id: `membership/bytes/${n}`, group: 'membership', title: `${n} agents: control bytes per join`, unit: 'bytes', better: 'lower' }, ['boxer'], { boxer: 'median of the runs' }, false, '');
      const start = n === cfg.joinSizes[cfg.joinSizes.length - 1] ? this.define({ id: 'cost/agent-start', group: 'cost', title: 'one agent process (`boxer run`, loopback): start → joined', unit: 'ms', better: 'lower' }, ['boxer'], { boxer: `${cfg.joinReps} runs (bench/join.ts)` }, false, '') : undefined;
      this.tasks.push({
        label: `membership ${n} agents (${cfg.joinReps} run${cfg.joinReps > 1 ? 's' : ''})`,
        group: 'membership',
        ids: [barrier, msgs, bytes, start].flatMap((a) => (a ? [a.c.id] : [])),
        run: async () => {
          try {
            const j = (await benchJoin({ n, reps: cfg.joinReps })) as unknown as JoinResult;
            setFromJoin(barrier, j.barrierMs);
            msgs.modes.boxer!.values.push(j.messagesPerJoin);
            bytes.modes.boxer!.values.push(j.bytesPerJoin);
            if (start) setFromJoin(start, j.agentStartToJoinedMs);
          } catch (e) {
            for (const a of [barrier, msgs, bytes, start]) a?.modes.boxer!.errors.push((e as Error).message.slice(0, 300));
          }
        },
      });
    }

    const pkg = this.define({ id: 'cost/package', group: 'cost', title: 'deployable package (agent, shim, addon, production node_modules; tar+gzip)', unit: 'MB', better: 'lower' }, ['boxer'], { boxer: 'one measurement' }, false, '');
    this.tasks.push({
      label: 'agent package size',
      group: 'cost',
      ids: [pkg.c.id],
      run: async () => {
        try {
          const p = packageSize();
          pkg.modes.boxer!.values.push(p.totalBytes / 1e6);
          pkg.modes.boxer!.note = p.parts.map((x) => `${x.name} ${(x.gz / 1e6).toFixed(2)} MB (${(x.raw / 1e6).toFixed(1)} MB unpacked)`).join('; ');
        } catch (e) {
          pkg.modes.boxer!.errors.push((e as Error).message.slice(0, 300));
        }
      },
    });
    this.planLambda();
    const rss = this.define({ id: 'cost/idle-rss', group: 'cost', title: 'resident memory of an idle agent (`boxer run -- sleep`, on vm1)', unit: 'MB', better: 'lower' }, ['boxer'], { boxer: 'one agent' }, false, '');
    const cpu = this.define({ id: 'cost/idle-cpu', group: 'cost', title: `CPU of an idle agent over ${cfg.idleSeconds} s`, unit: '% of a core', better: 'lower' }, ['boxer'], { boxer: 'one agent' }, false, '');
    this.tasks.push({
      label: `idle agent (${cfg.idleSeconds} s)`,
      group: 'cost',
      ids: [rss.c.id, cpu.c.id],
      run: async () => {
        try {
          const v = await this.idleAgent(cfg.idleSeconds);
          rss.modes.boxer!.values.push(v.rssMb);
          cpu.modes.boxer!.values.push(v.cpuPct);
        } catch (e) {
          for (const a of [rss, cpu]) a.modes.boxer!.errors.push((e as Error).message.slice(0, 300));
        }
      },
    });
    for (const p of SETUP_PAIRS) {
      const over = `${cfg.setupReps}×${cfg.setupN} connections (netbench ttfb), utime+stime of the agent's process${cfg.setupN !== SETUP_PER ? `, scaled to ${SETUP_PER}` : ''}`;
      const reason = this.boxer.available ? '' : `needs the Boxer data path, not available: ${this.boxer.reason}`;
      const side = (s: 'client' | 'server') =>
        this.define(
          { id: `cost/setup-cpu/${p.id}/${s}`, group: 'cost', title: `agent CPU per ${SETUP_PER} connection setups, ${p.label}: the ${s === 'client' ? `client's (${p.client})` : `server's (${p.server})`} agent`, unit: 'ms', better: 'lower' },
          ['boxer'],
          { boxer: over },
          false,
          reason,
        );
      const cs = side('client');
      const ss = side('server');
      if (!this.boxer.available) continue;
      const took: number[] = [];
      const p50s: number[] = [];
      for (let rep = 1; rep <= cfg.setupReps; rep++) {
        this.tasks.push({
          label: `setup CPU ${p.id} (${cfg.setupN} connections), rep ${rep}/${cfg.setupReps}`,
          group: 'cost',
          ids: [cs.c.id, ss.c.id],
          run: async () => {
            try {
              const v = await this.setupCpu(p.client, p.server, cfg.setupN);
              cs.modes.boxer!.values.push(v.clientMs * (SETUP_PER / cfg.setupN));
              ss.modes.boxer!.values.push(v.serverMs * (SETUP_PER / cfg.setupN));
              took.push(v.seconds);
              p50s.push(v.p50Us);
              const note = `the ${cfg.setupN} connections took ${num3(median(took))} s (TTFB p50 ${num3(median(p50s))} us; median of the runs), the agent's idle CPU over that time included`;
              cs.modes.boxer!.note = ss.modes.boxer!.note = note;
            } catch (e) {
              for (const a of [cs, ss]) a.modes.boxer!.errors.push((e as Error).message.replace(/\s+/g, ' ').slice(0, 300));
            }
          },
        });
      }
    }

    planApps(this);

    if (this.only.length) {
      const keep = this.tasks.filter((t) => selected(this.only, [t.group, t.label, ...t.ids]));
      this.tasks.splice(0, this.tasks.length, ...keep);
    }
  }

  /** A native client of a Boxer server (an outside client) does not wait for it by name: wait until it listens. */
  private async ready(m: Mode, clientMode: Mode, server: string, port: number): Promise<void> {
    if (m !== clientMode) await this.runner.waitListening(server, port, OUTSIDE_LISTEN_MAX_MS);
  }

  private async iperf(m: Mode, client: string, server: string, reverse: boolean, seconds: number, clientMode: Mode = m): Promise<number> {
    const port = this.runner.nextPort();
    const srv = await this.runner.server(m, server, ['iperf3', '-s', '-1', '-p', String(port)], port, seconds + 30);
    try {
      await this.ready(m, clientMode, server, port);
      const args = ['iperf3', '-c', HOST, '-p', String(port), '-t', String(seconds), '-J', ...(reverse ? ['-R'] : []), ...(seconds >= 5 ? ['-O', '1'] : [])];
      const out = await this.runner.client(clientMode, client, args, { node: server, name: srv.name }, (seconds + 25) * 1000);
      return parseIperf(out);
    } finally {
      await srv.stop();
    }
  }

  private async latency(m: Mode, kind: 'rtt' | 'ttfb', client: string, server: string, clientMode: Mode = m): Promise<number[]> {
    const port = this.runner.nextPort();
    const maxS = 90;
    const srv = await this.runner.server(m, server, [PY, NETBENCH, kind === 'rtt' ? 'serve-echo' : 'serve-byte', String(port), String(maxS)], port, maxS);
    try {
      await this.ready(m, clientMode, server, port);
      const args = kind === 'rtt' ? [PY, NETBENCH, 'rtt', HOST, String(port), String(this.cfg.rttN), '1024', '60'] : [PY, NETBENCH, 'ttfb', HOST, String(port), String(this.cfg.ttfbN), '60'];
      const out = await this.runner.client(clientMode, client, args, { node: server, name: srv.name }, 80_000);
      const r = JSON.parse(out.trim().split('\n').pop() ?? '') as { us: number[]; errors: number; truncated: boolean };
      if (r.errors || r.truncated) throw new Error(`${kind}: ${r.errors} errors${r.truncated ? ', stopped at the time limit' : ''} (${r.us.length} samples)`);
      return r.us;
    } finally {
      await srv.stop();
    }
  }

  /**
   * k iperf3 clients at once into k iperf3 servers on `into`, shaped the same in both variants: one process
   * group on the receiving node runs all k servers, one process group per sending node runs that node's
   * share of the clients (under Boxer each group is one `boxer run` member, so at most 8 agents however many
   * senders: the figure is the network's, not the agents' start-up). The figure is what the receiver's eth0
   * took in during a window of `seconds` that opens AGG_SETTLE_S after all k streams are established (2k
   * iperf3 sockets, control and data, on the receiver), and it only counts if they are all still there when
   * the window closes. The groups are stopped right after the window.
   */
  private async aggregate(m: Mode, into: string, senders: string[], k: number, seconds: number): Promise<number> {
    const r = this.runner;
    const lab = r.lab;
    const ports = r.nextPorts(k);
    const clientS = AGG_READY_MAX_S + AGG_SETTLE_S + seconds + AGG_TAIL_S;
    const groupMaxS = clientS + AGG_CONNECT_TRIES * AGG_RETRY_PAUSE_S + AGG_GROUP_MARGIN_S;
    const rx = async () => {
      const x = await lab.exec(into, 'cat', ['/sys/class/net/eth0/statistics/rx_bytes'], { timeoutMs: 5000 });
      const v = Number(x.stdout.trim());
      if (!Number.isFinite(v) || x.code !== 0) throw new Error(`cannot read rx_bytes on ${into}: ${x.stderr.trim()}`);
      return v;
    };
    const established = async () => {
      const x = await lab.exec(into, 'ss', ['-tnpH', 'state', 'established'], { timeoutMs: 5000, asRoot: true });
      if (x.code !== 0) throw new Error(`ss on ${into} failed: ${x.stderr.trim()}`);
      return countIperfSockets(x.stdout);
    };
    const groups: Group[] = [];
    const failed = () => {
      const g = groups.find((x) => !x.running);
      return g ? `${g.name} on ${g.node} exited early: ${g.stderr().slice(-400) || 'no output'}` : undefined;
    };
    try {
      const srv = r.group(m, into, aggServerScript(ports), groupMaxS + AGG_GROUP_MARGIN_S, 'aggsrv');
      groups.push(srv);
      await this.waitListeners(into, ports, AGG_LISTEN_MAX_MS, failed);
      for (const [node, ps] of spreadPorts(ports, senders)) {
        const script = `${r.hostPrelude(m, { node: into, name: srv.name }, AGG_READY_MAX_S)}\n${aggClientScript(ps, clientS)}`;
        groups.push(r.group(m, node, script, groupMaxS, 'aggcli'));
      }
      const t0 = performance.now();
      const deadline = t0 + AGG_READY_MAX_S * 1000;
      let n = 0;
      for (;;) {
        const why = failed();
        if (why) throw new Error(why);
        n = await established();
        if (n >= 2 * k) break;
        if (performance.now() > deadline) throw new Error(`only ${n} of ${2 * k} iperf3 sockets established on ${into} after ${AGG_READY_MAX_S} s`);
        await sleep(AGG_POLL_MS);
      }
      process.stderr.write(`  all ${k} stream${k > 1 ? 's' : ''} established after ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
      await sleep(AGG_SETTLE_S * 1000);
      const b0 = await rx();
      const w0 = performance.now();
      await sleep(seconds * 1000);
      const b1 = await rx();
      const w1 = performance.now();
      const after = await established();
      const why = failed();
      if (why) throw new Error(why);
      if (after < 2 * k) throw new Error(`only ${after} of ${2 * k} iperf3 sockets were still established on ${into} when the window closed`);
      return ((b1 - b0) * 8) / ((w1 - w0) / 1000) / 1e6;
    } finally {
      await Promise.all(groups.map((g) => g.stop()));
    }
  }

  /** Polls `ss` in the node until all the TCP ports listen (bounded); fails early if failed() says so. */
  private async waitListeners(node: string, ports: number[], timeoutMs: number, failed: () => string | undefined): Promise<void> {
    const lo = Math.min(...ports);
    const hi = Math.max(...ports);
    const deadline = performance.now() + timeoutMs;
    let n = 0;
    for (;;) {
      const why = failed();
      if (why) throw new Error(why);
      const x = await this.runner.lab.exec(node, 'ss', ['-ltnH', `( sport >= :${lo} and sport <= :${hi} )`], { timeoutMs: 5000 });
      n = x.stdout.split('\n').filter((l) => l.trim()).length;
      if (n >= ports.length) return;
      if (performance.now() > deadline) throw new Error(`only ${n} of ${ports.length} servers listen on ${node} after ${timeoutMs} ms`);
      await sleep(AGG_POLL_MS);
    }
  }

  private async connectLatency(m: Mode, bin: string, a: Acc): Promise<number> {
    const port = this.runner.nextPort();
    const srv = await this.runner.server(m, 'vm2', [PY, NETBENCH, 'serve-byte', String(port), '60'], port, 60);
    try {
      const out = await this.runner.client(m, 'vm1', [bin, HOST, String(port), String(this.cfg.connectN)], { node: 'vm2', name: srv.name }, 60_000);
      const x = /p50_us=([\d.]+) p99_us=([\d.]+) max_us=([\d.]+) errors=(\d+)/.exec(out);
      if (!x) throw new Error(`unexpected connect_latency output: ${out.trim().slice(0, 200)}`);
      if (Number(x[4]) > 0) throw new Error(`connect_latency: ${x[4]} connect() errors`);
      const slot = a.modes[m]!;
      (slot as { p99s?: number[] }).p99s = [...((slot as { p99s?: number[] }).p99s ?? []), Number(x[2])];
      return Number(x[1]);
    } finally {
      await srv.stop();
    }
  }

  /**
   * CPU time of both agents while a Boxer client on `client` makes n connections (connect, 1 byte back,
   * close) to a Boxer server on `server`. The client member resolves the server, stays quiet for
   * SETUP_QUIET_S (both agents have finished with its join), prints `start`, runs netbench ttfb (its JSON
   * line ends the measurement) and then idles until stopped, so that both agents are alive at both readings.
   */
  private async setupCpu(client: string, server: string, n: number): Promise<{ clientMs: number; serverMs: number; seconds: number; p50Us: number }> {
    const r = this.runner;
    await r.ensureSeed();
    const port = r.nextPort();
    const groups: Group[] = [];
    try {
      const srv = r.group('boxer', server, `exec ${PY} ${NETBENCH} serve-byte ${port} ${SETUP_MAX_S}`, SETUP_MAX_S + SETUP_HOLD_S + SETUP_START_MAX_S, 'cpusrv');
      groups.push(srv);
      await srv.waitLine((l) => l === 'ready', SETUP_START_MAX_S * 1000);
      const script = [
        r.hostPrelude('boxer', { node: server, name: srv.name }, SETUP_START_MAX_S),
        `sleep ${SETUP_QUIET_S}`,
        'echo start',
        `${PY} ${NETBENCH} ttfb "$H" ${port} ${n} ${SETUP_MAX_S} || exit $?`,
        `sleep ${SETUP_HOLD_S}`,
      ].join('\n');
      const cli = r.group('boxer', client, script, SETUP_MAX_S + SETUP_HOLD_S + SETUP_START_MAX_S, 'cpucli');
      groups.push(cli);
      await cli.waitLine((l) => l === 'start', SETUP_START_MAX_S * 1000);
      const pc = r.agentPid(cli);
      const ps = r.agentPid(srv);
      const c0 = cpuTicks(pc);
      const s0 = cpuTicks(ps);
      const t0 = performance.now();
      const line = await cli.waitLine((l) => l.startsWith('{'), (SETUP_MAX_S + SETUP_START_MAX_S) * 1000);
      const c1 = cpuTicks(pc);
      const s1 = cpuTicks(ps);
      const t1 = performance.now();
      const res = JSON.parse(line) as { us: number[]; errors: number; truncated: boolean; error?: string };
      if (res.errors || res.truncated || res.us.length !== n) throw new Error(`ttfb: ${res.us.length} of ${n} connections, ${res.errors} errors${res.truncated ? ', stopped at the time limit' : ''}${res.error ? ` (${res.error})` : ''}`);
      const ms = (ticks: number) => (ticks / clockTicks()) * 1000;
      return { clientMs: ms(c1 - c0), serverMs: ms(s1 - s0), seconds: (t1 - t0) / 1000, p50Us: median(res.us) };
    } finally {
      await Promise.all(groups.map((g) => g.stop()));
    }
  }

  private async idleAgent(seconds: number): Promise<{ rssMb: number; cpuPct: number }> {
    await this.runner.ensureSeed();
    const child = this.runner.spawnTracked('vm1', [process.execPath, BOXER, 'run', '--seed', this.runner.seedAddress(), '--name', 'idle-agent', '--', 'sleep', String(seconds + 30)]);
    try {
      const pid = child.pid;
      if (!pid) throw new Error('the agent did not start');
      // joined: the agent has started its command (sleep) as a child
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline && !childrenOf(pid).length) await sleep(100);
      if (!childrenOf(pid).length) throw new Error('the agent did not join within 15 s');
      await sleep(1000);
      const t0 = cpuTicks(pid);
      const w0 = Date.now();
      await sleep(seconds * 1000);
      const ticks = cpuTicks(pid) - t0;
      const wall = (Date.now() - w0) / 1000;
      const rss = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (!rss) throw new Error('no VmRSS');
      return { rssMb: Number(rss[1]) / 1024, cpuPct: (ticks / clockTicks() / wall) * 100 };
    } finally {
      child.kill('SIGTERM');
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

export function parseIperf(out: string): number {
  const start = out.indexOf('{');
  if (start < 0) throw new Error(`iperf3 printed no JSON: ${out.slice(0, 200)}`);
  const j = JSON.parse(out.slice(start)) as { error?: string; end?: { sum_received?: { bits_per_second?: number } } };
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  const bps = j.end?.sum_received?.bits_per_second;
  if (typeof bps !== 'number') throw new Error('iperf3 JSON without end.sum_received');
  return bps / 1e6;
}

/** Round-robin: port i goes to senders[i % senders.length]; only nodes with ports appear, in senders' order. */
export function spreadPorts(ports: readonly number[], senders: readonly string[]): Map<string, number[]> {
  if (!senders.length) throw new Error('spreadPorts: no senders');
  const out = new Map<string, number[]>();
  for (const s of senders.slice(0, ports.length)) out.set(s, []);
  ports.forEach((p, i) => out.get(senders[i % senders.length])!.push(p));
  return out;
}

/** sh: one one-off iperf3 server per port in the background, then wait for them all. */
export function aggServerScript(ports: readonly number[]): string {
  return `${ports.map((p) => `iperf3 -s -1 -p ${p} >/dev/null &`).join('\n')}\nwait`;
}

/**
 * sh (after $H is set): one iperf3 client of `seconds` per port, in the background; a refused (or timed-out)
 * connect is retried up to AGG_CONNECT_TRIES times AGG_RETRY_PAUSE_S apart, any other failure is reported
 * on stderr. Exits 0 only if every client succeeded.
 */
export function aggClientScript(ports: readonly number[], seconds: number): string {
  return [
    'c() {',
    '  i=0',
    `  while [ $i -lt ${AGG_CONNECT_TRIES} ]; do`,
    '    i=$((i + 1))',
    `    e=$(iperf3 -c "$H" -p "$1" -t ${Math.ceil(seconds)} --connect-timeout ${AGG_CONNECT_TIMEOUT_MS} 2>&1 >/dev/null) && return 0`,
    '    case $e in',
    `      *refused*|*"timed out"*) sleep ${AGG_RETRY_PAUSE_S} ;;`,
    '      *) echo "iperf3 -c $H -p $1: $e" >&2; return 1 ;;',
    '    esac',
    '  done',
    `  echo "iperf3 -c $H -p $1: still failing after ${AGG_CONNECT_TRIES} tries: $e" >&2`,
    '  return 1',
    '}',
    'pids=',
    ...ports.map((p) => `c ${p} & pids="$pids $!"`),
    'rc=0',
    'for p in $pids; do wait $p || rc=1; done',
    'exit $rc',
  ].join('\n');
}

/** The TCP sockets of iperf3 processes in `ss -tnpH` output. */
export function countIperfSockets(ss: string): number {
  return ss.split('\n').filter((l) => l.includes('(("iperf3"') || l.includes(',("iperf3"')).length;
}

function connectLatencyBinary(): string | undefined {
  return ['native/out/connect_latency', 'native/bench/connect_latency'].map((p) => path.join(ROOT, p)).find((p) => {
    try {
      return fs.statSync(p).isFile() && (fs.statSync(p).mode & 0o111) !== 0;
    } catch {
      return false;
    }
  });
}

function childrenOf(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Clock ticks per second of /proc/PID/stat's times (getconf CLK_TCK; 100 where it cannot say). */
let CLK_TCK: number | undefined;
function clockTicks(): number {
  CLK_TCK ??= Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  return CLK_TCK;
}

/** Three significant digits for notes. */
function num3(v: number): string {
  return Number.isFinite(v) ? String(Number(v.toPrecision(3))) : '–';
}

function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
}

/**
 * Production dependencies' directories, without ones inside another, and without the AWS SDK clients: those are
 * for `boxer lambda deploy/run/destroy` on the user's machine; a function gets the SDK from its runtime
 * (nodejs22.x), as `boxer lambda package` assumes.
 */
function productionModules(): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const names = Object.keys(pkg.dependencies ?? {}).filter((d) => !d.startsWith('@aws-sdk/'));
  const dirs = [...new Set(dependencyClosure(ROOT, names).values())].sort();
  return dirs.filter((d) => !dirs.some((o) => o !== d && d.startsWith(o + path.sep)));
}

function gzSize(files: string[]): { raw: number; gz: number } {
  const rel = files.map((f) => path.relative(ROOT, f));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-pkg-'));
  try {
    const list = path.join(tmp, 'files');
    fs.writeFileSync(list, rel.join('\n') + '\n');
    const tgz = path.join(tmp, 'p.tgz');
    execFileSync('tar', ['-czf', tgz, '-C', ROOT, '--exclude=*.map', '--exclude=*.ts', '-T', list], { timeout: 120_000 });
    const tar = path.join(tmp, 'p.tar');
    execFileSync('tar', ['-cf', tar, '-C', ROOT, '--exclude=*.map', '--exclude=*.ts', '-T', list], { timeout: 120_000 });
    return { raw: fs.statSync(tar).size, gz: fs.statSync(tgz).size };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export function packageSize(): { totalBytes: number; parts: { name: string; raw: number; gz: number }[] } {
  const glob = (dir: string, re: RegExp) => (fs.existsSync(path.join(ROOT, dir)) ? fs.readdirSync(path.join(ROOT, dir)).filter((f) => re.test(f)).map((f) => path.join(ROOT, dir, f)) : []);
  const groups: { name: string; files: string[] }[] = [
    { name: 'agent (dist/src, bin/boxer)', files: [path.join(ROOT, 'dist/src'), path.join(ROOT, 'bin/boxer')].filter((f) => fs.existsSync(f)) },
    { name: 'shim (native/out/*.so)', files: glob('native/out', /\.so$/) },
    { name: 'addon (native/build/Release/*.node, native/index.js)', files: [...glob('native/build/Release', /\.node$/), ...glob('native', /^index\.js$/)] },
    { name: 'production node_modules', files: productionModules() },
  ];
  const parts = groups.filter((g) => g.files.length).map((g) => ({ name: g.name, ...gzSize(g.files) }));
  const all = gzSize(groups.flatMap((g) => g.files));
  return { totalBytes: all.gz, parts };
}
