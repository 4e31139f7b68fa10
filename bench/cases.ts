/**
 * The cases of `npm run bench`: each connection type of the paper has a native variant (where a native
 * connection exists) and a Boxer variant (run only once the data-path probe succeeded; otherwise reported as
 * "not measured" with the probe's reason). plan() turns them into a list of bounded tasks (one per
 * repetition) so that index.ts can show progress; finish() turns the collected values into CaseResults.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchJoin } from './join';
import type { CaseResult, Variant } from './results';
import { HOST, Mode, NETBENCH, PY, ROOT, Runner, BOXER, sleep } from './runner';
import { ecdf, median, summarize, type Summary } from './stats';

export interface Config {
  quick: boolean;
  tputReps: number;
  tputSeconds: number;
  latReps: number;
  rttN: number;
  ttfbN: number;
  aggSenders: number[];
  aggReps: number;
  aggSeconds: number;
  joinSizes: number[];
  joinReps: number;
  connectN: number;
  connectReps: number;
  idleSeconds: number;
}

export function config(quick: boolean): Config {
  return quick
    ? { quick, tputReps: 1, tputSeconds: 1, latReps: 1, rttN: 300, ttfbN: 100, aggSenders: [1, 8, 32], aggReps: 1, aggSeconds: 1, joinSizes: [8, 64], joinReps: 1, connectN: 300, connectReps: 1, idleSeconds: 2 }
    : { quick, tputReps: 3, tputSeconds: 5, latReps: 3, rttN: 1000, ttfbN: 1000, aggSenders: [1, 2, 4, 8, 16, 32], aggReps: 2, aggSeconds: 4, joinSizes: [8, 32, 64], joinReps: 3, connectN: 1000, connectReps: 3, idleSeconds: 10 };
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

/** Seconds before the aggregate's measuring window opens: natively the clients start at once. */
const AGG_NATIVE_SETTLE_S = 2;
const AGG_BOXER_SETTLE_S = 8;
/** Function nodes sending into vm1 (native) and into fp (Boxer) in the aggregate case. */
const AGG_NATIVE_SENDERS = ['fp', 'fsa', 'fsb', 'fr', 'fta', 'ftb', 'fla', 'flb'];
const AGG_BOXER_SENDERS = ['fsa', 'fsb', 'fr', 'fta', 'ftb', 'fla', 'flb'];

export interface Task {
  label: string;
  run: () => Promise<void>;
}

interface Acc {
  c: Omit<CaseResult, 'native' | 'boxer'>;
  modes: Partial<Record<Mode, { values: number[]; distribution: boolean; errors: string[]; notMeasured?: string; over: string; summary?: Summary; note?: string }>>;
}

export class Bench {
  private readonly acc = new Map<string, Acc>();
  readonly tasks: Task[] = [];

  constructor(
    readonly cfg: Config,
    readonly runner: Runner,
    readonly boxer: { available: boolean; reason: string },
  ) {}

  private define(c: Acc['c'], modes: Mode[], over: Partial<Record<Mode, string>>, distribution = false, boxerReason?: string): Acc {
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
  private addTasks(a: Acc, reps: number, label: (m: Mode, rep: number) => string, measure: (m: Mode) => Promise<number[] | number>): void {
    for (let rep = 1; rep <= reps; rep++) {
      for (const m of ['native', 'boxer'] as const) {
        const slot = a.modes[m];
        if (!slot || slot.notMeasured) continue;
        this.tasks.push({
          label: label(m, rep),
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

    for (const k of cfg.aggSenders) {
      const per = Math.ceil(k / AGG_NATIVE_SENDERS.length);
      const a = this.define(
        { id: `aggregate/${k}`, group: 'aggregate', title: `${k} sender${k > 1 ? 's' : ''} (native: into vm1 from ${Math.min(k, AGG_NATIVE_SENDERS.length)} functions, ${per} iperf3 client${per > 1 ? 's' : ''} each; Boxer: into fp)`, unit: 'Mbit/s', better: 'higher' },
        ['native', 'boxer'],
        { native: `${cfg.aggReps} runs, ${cfg.aggSeconds} s window of the receiver's rx_bytes`, boxer: `${cfg.aggReps} runs, ${cfg.aggSeconds} s window of the receiver's rx_bytes` },
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
    if (!cl) for (const m of ['native', 'boxer'] as const) ca.modes[m]!.notMeasured = 'native/out/connect_latency is not built (make -C native bench)';
    else this.addTasks(ca, cfg.connectReps, (m, rep) => `connect() latency ${m}, rep ${rep}/${cfg.connectReps}`, (m) => this.connectLatency(m, cl, ca));

    for (const n of cfg.joinSizes) {
      const barrier = this.define({ id: `membership/barrier/${n}`, group: 'membership', title: `${n} agents (one process, loopback): last start → barrier release`, unit: 'ms', better: 'lower' }, ['boxer'], { boxer: `${cfg.joinReps} runs (bench/join.ts)` }, false, '');
      const msgs = this.define({ id: `membership/messages/${n}`, group: 'membership', title: `${n} agents: control messages per join`, unit: 'messages', better: 'lower' }, ['boxer'], { boxer: 'median of the runs' }, false, '');
      const bytes = this.define({ id: `membership/bytes/${n}`, group: 'membership', title: `${n} agents: control bytes per join`, unit: 'bytes', better: 'lower' }, ['boxer'], { boxer: 'median of the runs' }, false, '');
      const start = n === cfg.joinSizes[cfg.joinSizes.length - 1] ? this.define({ id: 'cost/agent-start', group: 'cost', title: 'one agent process (`boxer run`, loopback): start → joined', unit: 'ms', better: 'lower' }, ['boxer'], { boxer: `${cfg.joinReps} runs (bench/join.ts)` }, false, '') : undefined;
      this.tasks.push({
        label: `membership ${n} agents (${cfg.joinReps} run${cfg.joinReps > 1 ? 's' : ''})`,
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
    const rss = this.define({ id: 'cost/idle-rss', group: 'cost', title: 'resident memory of an idle agent (`boxer run -- sleep`, on vm1)', unit: 'MB', better: 'lower' }, ['boxer'], { boxer: 'one agent' }, false, '');
    const cpu = this.define({ id: 'cost/idle-cpu', group: 'cost', title: `CPU of an idle agent over ${cfg.idleSeconds} s`, unit: '% of a core', better: 'lower' }, ['boxer'], { boxer: 'one agent' }, false, '');
    this.tasks.push({
      label: `idle agent (${cfg.idleSeconds} s)`,
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
    this.define({ id: 'cost/setup-cpu', group: 'cost', title: 'agent CPU time during 1000 connection setups', unit: 'ms', better: 'lower' }, ['boxer'], {}, false, this.boxer.available ? 'not yet implemented in the harness' : `needs the Boxer data path, not available: ${this.boxer.reason}`);
  }

  private async iperf(m: Mode, client: string, server: string, reverse: boolean, seconds: number): Promise<number> {
    const port = this.runner.nextPort();
    const srv = await this.runner.server(m, server, ['iperf3', '-s', '-1', '-p', String(port)], port, seconds + 30);
    try {
      const args = ['iperf3', '-c', HOST, '-p', String(port), '-t', String(seconds), '-J', ...(reverse ? ['-R'] : []), ...(seconds >= 5 ? ['-O', '1'] : [])];
      const out = await this.runner.client(m, client, args, { node: server, name: srv.name }, (seconds + 25) * 1000);
      return parseIperf(out);
    } finally {
      await srv.stop();
    }
  }

  private async latency(m: Mode, kind: 'rtt' | 'ttfb', client: string, server: string): Promise<number[]> {
    const port = this.runner.nextPort();
    const maxS = 90;
    const srv = await this.runner.server(m, server, [PY, NETBENCH, kind === 'rtt' ? 'serve-echo' : 'serve-byte', String(port), String(maxS)], port, maxS);
    try {
      const args = kind === 'rtt' ? [PY, NETBENCH, 'rtt', HOST, String(port), String(this.cfg.rttN), '1024', '60'] : [PY, NETBENCH, 'ttfb', HOST, String(port), String(this.cfg.ttfbN), '60'];
      const out = await this.runner.client(m, client, args, { node: server, name: srv.name }, 80_000);
      const r = JSON.parse(out.trim().split('\n').pop() ?? '') as { us: number[]; errors: number; truncated: boolean };
      if (r.errors || r.truncated) throw new Error(`${kind}: ${r.errors} errors${r.truncated ? ', stopped at the time limit' : ''} (${r.us.length} samples)`);
      return r.us;
    } finally {
      await srv.stop();
    }
  }

  /**
   * k iperf3 clients at once into k iperf3 servers on `into`; the figure is what the receiver's eth0 took in
   * during a window of `seconds` that starts 2 s after the launch (all clients are sending by then) and ends
   * 1 s before the first client stops, as the paper dropped the first and last seconds.
   */
  private async aggregate(m: Mode, into: string, senders: string[], k: number, seconds: number): Promise<number> {
    const servers = [];
    const rx = async () => {
      const r = await this.runner.lab.exec(into, 'cat', ['/sys/class/net/eth0/statistics/rx_bytes'], { timeoutMs: 5000 });
      const v = Number(r.stdout.trim());
      if (!Number.isFinite(v) || r.code !== 0) throw new Error(`cannot read rx_bytes on ${into}: ${r.stderr.trim()}`);
      return v;
    };
    try {
      for (let i = 0; i < k; i++) {
        const port = this.runner.nextPort();
        servers.push({ port, ...(await this.runner.server(m, into, ['iperf3', '-s', '-1', '-p', String(port)], port, seconds + 40)) });
      }
      // Under Boxer every client is a new member: it joins and resolves its server first, a few seconds with
      // many at once on two cores; the window opens once they all send.
      const settleS = m === 'boxer' ? AGG_BOXER_SETTLE_S : AGG_NATIVE_SETTLE_S;
      const clients = Promise.all(
        servers.map((s, i) =>
          this.runner.client(m, senders[i % senders.length], ['iperf3', '-c', HOST, '-p', String(s.port), '-t', String(seconds + settleS + 1), '-J'], { node: into, name: s.name }, (seconds + settleS + 35) * 1000),
        ),
      );
      clients.catch(() => undefined);
      await sleep(settleS * 1000);
      const b0 = await rx();
      const t0 = performance.now();
      await sleep(seconds * 1000);
      const b1 = await rx();
      const t1 = performance.now();
      const outs = await clients;
      outs.forEach(parseIperf); // every client must have succeeded
      return ((b1 - b0) * 8) / ((t1 - t0) / 1000) / 1e6;
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
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
      const hz = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
      return { rssMb: Number(rss[1]) / 1024, cpuPct: (ticks / hz / wall) * 100 };
    } finally {
      child.kill('SIGTERM');
    }
  }

  /** The results, in plan order. */
  finish(): CaseResult[] {
    const out: CaseResult[] = [];
    for (const a of this.acc.values()) {
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
  const v: Variant = { status: 'measured', summary, over: s.over };
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

function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
}

/** Production dependencies' directories (npm ls --omit=dev), without ones inside another. */
function productionModules(): string[] {
  const out = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000 });
  const dirs = [...new Set(out.split('\n').filter((l) => l && path.resolve(l) !== ROOT && fs.existsSync(l)))].sort();
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
