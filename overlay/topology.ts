/**
 * The lab's declarative topology: the JSON format (hosts on the emulated internet, NAT gateways and the
 * functions behind them), its validation with errors a person can fix, and the plan derived from it (every
 * address, interface name and port block the lab will create). Pure code: nothing here touches the kernel, so
 * it is unit-tested without root. The format is documented in docs/lab.md. This file holds the format and the
 * plan's types; topology-plan.ts validates a topology and derives its plan, ipv4.ts does the address arithmetic.
 */


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
export const CGNAT_RANGE = '100.64.0.0/10';
export const PRIVATE_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'];

/**
 * Node names: short, because a node's namespace is `<prefix>-<name>` and every Linux interface name derived
 * from it must fit IFNAMSIZ (15 characters). With a 6-character prefix, 8 characters keep `bxab12-fnname12`
 * at 15.
 */
export const NODE_NAME_RE = /^[a-z][a-z0-9]{0,7}$/;
/** Names the lab uses itself: `net` is the namespace holding the internet bridge. */
export const RESERVED_NAMES = new Set(['net']);

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
export const MIN_PORT_BLOCK = 1024;
/** conntrack's own limits for nf_conntrack_tcp_timeout_established: 1 s up to the 5-day default. */
export const IDLE_TIMEOUT_RANGE = { min: 1, max: 432000 } as const;
const RATE_RE = /^[0-9]+(\.[0-9]+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$/;

export class TopologyError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid topology:\n  - ${problems.join('\n  - ')}`);
    this.name = 'TopologyError';
  }
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

export function isIdleTimeout(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= IDLE_TIMEOUT_RANGE.min && v <= IDLE_TIMEOUT_RANGE.max;
}
export function isLoss(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 100;
}
export function isRate(v: unknown): v is string {
  return typeof v === 'string' && RATE_RE.test(v) && parseFloat(v) > 0;
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
