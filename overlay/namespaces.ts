/**
 * Puts a planned lab into the kernel and takes it out again: network namespaces, veth pairs, bridges, the NAT
 * gateways' nftables rules (netfilter.ts) and their knobs (loss, rate limit, idle timeout). The layout is
 * described in lab.ts, which runs processes in what this builds.
 */

import * as fs from 'node:fs';
import { gatewayRuleset, LAN_BRIDGE, LOSS_CHAIN, lossRule, TABLE, WAN_IF } from './netfilter';
import { LabState, removeState } from './state';
import { run, runSync, tool, UserIds } from './sys';
import { Plan, PlannedFunction, PlannedGateway } from './topology';

/** The namespace holding the internet bridge is `<prefix>-net`; its bridge is `inet`. */
export const INTERNET_NODE = 'net';
const INTERNET_BRIDGE = 'inet';
/** Functions' writable directory root, as on a real function (only /tmp is writable there). */
export const FUNCTION_TMP_ROOT = '/tmp';
/** Kernel default of nf_conntrack_tcp_timeout_established (5 days), restored by setIdleTimeout(gw, null). */
const KERNEL_ESTABLISHED_TIMEOUT_S = 432000;
/**
 * tbf: queued packets older than this are dropped, which bounds the latency a rate limit adds (a real
 * shaper's buffer, not an ever-growing queue).
 */
const TBF_LATENCY = '50ms';
/** tbf's bucket holds at least this many bytes, and at least TBF_BURST_SECONDS of traffic at the rate (the
 * bucket must exceed rate / HZ or tbf cannot reach the rate). */
const TBF_MIN_BURST_BYTES = 32 * 1024;
const TBF_BURST_SECONDS = 0.01;


/** What building a lab needs: its prefix, namespaces and directories, the user owning the directories. */
export interface BuildTarget {
  prefix: string;
  plan: Plan;
  namespaces: string[];
  tmpDirs: string[];
  user: UserIds;
  progress: (step: string) => void;
}

/** The namespace of a node. */
export function nsName(prefix: string, node: string): string {
  return `${prefix}-${node}`;
}

/** Builds the lab: namespaces, the internet bridge, hosts, gateways with their functions, directories. */
export async function buildLab(t: BuildTarget): Promise<void> {
  const { plan } = t;
  t.progress('namespaces');
  for (const ns of t.namespaces) {
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  t.progress('internet');
  const net = nsName(t.prefix, INTERNET_NODE);
  await sysctl(t.prefix, INTERNET_NODE, ['net.bridge.bridge-nf-call-iptables=0']);
  await run('ip', ['-n', net, 'link', 'add', INTERNET_BRIDGE, 'type', 'bridge']);
  await run('ip', ['-n', net, 'link', 'set', INTERNET_BRIDGE, 'up']);

  for (const h of plan.hosts) {
    t.progress(`host ${h.name}`);
    await sysctl(t.prefix, h.name, ['net.ipv4.ping_group_range=0 2147483647']);
    await wireToInternet(t.prefix, h.name, 'eth0', `${h.address}/${plan.internetPrefixLen}`);
  }
  for (const g of plan.gateways) {
    t.progress(`gateway ${g.name}`);
    await buildGateway(t.prefix, g, plan.internetPrefixLen);
  }
  t.progress('directories');
  for (const dir of t.tmpDirs) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chownSync(dir, t.user.uid, t.user.gid);
  }
}

/** A gateway: its wan on the internet, its private bridge, its functions, its rules and knobs. */
async function buildGateway(prefix: string, g: PlannedGateway, internetPrefixLen: number): Promise<void> {
  // Before any interface exists, so that `default` applies to them (rp_filter: replies of the stateless
  // translation arrive on an interface the reverse path would not choose).
  await sysctl(prefix, g.name, [
    'net.ipv4.ip_forward=1',
    'net.ipv4.conf.all.rp_filter=0',
    'net.ipv4.conf.default.rp_filter=0',
    // br_netfilter would send frames between bridge ports through the IP hooks, and turn a hairpin DNAT
    // into a bridged frame that port isolation then drops: the gateway routes, it does not bridge-filter.
    'net.bridge.bridge-nf-call-iptables=0',
  ]);
  await wireToInternet(prefix, g.name, WAN_IF, `${g.address}/${internetPrefixLen}`);
  const gns = nsName(prefix, g.name);
  await run('ip', ['-n', gns, 'link', 'add', LAN_BRIDGE, 'type', 'bridge']);
  await run('ip', ['-n', gns, 'addr', 'add', `${g.lanAddress}/${g.prefixLen}`, 'dev', LAN_BRIDGE]);
  await run('ip', ['-n', gns, 'link', 'set', LAN_BRIDGE, 'up']);
  for (const f of g.functions) await buildFunction(prefix, g, f);
  await run('ip', ['netns', 'exec', gns, tool('nft'), '-f', '-'], gatewayRuleset(g));
  if (g.idleTimeout !== undefined) await applyIdleTimeout(prefix, g, g.idleTimeout);
  if (g.rate !== undefined) await applyRate(prefix, g, g.rate);
}

/** A function behind its gateway: its port range, its link to the gateway's bridge, its default route. */
async function buildFunction(prefix: string, g: PlannedGateway, f: PlannedFunction): Promise<void> {
  const gns = nsName(prefix, g.name);
  const fns = nsName(prefix, f.name);
  const port = portName(f.name);
  await sysctl(prefix, f.name, [`net.ipv4.ip_local_port_range=${f.portRange.low} ${f.portRange.high}`, 'net.ipv4.ping_group_range=0 2147483647']);
  await run('ip', ['-n', gns, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', fns]);
  await run('ip', ['-n', gns, 'link', 'set', port, 'master', LAN_BRIDGE, 'up']);
  if (!g.lan) await run('ip', ['-n', gns, 'link', 'set', 'dev', port, 'type', 'bridge_slave', 'isolated', 'on']);
  await run('ip', ['-n', fns, 'addr', 'add', `${f.address}/${g.prefixLen}`, 'dev', 'eth0']);
  await run('ip', ['-n', fns, 'link', 'set', 'eth0', 'up']);
  await run('ip', ['-n', fns, 'route', 'add', 'default', 'via', g.lanAddress]);
}

async function wireToInternet(prefix: string, node: string, ifname: string, address: string): Promise<void> {
  const net = nsName(prefix, INTERNET_NODE);
  const ns = nsName(prefix, node);
  const port = `v-${node}`;
  await run('ip', ['-n', net, 'link', 'add', port, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns]);
  await run('ip', ['-n', net, 'link', 'set', port, 'master', INTERNET_BRIDGE, 'up']);
  await run('ip', ['-n', ns, 'addr', 'add', address, 'dev', ifname]);
  await run('ip', ['-n', ns, 'link', 'set', ifname, 'up']);
}

async function sysctl(prefix: string, node: string, settings: string[]): Promise<void> {
  await run('ip', ['netns', 'exec', nsName(prefix, node), tool('sysctl'), '-q', '-w', ...settings]);
}

/** Drops `pct` percent of the packets a gateway forwards, both directions (0 turns it off). */
export async function applyLoss(prefix: string, gw: PlannedGateway, pct: number): Promise<void> {
  const script = `flush chain ip ${TABLE} ${LOSS_CHAIN}\n` + (pct > 0 ? `add rule ip ${TABLE} ${LOSS_CHAIN} ${lossRule(pct)}\n` : '');
  await run('ip', ['netns', 'exec', nsName(prefix, gw.name), tool('nft'), '-f', '-'], script);
}

/** Limits a gateway's traffic to `rate` (tc syntax) in each direction, on its wan and its functions' ports; null removes it. */
export async function applyRate(prefix: string, gw: PlannedGateway, rate: string | null): Promise<void> {
  const ns = nsName(prefix, gw.name);
  const devs = [WAN_IF, ...gw.functions.map((f) => portName(f.name))];
  for (const dev of devs) {
    if (rate === null) await run('tc', ['-n', ns, 'qdisc', 'del', 'dev', dev, 'root']).catch(() => undefined); // none set
    else await run('tc', ['-n', ns, 'qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', rate, 'burst', String(tbfBurst(rate)), 'latency', TBF_LATENCY]);
  }
}

/** Seconds an idle established TCP mapping lives on this gateway; null restores the kernel's 5 days. */
export async function applyIdleTimeout(prefix: string, gw: PlannedGateway, seconds: number | null): Promise<void> {
  await sysctl(prefix, gw.name, [`net.netfilter.nf_conntrack_tcp_timeout_established=${seconds ?? KERNEL_ESTABLISHED_TIMEOUT_S}`]);
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
export function teardown(state: LabState): void {
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
