/**
 * The lab's declarative topology: the JSON format (hosts on the emulated internet, NAT gateways and the
 * functions behind them), its validation with errors a person can fix, and the plan derived from it (every
 * address, interface name and port block the lab will create). Pure code: nothing here touches the kernel, so
 * it is unit-tested without root. The format is documented in docs/lab.md.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';

/** NAT kinds, named as `boxer status` names what an agent detects. */
export const NAT_KINDS = ['preserving', 'random', 'translating'] as const;
export type NatKind = (typeof NAT_KINDS)[number];

/** A function behind a gateway: a name, or a name and a fixed private address. */
export type FunctionSpec = string | { name: string; address?: string };

export interface HostSpec {
  name: string;
  /** Address on the internet side; assigned from `internet` when omitted. */
  address?: string;
}

export interface GatewaySpec {
  name: string;
  kind: NatKind;
  /** The gateway's public address (what its functions are seen as); assigned when omitted. */
  address?: string;
  /** The private subnet behind the gateway (RFC 1918; the gateway takes its first address). */
  subnet: string;
  /** Functions can reach each other's public mapping through the gateway (preserving only). */
  hairpin?: boolean;
  /** Functions can reach each other's private address (bridge ports not isolated). */
  lan?: boolean;
  /** Seconds an idle established TCP mapping survives (conntrack); the kernel default when omitted. */
  idleTimeout?: number;
  /** Percent of forwarded packets dropped at random, 0-100. */
  loss?: number;
  /** Rate limit in both directions, in tc's syntax (`10mbit`, `512kbit`); none when omitted. */
  rate?: string;
  functions: FunctionSpec[];
}

export interface Topology {
  /** The internet side's network, by default 198.18.0.0/15 (reserved for benchmarking, RFC 2544). */
  internet?: string;
  hosts: HostSpec[];
  gateways: GatewaySpec[];
}

/** The default internet-side network: RFC 2544's benchmarking range, never routed anywhere. */
export const DEFAULT_INTERNET = '198.18.0.0/15';
/** Boxer's carrier-grade-NAT range; the virtual network lives inside it, so the lab keeps clear of all of it. */
const CGNAT_RANGE = '100.64.0.0/10';
const PRIVATE_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'];

/**
 * Node names: short, because a node's namespace is `<prefix>-<name>` and every Linux interface name derived
 * from it must fit IFNAMSIZ (15 characters). With a 6-character prefix, 8 characters keep `bxab12-fnname12`
 * at 15.
 */
export const NODE_NAME_RE = /^[a-z][a-z0-9]{0,7}$/;
/** Names the lab uses itself: `net` is the namespace holding the internet bridge. */
const RESERVED_NAMES = new Set(['net']);

/**
 * Preserving and random gateways split Linux's default ephemeral range (ip_local_port_range) among their
 * functions, so that two functions sharing one address never pick the same port and a preserving mapping is
 * predictable (a real NAT would remap the second one).
 */
export const PORT_BLOCK_SPACE = { low: 32768, high: 60999 } as const;
/**
 * Translating gateways: a function's local ports lie in 16384-32767 and appear on the internet XORed with
 * 0x8000, i.e. in 49152-65535 (the IANA dynamic range, where real translating NATs put mappings). The fixed
 * function needs no state, which is the point of a stateless NAT; disjoint blocks keep functions apart.
 */
export const TRANSLATE_XOR = 0x8000;
export const TRANSLATE_SPACE = { low: 16384, high: 32767 } as const;
/** Smallest port block a function gets; bounds the number of functions per gateway (16 translating). */
const MIN_PORT_BLOCK = 1024;
/** conntrack's own limits for nf_conntrack_tcp_timeout_established: 1 s up to the 5-day default. */
const IDLE_TIMEOUT_RANGE = { min: 1, max: 432000 } as const;
const RATE_RE = /^[0-9]+(\.[0-9]+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$/;

export class TopologyError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid topology:\n  - ${problems.join('\n  - ')}`);
    this.name = 'TopologyError';
  }
}

// ---------------------------------------------------------------- IPv4 helpers

export function parseIPv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr {
  network: number;
  prefixLen: number;
  text: string;
}

export function parseCidr(s: string): Cidr | undefined {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s);
  if (!m) return undefined;
  const addr = parseIPv4(m[1]);
  const prefixLen = Number(m[2]);
  if (addr === undefined || prefixLen > 32) return undefined;
  const network = (addr & maskOf(prefixLen)) >>> 0;
  if (network !== addr) return undefined; // host bits set: almost always a typo
  return { network, prefixLen, text: s };
}

function maskOf(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
}

export function cidrContains(c: Cidr, addr: number): boolean {
  return ((addr & maskOf(c.prefixLen)) >>> 0) === c.network;
}

function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b.network) || cidrContains(b, a.network);
}

function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefixLen);
}

// ---------------------------------------------------------------- the plan

export interface PortRange {
  low: number;
  high: number;
}

export interface PlannedHost {
  name: string;
  address: string;
}

export interface PlannedFunction {
  name: string;
  gateway: string;
  address: string;
  /** The function's ip_local_port_range: ephemeral ports, and for `translating` the only ports carried. */
  portRange: PortRange;
}

export interface PlannedGateway {
  name: string;
  kind: NatKind;
  /** Public (wan) address. */
  address: string;
  subnet: string;
  prefixLen: number;
  /** The gateway's own address on its private bridge: the functions' default route. */
  lanAddress: string;
  hairpin: boolean;
  lan: boolean;
  idleTimeout?: number;
  loss: number;
  rate?: string;
  functions: PlannedFunction[];
}

export interface Plan {
  internet: string;
  internetPrefixLen: number;
  hosts: PlannedHost[];
  gateways: PlannedGateway[];
}

// ---------------------------------------------------------------- validation

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Validates untrusted JSON (a parsed topology file) and returns the plan, or throws a TopologyError listing
 * every problem found (not only the first), each naming where it is.
 */
export function planTopology(input: unknown): Plan {
  const problems: string[] = [];
  const bad = (where: string, msg: string) => problems.push(`${where}: ${msg}`);

  if (!isObject(input)) throw new TopologyError(['the topology must be a JSON object']);
  checkKeys(input, ['internet', 'hosts', 'gateways', 'comment'], 'topology', bad);

  const internetText = input.internet === undefined ? DEFAULT_INTERNET : input.internet;
  const internet = typeof internetText === 'string' ? parseCidr(internetText) : undefined;
  if (!internet) bad('internet', `expected a network like ${DEFAULT_INTERNET}, got ${JSON.stringify(internetText)}`);
  else checkNotCgnat(internet, 'internet', bad);

  const names = new Set<string>();
  const checkName = (v: unknown, where: string): string | undefined => {
    if (typeof v !== 'string' || !NODE_NAME_RE.test(v)) {
      bad(where, `name ${JSON.stringify(v)} must match ${NODE_NAME_RE} (interface names are at most 15 characters)`);
      return undefined;
    }
    if (RESERVED_NAMES.has(v)) bad(where, `name "${v}" is reserved by the lab`);
    if (names.has(v)) bad(where, `name "${v}" is used twice (names are unique across hosts, gateways and functions)`);
    names.add(v);
    return v;
  };

  // Public addresses: explicit ones first, then fill the gaps in order.
  const publicTaken = new Set<number>();
  const wantPublic: { where: string; value: unknown; set: (a: string) => void }[] = [];

  const hosts: PlannedHost[] = [];
  const hostList = input.hosts;
  if (!Array.isArray(hostList)) bad('hosts', 'expected an array of {name, address?}');
  else
    hostList.forEach((h, i) => {
      const where = `hosts[${i}]`;
      if (!isObject(h)) return bad(where, 'expected an object {name, address?}');
      checkKeys(h, ['name', 'address', 'comment'], where, bad);
      const host: PlannedHost = { name: checkName(h.name, where) ?? `?${i}`, address: '' };
      hosts.push(host);
      wantPublic.push({ where, value: h.address, set: (a) => (host.address = a) });
    });

  const gateways: PlannedGateway[] = [];
  const gwList = input.gateways;
  if (!Array.isArray(gwList)) bad('gateways', 'expected an array of gateways');
  else
    gwList.forEach((g, i) => {
      const where = `gateways[${i}]`;
      if (!isObject(g)) return bad(where, 'expected an object');
      checkKeys(
        g,
        ['name', 'kind', 'address', 'subnet', 'hairpin', 'lan', 'idleTimeout', 'loss', 'rate', 'functions', 'comment'],
        where,
        bad,
      );
      const name = checkName(g.name, where) ?? `?${i}`;
      const gw = where + ` (${name})`;
      const kind = g.kind;
      if (typeof kind !== 'string' || !(NAT_KINDS as readonly string[]).includes(kind))
        bad(gw, `kind must be one of ${NAT_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
      const subnet = typeof g.subnet === 'string' ? parseCidr(g.subnet) : undefined;
      if (!subnet) bad(gw, `subnet must be a private network like 10.1.0.0/24, got ${JSON.stringify(g.subnet)}`);
      else {
        if (!PRIVATE_RANGES.some((r) => cidrContains(parseCidr(r)!, subnet.network) && subnet.prefixLen >= parseCidr(r)!.prefixLen))
          bad(gw, `subnet ${subnet.text} is not inside a private range (${PRIVATE_RANGES.join(', ')})`);
        checkNotCgnat(subnet, gw, bad);
        if (internet && cidrsOverlap(subnet, internet)) bad(gw, `subnet ${subnet.text} overlaps the internet ${internet.text}`);
        if (subnet.prefixLen > 29) bad(gw, `subnet ${subnet.text} is too small (use /29 or larger)`);
      }
      const hairpin = optBool(g.hairpin, `${gw}.hairpin`, bad);
      const lan = optBool(g.lan, `${gw}.lan`, bad);
      if (hairpin && kind !== 'preserving') bad(gw, 'hairpin is implemented for preserving gateways only');
      const idleTimeout = g.idleTimeout;
      if (idleTimeout !== undefined && !isIdleTimeout(idleTimeout))
        bad(gw, `idleTimeout must be whole seconds in ${IDLE_TIMEOUT_RANGE.min}-${IDLE_TIMEOUT_RANGE.max}`);
      const loss = g.loss ?? 0;
      if (!isLoss(loss)) bad(gw, 'loss must be a percentage 0-100');
      const rate = g.rate;
      if (rate !== undefined && !isRate(rate)) bad(gw, `rate must be like "10mbit" or "512kbit", got ${JSON.stringify(rate)}`);

      const planned: PlannedGateway = {
        name,
        kind: kind as NatKind,
        address: '',
        subnet: subnet?.text ?? '',
        prefixLen: subnet?.prefixLen ?? 24,
        lanAddress: subnet ? formatIPv4(subnet.network + 1) : '',
        hairpin,
        lan,
        idleTimeout: isIdleTimeout(idleTimeout) ? idleTimeout : undefined,
        loss: isLoss(loss) ? loss : 0,
        rate: typeof rate === 'string' ? rate : undefined,
        functions: [],
      };
      gateways.push(planned);
      wantPublic.push({ where: gw, value: g.address, set: (a) => (planned.address = a) });

      const fns = g.functions;
      if (!Array.isArray(fns) || fns.length === 0) return bad(gw, 'functions must be a non-empty array of names');
      const space = kind === 'translating' ? TRANSLATE_SPACE : PORT_BLOCK_SPACE;
      const block = Math.floor((space.high - space.low + 1) / fns.length);
      if (block < MIN_PORT_BLOCK)
        bad(gw, `too many functions (${fns.length}): each needs a block of at least ${MIN_PORT_BLOCK} ports`);
      const privTaken = new Set<number>();
      if (subnet) privTaken.add(subnet.network + 1);
      const pending: { fn: PlannedFunction; value: unknown; where: string }[] = [];
      fns.forEach((f, j) => {
        const fw = `${gw}.functions[${j}]`;
        const spec = typeof f === 'string' ? { name: f } : f;
        if (!isObject(spec)) return bad(fw, 'expected a name or {name, address?}');
        checkKeys(spec, ['name', 'address', 'comment'], fw, bad);
        const fn: PlannedFunction = {
          name: checkName(spec.name, fw) ?? `?${j}`,
          gateway: name,
          address: '',
          portRange: { low: space.low + j * block, high: space.low + (j + 1) * block - 1 },
        };
        planned.functions.push(fn);
        pending.push({ fn, value: spec.address, where: fw });
      });
      if (!subnet) return;
      const inSubnet = (a: number) => cidrContains(subnet, a) && a !== subnet.network && a !== subnet.network + cidrSize(subnet) - 1;
      for (const p of pending) {
        if (p.value === undefined) continue;
        const a = typeof p.value === 'string' ? parseIPv4(p.value) : undefined;
        if (a === undefined || !inSubnet(a)) bad(p.where, `address ${JSON.stringify(p.value)} is not a host address in ${subnet.text}`);
        else if (privTaken.has(a)) bad(p.where, `address ${p.value} is taken (the gateway has ${formatIPv4(subnet.network + 1)})`);
        else {
          privTaken.add(a);
          p.fn.address = formatIPv4(a);
        }
      }
      let next = subnet.network + 2;
      for (const p of pending) {
        if (p.fn.address) continue;
        while (privTaken.has(next)) next++;
        if (!inSubnet(next)) {
          bad(p.where, `subnet ${subnet.text} has no free address left`);
          break;
        }
        privTaken.add(next);
        p.fn.address = formatIPv4(next);
      }
    });

  if (internet) {
    const inInternet = (a: number) => cidrContains(internet, a) && a !== internet.network && a !== internet.network + cidrSize(internet) - 1;
    for (const w of wantPublic) {
      if (w.value === undefined) continue;
      const a = typeof w.value === 'string' ? parseIPv4(w.value) : undefined;
      if (a === undefined || !inInternet(a)) bad(w.where, `address ${JSON.stringify(w.value)} is not a host address in ${internet.text}`);
      else if (publicTaken.has(a)) bad(w.where, `address ${w.value} is used twice`);
      else {
        publicTaken.add(a);
        w.set(formatIPv4(a));
      }
    }
    let next = internet.network + 2;
    for (const w of wantPublic) {
      if (w.value !== undefined) continue;
      while (publicTaken.has(next)) next++;
      publicTaken.add(next);
      w.set(formatIPv4(next));
    }
  }

  if (problems.length) throw new TopologyError(problems);
  return { internet: internet!.text, internetPrefixLen: internet!.prefixLen, hosts, gateways };
}

function checkKeys(o: Record<string, unknown>, allowed: string[], where: string, bad: (w: string, m: string) => void): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) bad(where, `unknown key "${k}" (allowed: ${allowed.join(', ')})`);
}

function checkNotCgnat(c: Cidr, where: string, bad: (w: string, m: string) => void): void {
  if (cidrsOverlap(c, parseCidr(CGNAT_RANGE)!))
    bad(where, `${c.text} overlaps ${CGNAT_RANGE}, which is kept for Boxer's virtual network`);
}

function optBool(v: unknown, where: string, bad: (w: string, m: string) => void): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') bad(where, 'expected true or false');
  return v === true;
}

export function isIdleTimeout(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= IDLE_TIMEOUT_RANGE.min && v <= IDLE_TIMEOUT_RANGE.max;
}
export function isLoss(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 100;
}
export function isRate(v: unknown): v is string {
  return typeof v === 'string' && RATE_RE.test(v) && parseFloat(v) > 0;
}

/** Where the default topology lives: the source file, read at run time from dist/overlay/../../overlay. */
export const DEFAULT_TOPOLOGY_FILE = path.resolve(__dirname, '..', '..', 'overlay', 'default-topology.json');

/** Reads and validates a topology file; errors name the file. */
export function loadTopologyFile(file: string = DEFAULT_TOPOLOGY_FILE): Topology {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new TopologyError([`${file}: cannot read: ${(e as Error).message}`]);
  }
  let json: Json;
  try {
    json = JSON.parse(text) as Json;
  } catch (e) {
    throw new TopologyError([`${file}: not valid JSON: ${(e as Error).message}`]);
  }
  try {
    planTopology(json);
  } catch (e) {
    if (e instanceof TopologyError) throw new TopologyError(e.problems.map((p) => `${file}: ${p}`));
    throw e;
  }
  return json as unknown as Topology;
}

/** The public port a function's local port appears as, when the NAT kind makes it predictable. */
export function predictPublicPort(kind: NatKind, localPort: number): number | undefined {
  switch (kind) {
    case 'preserving':
      return localPort;
    case 'translating':
      return localPort >= TRANSLATE_SPACE.low && localPort <= TRANSLATE_SPACE.high ? localPort ^ TRANSLATE_XOR : undefined;
    case 'random':
      return undefined;
  }
}
