/**
 * The lab: builds a topology (overlay/topology.ts) out of network namespaces, veth pairs, bridges and the
 * nftables NAT gateways of overlay/netfilter.ts; runs processes inside its nodes; changes the per-gateway knobs
 * (loss, rate limit, idle timeout) at run time; and removes everything it created.
 *
 * Layout. Everything lives in namespaces named `<prefix>-<node>`; nothing is created in the caller's network
 * namespace, so deleting the namespaces removes every veth, bridge and rule with them:
 *   <prefix>-net       the internet: bridge `inet`, one port `v-<node>` per host and gateway
 *   <prefix>-<host>    `eth0` on the internet
 *   <prefix>-<gw>      `wan` on the internet (public address), bridge `br0` (first private address), one port
 *                      `p-<fn>` per function (isolated unless the gateway has `lan: true`)
 *   <prefix>-<fn>      `eth0` with a private address, default route via the gateway
 *
 * Processes. Hosts and functions run processes as the unprivileged user `boxerfn` (as a function and an agent
 * on a VM do), with HOME and TMPDIR set to their own directory /tmp/<prefix>-<node>; gateways run them as
 * root (they are for inspection: `conntrack -L`, `nft list ruleset`). `asRoot` overrides either way.
 */

import { ChildProcess, spawn as spawnChild, StdioOptions } from 'node:child_process';
import * as path from 'node:path';
import { BoxerError } from '../src/util/errors';
import { applyIdleTimeout, applyLoss, applyRate, buildLab, FUNCTION_TMP_ROOT, INTERNET_NODE, teardown } from './namespaces';
import {
  claimState,
  GatewayKnobs,
  isStale,
  LabState,
  listStates,
  PREFIX_RE,
  randomPrefix,
  readState,
  STATE_VERSION,
  writeState,
} from './state';
import {
  checkLabPrerequisites,
  ensureFunctionUser,
  FUNCTION_USER,
  LAB_PATH,
  processStartTime,
  readabilityProblem,
  run,
  tool,
  UserIds,
} from './sys';
import {
  isIdleTimeout,
  isLoss,
  isRate,
  NatKind,
  Plan,
  PlannedGateway,
  PortRange,
  predictPublicPort,
  Topology,
  TopologyError,
} from './topology';
import { loadTopologyFile, planTopology } from './topology-plan';

/** The namespace holding the internet bridge is `<prefix>-net`; its bridge is `inet`. */
/** Attempts at drawing a random prefix not in use (36^4 prefixes: a clash is already rare). */
const PREFIX_ATTEMPTS = 16;

export type NodeRole = 'host' | 'gateway' | 'function';

export interface NodeInfo {
  name: string;
  role: NodeRole;
  /** Network namespace name (`ip netns exec <netns> ...`). */
  netns: string;
  /** Its own address: public for hosts and gateways, private for functions. */
  address: string;
  /** The address the internet sees it as (its gateway's, for a function). */
  publicAddress: string;
  /** For functions: the gateway's name. */
  gateway?: string;
  /** For functions and gateways: the NAT kind. */
  nat?: NatKind;
  /** For functions: ip_local_port_range (on a translating gateway, the only TCP ports carried). */
  portRange?: PortRange;
  /** For hosts and functions: HOME and TMPDIR of its processes. */
  tmpdir?: string;
}

export interface LabOptions {
  /** Prefix of every name the lab creates; `bx` + 4 random characters by default. */
  prefix?: string;
  /** Leave the lab running when this process exits (`boxer lab up`): `down --stale` does not sweep it. */
  persistent?: boolean;
  /** Called as each part is built (`namespaces`, `internet`, `host seed`, `gateway pres`, ...); a throw aborts up. */
  onProgress?: (step: string) => void;
}

export interface SpawnOptions {
  /** Added to the base environment (PATH, HOME, TMPDIR, USER, LANG, BOXER_LAB_PREFIX, BOXER_LAB_NODE). */
  env?: Record<string, string>;
  /** Run as root instead of the node's default user (boxerfn on hosts and functions). */
  asRoot?: boolean;
  stdio?: StdioOptions;
  /** Working directory; the node's TMPDIR by default. */
  cwd?: string;
  signal?: AbortSignal;
}

export interface ExecOptions extends Omit<SpawnOptions, 'stdio'> {
  /** Mandatory: the process is killed (SIGKILL) after this many milliseconds. */
  timeoutMs: number;
  /** Written to stdin, which is then closed. */
  input?: string;
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export class Lab {
  private readonly children = new Set<ChildProcess>();
  private closed = false;
  private readonly nodeMap = new Map<string, NodeInfo>();

  private constructor(
    private readonly state: LabState,
    readonly plan: Plan,
    private readonly user: UserIds,
    private readonly progress: (step: string) => void = () => undefined,
  ) {
    for (const n of describeNodes(state.prefix, plan)) this.nodeMap.set(n.name, n);
  }

  get prefix(): string {
    return this.state.prefix;
  }

  /** Every node: hosts, gateways, functions, in topology order. */
  get nodes(): NodeInfo[] {
    return [...this.nodeMap.values()];
  }

  /** Current per-gateway knobs. */
  knobs(gateway: string): GatewayKnobs {
    this.gateway(gateway);
    return { ...this.state.knobs[gateway] };
  }

  /**
   * Builds the topology (the default one when omitted). Checks the prerequisites first and throws a
   * BoxerError (LAB_UNAVAILABLE) saying what is missing; on any failure midway it removes what it created.
   */
  static async up(topology: Topology = loadTopologyFile(), opts: LabOptions = {}): Promise<Lab> {
    const pre = checkLabPrerequisites();
    if (!pre.ok) throw new BoxerError('LAB_UNAVAILABLE', `cannot build the lab: ${pre.reason}`);
    let plan: Plan;
    try {
      plan = planTopology(topology);
    } catch (e) {
      if (e instanceof TopologyError) throw new BoxerError('USAGE', e.message);
      throw e;
    }
    let user: UserIds;
    try {
      user = ensureFunctionUser();
    } catch (e) {
      throw new BoxerError('LAB_UNAVAILABLE', (e as Error).message);
    }
    const unreadable = readabilityProblem(user);
    if (unreadable) throw new BoxerError('LAB_UNAVAILABLE', unreadable);
    if (opts.prefix !== undefined && !PREFIX_RE.test(opts.prefix))
      throw new BoxerError('USAGE', `lab prefix ${JSON.stringify(opts.prefix)} must match ${PREFIX_RE}`);

    const existing = (await run('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]);
    const inUse = (p: string) => existing.some((n) => n.startsWith(`${p}-`));
    const names = [INTERNET_NODE, ...plan.hosts.map((h) => h.name), ...plan.gateways.flatMap((g) => [g.name, ...g.functions.map((f) => f.name)])];
    const tmpNodes = [...plan.hosts.map((h) => h.name), ...plan.gateways.flatMap((g) => g.functions.map((f) => f.name))];
    let state: LabState | undefined;
    for (let i = 0; i < PREFIX_ATTEMPTS && !state; i++) {
      const prefix = opts.prefix ?? randomPrefix();
      const candidate: LabState = {
        version: STATE_VERSION,
        prefix,
        owner: opts.persistent ? null : { pid: process.pid, startTime: processStartTime(process.pid) },
        createdAt: new Date().toISOString(),
        topology,
        namespaces: names.map((n) => `${prefix}-${n}`),
        tmpDirs: tmpNodes.map((n) => path.join(FUNCTION_TMP_ROOT, `${prefix}-${n}`)),
        knobs: Object.fromEntries(plan.gateways.map((g) => [g.name, { loss: g.loss, rate: g.rate, idleTimeout: g.idleTimeout }])),
      };
      if (!inUse(prefix) && claimState(candidate)) state = candidate;
      else if (opts.prefix !== undefined) throw new BoxerError('USAGE', `lab prefix ${prefix} is already in use`);
    }
    if (!state) throw new BoxerError('INTERNAL', `no free lab prefix after ${PREFIX_ATTEMPTS} attempts`);

    const lab = new Lab(state, plan, user, opts.onProgress);
    try {
      await buildLab({ prefix: state.prefix, plan, namespaces: state.namespaces, tmpDirs: state.tmpDirs, user, progress: lab.progress });
    } catch (e) {
      lab.downSync();
      if (e instanceof BoxerError) throw e;
      throw new BoxerError('LAB_UNAVAILABLE', `building the lab failed (everything created was removed): ${(e as Error).message}`);
    }
    return lab;
  }

  /** The lab with this prefix, built by another process (from its state file). */
  static attach(prefix: string): Lab {
    const state = readState(prefix);
    if (!state) throw new BoxerError('USAGE', `no lab with prefix ${prefix} (see \`boxer lab status\`)`);
    return new Lab(state, planTopology(state.topology), ensureFunctionUser());
  }

  /** Every lab recorded in $TMPDIR, live or not. */
  static list(): LabState[] {
    return listStates();
  }

  /** Removes every lab whose owner process is gone; returns their prefixes. */
  static sweepStale(): string[] {
    const swept: string[] = [];
    for (const s of listStates())
      if (isStale(s)) {
        teardown(s);
        swept.push(s.prefix);
      }
    return swept;
  }

  /** Removes the lab recorded under this prefix, whoever built it. */
  static destroy(prefix: string): void {
    const s = readState(prefix);
    if (!s) throw new BoxerError('USAGE', `no lab with prefix ${prefix}`);
    teardown(s);
  }

  node(name: string): NodeInfo {
    const n = this.nodeMap.get(name);
    if (!n) throw new BoxerError('USAGE', `no node "${name}" in lab ${this.prefix} (nodes: ${[...this.nodeMap.keys()].join(', ')})`);
    return n;
  }

  /**
   * The public port a function's (or host's) local TCP port appears as, when the NAT makes it predictable:
   * the same port (preserving, hosts), the port XOR 0x8000 (translating), undefined (random).
   */
  publicPort(name: string, localPort: number): number | undefined {
    const n = this.node(name);
    if (n.role === 'host') return localPort;
    return predictPublicPort(n.nat!, localPort);
  }

  /** Starts `cmd args` inside the node's namespace (see the file comment for the user and environment). */
  spawn(name: string, cmd: string, args: readonly string[] = [], opts: SpawnOptions = {}): ChildProcess {
    this.assertOpen();
    const n = this.node(name);
    const asRoot = opts.asRoot ?? n.role === 'gateway';
    const home = n.tmpdir ?? '/';
    const env: Record<string, string> = {
      PATH: LAB_PATH,
      HOME: home,
      TMPDIR: home,
      USER: asRoot ? 'root' : FUNCTION_USER,
      LOGNAME: asRoot ? 'root' : FUNCTION_USER,
      LANG: 'C.UTF-8',
      BOXER_LAB_PREFIX: this.prefix,
      BOXER_LAB_NODE: n.name,
      ...opts.env,
    };
    const argv = ['netns', 'exec', n.netns];
    if (!asRoot) argv.push(tool('setpriv'), `--reuid=${this.user.uid}`, `--regid=${this.user.gid}`, '--clear-groups', '--');
    argv.push(cmd, ...args);
    // ip and setpriv exec the command in place: the child's pid is the command's.
    const child = spawnChild(tool('ip'), argv, { env, cwd: opts.cwd ?? home, stdio: opts.stdio ?? 'pipe', signal: opts.signal });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    child.once('error', () => this.children.delete(child));
    return child;
  }

  /** Runs `cmd args` in the node to completion, or kills it after `timeoutMs`; collects its output. */
  exec(name: string, cmd: string, args: readonly string[], opts: ExecOptions): Promise<ExecResult> {
    if (!(opts.timeoutMs > 0)) return Promise.reject(new BoxerError('USAGE', 'Lab.exec needs a positive timeoutMs'));
    const { timeoutMs, input, ...spawnOpts } = opts;
    return new Promise((resolve, reject) => {
      const child = this.spawn(name, cmd, args, { ...spawnOpts, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.stdin!.on('error', () => undefined); // the command may exit without reading
      child.stdin!.end(input ?? '');
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr, timedOut });
      });
    });
  }

  /** Drops `pct` percent of the packets a gateway forwards, both directions (0 turns it off). */
  async setLoss(gateway: string, pct: number): Promise<void> {
    const gw = this.gateway(gateway);
    if (!isLoss(pct)) throw new BoxerError('USAGE', `loss must be a percentage 0-100, got ${pct}`);
    await applyLoss(this.prefix, gw, pct);
    this.updateKnobs(gateway, { loss: pct });
  }

  /** Limits a gateway's traffic to `rate` (tc syntax, e.g. `10mbit`) in each direction; null removes it. */
  async setRate(gateway: string, rate: string | null): Promise<void> {
    const gw = this.gateway(gateway);
    if (rate !== null && !isRate(rate)) throw new BoxerError('USAGE', `rate must be like "10mbit", got ${JSON.stringify(rate)}`);
    await applyRate(this.prefix, gw, rate);
    this.updateKnobs(gateway, { rate: rate ?? undefined });
  }

  /** Seconds an idle established TCP mapping lives on this gateway; null restores the kernel's 5 days. */
  async setIdleTimeout(gateway: string, seconds: number | null): Promise<void> {
    const gw = this.gateway(gateway);
    if (seconds !== null && !isIdleTimeout(seconds)) throw new BoxerError('USAGE', `idle timeout must be whole seconds 1-432000, got ${seconds}`);
    await applyIdleTimeout(this.prefix, gw, seconds);
    this.updateKnobs(gateway, { idleTimeout: seconds ?? undefined });
  }

  /** Removes everything the lab created: processes, namespaces (and with them veths, bridges, rules), dirs. */
  async down(): Promise<void> {
    this.downSync();
  }

  /** down(), synchronously: usable from process.on('exit') and signal handlers. Idempotent. */
  downSync(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.children) c.kill('SIGKILL');
    this.children.clear();
    teardown(this.state);
  }

  private gateway(name: string): PlannedGateway {
    this.assertOpen();
    const g = this.plan.gateways.find((x) => x.name === name);
    if (!g) throw new BoxerError('USAGE', `no gateway "${name}" in lab ${this.prefix} (gateways: ${this.plan.gateways.map((x) => x.name).join(', ')})`);
    return g;
  }

  private updateKnobs(gateway: string, change: Partial<GatewayKnobs>): void {
    this.state.knobs[gateway] = { ...this.state.knobs[gateway], ...change };
    writeState(this.state);
  }

  private assertOpen(): void {
    if (this.closed) throw new BoxerError('USAGE', `lab ${this.prefix} is down`);
  }
}

/** The nodes of a planned lab, as `Lab.node()` reports them (no kernel access: `boxer lab status` uses it). */
export function describeNodes(prefix: string, plan: Plan): NodeInfo[] {
  const ns = (n: string) => `${prefix}-${n}`;
  const tmp = (n: string) => path.join(FUNCTION_TMP_ROOT, `${prefix}-${n}`);
  const out: NodeInfo[] = [];
  for (const h of plan.hosts)
    out.push({ name: h.name, role: 'host', netns: ns(h.name), address: h.address, publicAddress: h.address, tmpdir: tmp(h.name) });
  for (const g of plan.gateways) {
    out.push({ name: g.name, role: 'gateway', netns: ns(g.name), address: g.address, publicAddress: g.address, nat: g.kind });
    for (const f of g.functions)
      out.push({
        name: f.name,
        role: 'function',
        netns: ns(f.name),
        address: f.address,
        publicAddress: g.address,
        gateway: g.name,
        nat: g.kind,
        portRange: f.portRange,
        tmpdir: tmp(f.name),
      });
  }
  return out;
}

