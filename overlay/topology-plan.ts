/**
 * Validates a topology (untrusted JSON: a parsed topology file) and derives its plan: every host's, gateway's
 * and function's address, and each function's port block. Every problem is reported, not only the first, each
 * naming where it is. Pure code, unit-tested without root; the format is topology.ts and docs/lab.md.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatIPv4, parseIPv4 } from '../src/util/ipv4';
import { cidrContains, cidrSize, cidrsOverlap, parseCidr, type Cidr } from './cidr';
import {
  CGNAT_RANGE,
  DEFAULT_INTERNET,
  IDLE_TIMEOUT_RANGE,
  isIdleTimeout,
  isLoss,
  isRate,
  MIN_PORT_BLOCK,
  NAT_KINDS,
  NODE_NAME_RE,
  PORT_BLOCK_SPACE,
  PRIVATE_RANGES,
  RESERVED_NAMES,
  TopologyError,
  TRANSLATE_SPACE,
  type NatKind,
  type Plan,
  type PlannedFunction,
  type PlannedGateway,
  type PlannedHost,
  type Topology,
} from './topology';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Bad = (where: string, msg: string) => void;

/** An address asked for (`value`, or undefined: any free one) and where it goes once assigned. */
interface Wanted {
  where: string;
  value: unknown;
  set: (a: string) => void;
}

/** What planning a gateway shares with the whole topology. */
interface PlanContext {
  internet: Cidr | undefined;
  /** Checks a node name (pattern, reserved, unique across the topology); undefined when bad. */
  checkName: (v: unknown, where: string) => string | undefined;
  bad: Bad;
  /** Public addresses to assign once every node is known. */
  wantPublic: Wanted[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Validates untrusted JSON (a parsed topology file) and returns the plan, or throws a TopologyError listing
 * every problem found (not only the first), each naming where it is.
 */
export function planTopology(input: unknown): Plan {
  const problems: string[] = [];
  const bad: Bad = (where, msg) => problems.push(`${where}: ${msg}`);

  if (!isObject(input)) throw new TopologyError(['the topology must be a JSON object']);
  checkKeys(input, ['internet', 'hosts', 'gateways', 'comment'], 'topology', bad);

  const internetText = input.internet === undefined ? DEFAULT_INTERNET : input.internet;
  const internet = typeof internetText === 'string' ? parseCidr(internetText) : undefined;
  if (!internet) bad('internet', `expected a network like ${DEFAULT_INTERNET}, got ${JSON.stringify(internetText)}`);
  else checkNotCgnat(internet, 'internet', bad);

  // Public addresses: explicit ones first, then fill the gaps in order.
  const ctx: PlanContext = { internet, checkName: nameChecker(bad), bad, wantPublic: [] };
  const hosts = planHosts(input.hosts, ctx);
  const gateways: PlannedGateway[] = [];
  const gwList = input.gateways;
  if (!Array.isArray(gwList)) bad('gateways', 'expected an array of gateways');
  else gwList.forEach((g, i) => planGateway(g, i, gateways, ctx));
  if (internet) assignPublic(internet, ctx.wantPublic, bad);

  if (problems.length) throw new TopologyError(problems);
  return { internet: internet!.text, internetPrefixLen: internet!.prefixLen, hosts, gateways };
}

/** Node names: valid, not reserved, unique across hosts, gateways and functions. */
function nameChecker(bad: Bad): PlanContext['checkName'] {
  const names = new Set<string>();
  return (v, where) => {
    if (typeof v !== 'string' || !NODE_NAME_RE.test(v)) {
      bad(where, `name ${JSON.stringify(v)} must match ${NODE_NAME_RE} (interface names are at most 15 characters)`);
      return undefined;
    }
    if (RESERVED_NAMES.has(v)) bad(where, `name "${v}" is reserved by the lab`);
    if (names.has(v)) bad(where, `name "${v}" is used twice (names are unique across hosts, gateways and functions)`);
    names.add(v);
    return v;
  };
}

function planHosts(hostList: unknown, ctx: PlanContext): PlannedHost[] {
  const hosts: PlannedHost[] = [];
  if (!Array.isArray(hostList)) {
    ctx.bad('hosts', 'expected an array of {name, address?}');
    return hosts;
  }
  hostList.forEach((h, i) => {
    const where = `hosts[${i}]`;
    if (!isObject(h)) return ctx.bad(where, 'expected an object {name, address?}');
    checkKeys(h, ['name', 'address', 'comment'], where, ctx.bad);
    const host: PlannedHost = { name: ctx.checkName(h.name, where) ?? `?${i}`, address: '' };
    hosts.push(host);
    ctx.wantPublic.push({ where, value: h.address, set: (a) => (host.address = a) });
  });
  return hosts;
}

/** Validates gateway `i` and adds its plan (its functions included) to `gateways`. */
function planGateway(g: unknown, i: number, gateways: PlannedGateway[], ctx: PlanContext): void {
  const { bad } = ctx;
  const where = `gateways[${i}]`;
  if (!isObject(g)) return bad(where, 'expected an object');
  checkKeys(g, ['name', 'kind', 'address', 'subnet', 'hairpin', 'lan', 'idleTimeout', 'loss', 'rate', 'functions', 'comment'], where, bad);
  const name = ctx.checkName(g.name, where) ?? `?${i}`;
  const gw = where + ` (${name})`;
  const kind = g.kind;
  if (typeof kind !== 'string' || !(NAT_KINDS as readonly string[]).includes(kind))
    bad(gw, `kind must be one of ${NAT_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
  const subnet = checkSubnet(g.subnet, gw, ctx);
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
  ctx.wantPublic.push({ where: gw, value: g.address, set: (a) => (planned.address = a) });
  planFunctions(g.functions, planned, subnet, gw, ctx);
}

/** A gateway's private subnet: inside an RFC 1918 range, clear of the internet and of Boxer's range. */
function checkSubnet(v: unknown, gw: string, ctx: PlanContext): Cidr | undefined {
  const { bad, internet } = ctx;
  const subnet = typeof v === 'string' ? parseCidr(v) : undefined;
  if (!subnet) {
    bad(gw, `subnet must be a private network like 10.1.0.0/24, got ${JSON.stringify(v)}`);
    return undefined;
  }
  if (!PRIVATE_RANGES.some((r) => cidrContains(parseCidr(r)!, subnet.network) && subnet.prefixLen >= parseCidr(r)!.prefixLen))
    bad(gw, `subnet ${subnet.text} is not inside a private range (${PRIVATE_RANGES.join(', ')})`);
  checkNotCgnat(subnet, gw, bad);
  if (internet && cidrsOverlap(subnet, internet)) bad(gw, `subnet ${subnet.text} overlaps the internet ${internet.text}`);
  if (subnet.prefixLen > 29) bad(gw, `subnet ${subnet.text} is too small (use /29 or larger)`);
  return subnet;
}

/** The functions behind a gateway: names, a port block each (by the NAT kind), private addresses. */
function planFunctions(fns: unknown, planned: PlannedGateway, subnet: Cidr | undefined, gw: string, ctx: PlanContext): void {
  const { bad } = ctx;
  if (!Array.isArray(fns) || fns.length === 0) return bad(gw, 'functions must be a non-empty array of names');
  const space = planned.kind === 'translating' ? TRANSLATE_SPACE : PORT_BLOCK_SPACE;
  const block = Math.floor((space.high - space.low + 1) / fns.length);
  if (block < MIN_PORT_BLOCK) bad(gw, `too many functions (${fns.length}): each needs a block of at least ${MIN_PORT_BLOCK} ports`);
  const pending: { fn: PlannedFunction; value: unknown; where: string }[] = [];
  fns.forEach((f, j) => {
    const fw = `${gw}.functions[${j}]`;
    const spec = typeof f === 'string' ? { name: f } : f;
    if (!isObject(spec)) return bad(fw, 'expected a name or {name, address?}');
    checkKeys(spec, ['name', 'address', 'comment'], fw, bad);
    const fn: PlannedFunction = {
      name: ctx.checkName(spec.name, fw) ?? `?${j}`,
      gateway: planned.name,
      address: '',
      portRange: { low: space.low + j * block, high: space.low + (j + 1) * block - 1 },
    };
    planned.functions.push(fn);
    pending.push({ fn, value: spec.address, where: fw });
  });
  if (subnet) assignPrivate(subnet, pending.map((p) => ({ where: p.where, value: p.value, set: (a) => (p.fn.address = a) })), bad);
}

/** Private addresses behind a gateway (which has the subnet's first): explicit ones, then the free ones in order. */
function assignPrivate(subnet: Cidr, wanted: Wanted[], bad: Bad): void {
  const taken = new Set<number>([subnet.network + 1]);
  const assigned = new Set<Wanted>();
  const inSubnet = (a: number) => cidrContains(subnet, a) && a !== subnet.network && a !== subnet.network + cidrSize(subnet) - 1;
  for (const w of wanted) {
    if (w.value === undefined) continue;
    const a = typeof w.value === 'string' ? parseIPv4(w.value) : undefined;
    if (a === undefined || !inSubnet(a)) bad(w.where, `address ${JSON.stringify(w.value)} is not a host address in ${subnet.text}`);
    else if (taken.has(a)) bad(w.where, `address ${w.value} is taken (the gateway has ${formatIPv4(subnet.network + 1)})`);
    else {
      taken.add(a);
      assigned.add(w);
      w.set(formatIPv4(a));
    }
  }
  let next = subnet.network + 2;
  for (const w of wanted) {
    if (assigned.has(w)) continue;
    while (taken.has(next)) next++;
    if (!inSubnet(next)) {
      bad(w.where, `subnet ${subnet.text} has no free address left`);
      break;
    }
    taken.add(next);
    w.set(formatIPv4(next));
  }
}

/** Public addresses on the internet: explicit ones first, then the free ones in order. */
function assignPublic(internet: Cidr, wanted: Wanted[], bad: Bad): void {
  const taken = new Set<number>();
  const inInternet = (a: number) => cidrContains(internet, a) && a !== internet.network && a !== internet.network + cidrSize(internet) - 1;
  for (const w of wanted) {
    if (w.value === undefined) continue;
    const a = typeof w.value === 'string' ? parseIPv4(w.value) : undefined;
    if (a === undefined || !inInternet(a)) bad(w.where, `address ${JSON.stringify(w.value)} is not a host address in ${internet.text}`);
    else if (taken.has(a)) bad(w.where, `address ${w.value} is used twice`);
    else {
      taken.add(a);
      w.set(formatIPv4(a));
    }
  }
  let next = internet.network + 2;
  for (const w of wanted) {
    if (w.value !== undefined) continue;
    while (taken.has(next)) next++;
    taken.add(next);
    w.set(formatIPv4(next));
  }
}

function checkKeys(o: Record<string, unknown>, allowed: string[], where: string, bad: Bad): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) bad(where, `unknown key "${k}" (allowed: ${allowed.join(', ')})`);
}

function checkNotCgnat(c: Cidr, where: string, bad: Bad): void {
  if (cidrsOverlap(c, parseCidr(CGNAT_RANGE)!)) bad(where, `${c.text} overlaps ${CGNAT_RANGE}, which is kept for Boxer's virtual network`);
}

function optBool(v: unknown, where: string, bad: Bad): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') bad(where, 'expected true or false');
  return v === true;
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
