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
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BoxerError } from '../src/util/errors';
import { gatewayRuleset, LAN_BRIDGE, LOSS_CHAIN, lossRule, TABLE, WAN_IF } from './netfilter';
import {
  claimState,
  GatewayKnobs,
  isStale,
  LabState,
  listStates,
  PREFIX_RE,
  randomPrefix,
  readState,
  removeState,
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
  runSync,
  tool,
  UserIds,
} from './sys';
import {
  isIdleTimeout,
  isLoss,
  isRate,
  loadTopologyFile,
  NatKind,
  Plan,
  planTopology,
  PlannedGateway,
  PortRange,
  predictPublicPort,
  Topology,
  TopologyError,
} from './topology';

/** The namespace holding the internet bridge is `<prefix>-net`; its bridge is `inet`. */
const INTERNET_NODE = 'net';
const INTERNET_BRIDGE = 'inet';
/** Functions' writable directory root, as on a real function (only /tmp is writable there). */
const FUNCTION_TMP_ROOT = '/tmp';
/** Kernel default of nf_conntrack_tcp_timeout_established (5 days), restored by setIdleTimeout(gw, null). */
const KERNEL_ESTABLISHED_TIMEOUT_S = 432000;
/** Attempts at drawing a random prefix not in use (36^4 prefixes: a clash is already rare). */
const PREFIX_ATTEMPTS = 16;
/**
 * tbf: queued packets older than this are dropped, which bounds the latency a rate limit adds (a real
 * shaper's buffer, not an ever-growing queue).
 */
const TBF_LATENCY = '50ms';
/** tbf's bucket holds at least this many bytes, and at least TBF_BURST_SECONDS of traffic at the rate (the
 * bucket must exceed rate / HZ or tbf cannot reach the rate). */
const TBF_MIN_BURST_BYTES = 32 * 1024;
const TBF_BURST_SECONDS = 0.01;

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
      await lab.build();
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
    const script = `flush chain ip ${TABLE} ${LOSS_CHAIN}\n` + (pct > 0 ? `add rule ip ${TABLE} ${LOSS_CHAIN} ${lossRule(pct)}\n` : '');
    await run('ip', ['netns', 'exec', this.ns(gw.name), tool('nft'), '-f', '-'], script);
    this.updateKnobs(gateway, { loss: pct });
  }

  /** Limits a gateway's traffic to `rate` (tc syntax, e.g. `10mbit`) in each direction; null removes it. */
  async setRate(gateway: string, rate: string | null): Promise<void> {
    const gw = this.gateway(gateway);
    if (rate !== null && !isRate(rate)) throw new BoxerError('USAGE', `rate must be like "10mbit", got ${JSON.stringify(rate)}`);
    const devs = [WAN_IF, ...gw.functions.map((f) => portName(f.name))];
    for (const dev of devs) {
      if (rate === null) await run('tc', ['-n', this.ns(gw.name), 'qdisc', 'del', 'dev', dev, 'root']).catch(() => undefined); // none set
      else
        await run('tc', ['-n', this.ns(gw.name), 'qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', rate, 'burst', String(tbfBurst(rate)), 'latency', TBF_LATENCY]);
    }
    this.updateKnobs(gateway, { rate: rate ?? undefined });
  }

  /** Seconds an idle established TCP mapping lives on this gateway; null restores the kernel's 5 days. */
  async setIdleTimeout(gateway: string, seconds: number | null): Promise<void> {
    const gw = this.gateway(gateway);
    if (seconds !== null && !isIdleTimeout(seconds)) throw new BoxerError('USAGE', `idle timeout must be whole seconds 1-432000, got ${seconds}`);
    await this.sysctl(gw.name, [`net.netfilter.nf_conntrack_tcp_timeout_established=${seconds ?? KERNEL_ESTABLISHED_TIMEOUT_S}`]);
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

  // ------------------------------------------------------------ building

  private async build(): Promise<void> {
    const { plan } = this;
    this.progress('namespaces');
    for (const ns of this.state.namespaces) {
      await run('ip', ['netns', 'add', ns]);
      await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    this.progress('internet');
    const net = this.ns(INTERNET_NODE);
    await this.sysctl(INTERNET_NODE, ['net.bridge.bridge-nf-call-iptables=0']);
    await run('ip', ['-n', net, 'link', 'add', INTERNET_BRIDGE, 'type', 'bridge']);
    await run('ip', ['-n', net, 'link', 'set', INTERNET_BRIDGE, 'up']);
    const cidr = (a: string, len: number) => `${a}/${len}`;

    for (const h of plan.hosts) {
      this.progress(`host ${h.name}`);
      await this.sysctl(h.name, ['net.ipv4.ping_group_range=0 2147483647']);
      await this.wireToInternet(h.name, 'eth0', cidr(h.address, plan.internetPrefixLen));
    }
    for (const g of plan.gateways) {
      this.progress(`gateway ${g.name}`);
      // Before any interface exists, so that `default` applies to them (rp_filter: replies of the stateless
      // translation arrive on an interface the reverse path would not choose).
      await this.sysctl(g.name, [
        'net.ipv4.ip_forward=1',
        'net.ipv4.conf.all.rp_filter=0',
        'net.ipv4.conf.default.rp_filter=0',
        // br_netfilter would send frames between bridge ports through the IP hooks, and turn a hairpin DNAT
        // into a bridged frame that port isolation then drops: the gateway routes, it does not bridge-filter.
        'net.bridge.bridge-nf-call-iptables=0',
      ]);
      await this.wireToInternet(g.name, WAN_IF, cidr(g.address, plan.internetPrefixLen));
      const gns = this.ns(g.name);
      await run('ip', ['-n', gns, 'link', 'add', LAN_BRIDGE, 'type', 'bridge']);
      await run('ip', ['-n', gns, 'addr', 'add', cidr(g.lanAddress, g.prefixLen), 'dev', LAN_BRIDGE]);
      await run('ip', ['-n', gns, 'link', 'set', LAN_BRIDGE, 'up']);
      for (const f of g.functions) {
        const fns = this.ns(f.name);
        const port = portName(f.name);
        await this.sysctl(f.name, [
          `net.ipv4.ip_local_port_range=${f.portRange.low} ${f.portRange.high}`,
          'net.ipv4.ping_group_range=0 2147483647',
        ]);
        await run('ip', ['-n', gns, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', fns]);
        await run('ip', ['-n', gns, 'link', 'set', port, 'master', LAN_BRIDGE, 'up']);
        if (!g.lan) await run('ip', ['-n', gns, 'link', 'set', 'dev', port, 'type', 'bridge_slave', 'isolated', 'on']);
        await run('ip', ['-n', fns, 'addr', 'add', cidr(f.address, g.prefixLen), 'dev', 'eth0']);
        await run('ip', ['-n', fns, 'link', 'set', 'eth0', 'up']);
        await run('ip', ['-n', fns, 'route', 'add', 'default', 'via', g.lanAddress]);
      }
      await run('ip', ['netns', 'exec', gns, tool('nft'), '-f', '-'], gatewayRuleset(g));
      if (g.idleTimeout !== undefined) await this.setIdleTimeout(g.name, g.idleTimeout);
      if (g.rate !== undefined) await this.setRate(g.name, g.rate);
    }
    this.progress('directories');
    for (const dir of this.state.tmpDirs) {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { mode: 0o700 });
      fs.chownSync(dir, this.user.uid, this.user.gid);
    }
  }

  private async wireToInternet(node: string, ifname: string, address: string): Promise<void> {
    const net = this.ns(INTERNET_NODE);
    const ns = this.ns(node);
    const port = `v-${node}`;
    await run('ip', ['-n', net, 'link', 'add', port, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns]);
    await run('ip', ['-n', net, 'link', 'set', port, 'master', INTERNET_BRIDGE, 'up']);
    await run('ip', ['-n', ns, 'addr', 'add', address, 'dev', ifname]);
    await run('ip', ['-n', ns, 'link', 'set', ifname, 'up']);
  }

  private async sysctl(node: string, settings: string[]): Promise<void> {
    await run('ip', ['netns', 'exec', this.ns(node), tool('sysctl'), '-q', '-w', ...settings]);
  }

  private ns(node: string): string {
    return `${this.prefix}-${node}`;
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

/** The gateway-side veth of a function's link (at most 10 characters). */
function portName(fn: string): string {
  return `p-${fn}`;
}

/** tbf burst in bytes for a rate in tc syntax. */
function tbfBurst(rate: string): number {
  const m = /^([0-9.]+)([a-z]+)$/.exec(rate)!;
  const scale: Record<string, number> = { bit: 1 / 8, kbit: 1e3 / 8, mbit: 1e6 / 8, gbit: 1e9 / 8, bps: 1, kbps: 1e3, mbps: 1e6, gbps: 1e9 };
  const bytesPerSecond = Number(m[1]) * (scale[m[2]] ?? 1);
  return Math.max(TBF_MIN_BURST_BYTES, Math.ceil(bytesPerSecond * TBF_BURST_SECONDS));
}

/**
 * Removes a lab from its state file: kills every process left in its namespaces, deletes the namespaces (the
 * kernel deletes their interfaces, bridges and rules with them), removes the function directories and the
 * state file. Synchronous and best-effort, so it can run from exit handlers and after a failed `up`.
 */
function teardown(state: LabState): void {
  for (const ns of [...state.namespaces].reverse()) {
    const pids = runSync('ip', ['netns', 'pids', ns]);
    for (const p of (pids ?? '').split('\n').filter(Boolean)) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    runSync('ip', ['netns', 'del', ns]);
  }
  for (const dir of state.tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
  removeState(state.prefix);
}
