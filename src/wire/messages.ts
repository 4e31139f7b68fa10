/**
 * Control-plane messages: their types, their CBOR encoding, and the one decoder that validates untrusted
 * input before anything else sees it. Every message is a CBOR map with a string field `t` (its type).
 * docs/protocol.md lists them with their meaning; keep the two in step.
 */
import { Encoder } from 'cbor-x';
import { MAX_CANDIDATES, MAX_SERVICES, NAME_RE, MAX_MEMBERS_PER_MESSAGE, MAX_PAYLOAD } from '../constants';

/** cbor-x without its record extension: plain, stateless maps, decodable by any CBOR implementation. */
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, structuredClone: false });

export interface Endpoint { ip: string; port: number }

/** What NAT discovery concluded about a member (the names the lab uses). */
export type NatKind = 'open' | 'preserving' | 'translating' | 'random' | 'unknown';
export const NAT_KINDS: readonly NatKind[] = ['open', 'preserving', 'translating', 'random', 'unknown'];

export interface MemberInfo {
  id: number;
  name: string;
  /** Virtual IPv4 address. */
  addr: string;
  services: string[];
  /** External address and port the seed saw the member's control connection come from. */
  ext: Endpoint | null;
  /** Private address candidates (for members behind the same NAT). */
  priv: Endpoint[];
  nat: NatKind;
  /** The member's static X25519 public key (32 bytes), as authenticated by its handshake with the seed. */
  key: Uint8Array;
  /** Local TCP port of its peer-link listener (0 or absent: none). Reachable at ext.ip when `open`, at priv on a LAN. */
  lport?: number;
  /** How its NAT maps local ports, for the data path's punched connections (absent: unknown). */
  map?: PortMap;
  /**
   * It provides `services` but takes no connections for them now: its program does not listen yet, or it is
   * draining before it leaves (src/vnet/services.ts). Absent: it takes them.
   */
  standby?: boolean;
}

/**
 * A member's port mapping: its NAT's external port for local port p is `(p ^ xor) + offset` (both 0 for a
 * port-preserving NAT or none), and its local ports are in [lo, hi] (its ip_local_port_range), so another
 * member can predict where to find a socket it asks this member to bind.
 */
export interface PortMap {
  xor: number;
  offset: number;
  lo: number;
  hi: number;
  /**
   * Its ip_local_port_range, where the local ports of its own client sockets lie (the shim's and the kernel's
   * choices), so that a member it connects to directly can tell its connections from a stranger's behind the
   * same NAT address (src/vnet/sources.ts). Absent (older members): any port.
   */
  rlo?: number;
  rhi?: number;
}

/** How a peer link reaches the other member (docs/nat-traversal.md). */
export type PathKind = 'direct' | 'punched' | 'lan' | 'hairpin' | 'relay';
export const PATH_KINDS: readonly PathKind[] = ['direct', 'punched', 'lan', 'hairpin', 'relay'];
/** Steps of the punch coordination (src/traversal/punch.ts). */
export type PunchPhase = 'req' | 'ack' | 'dial' | 'fail';
const PUNCH_PHASES: readonly PunchPhase[] = ['req', 'ack', 'dial', 'fail'];

/** What a reconnecting member holds: a claim, checked against the binding of its key (src/control/bindings.ts). */
export interface Rejoin {
  id: number;
  addr: string;
  name: string;
}

/**
 * Which member of which `boxer lambda run` a joining agent is: the seed admits one join per key, so that a
 * duplicate delivery of the same invocation does not add a second member.
 */
export interface RunKey {
  /** The run's id: 1-64 characters of [A-Za-z0-9._-]. */
  id: string;
  /** The member's index in the run, 0-based. */
  index: number;
}
export const RUN_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;
/** Largest member index of a run (an invocation per member: far above any account's concurrency). */
export const MAX_RUN_INDEX = 1_000_000;

export type Message =
  | { t: 'join'; name?: string; services: string[]; priv: Endpoint[]; nat: NatKind; rejoin?: Rejoin; lport?: number; map?: PortMap; run?: RunKey; standby?: boolean }
  | { t: 'welcome'; id: number; addr: string; name: string; network: string; observed: Endpoint; members: MemberInfo[]; relearning: boolean }
  | { t: 'joined'; m: MemberInfo }
  /** Seed -> members: several members joined (or changed) at once: `joined` for each, in one message. */
  | { t: 'joins'; members: MemberInfo[] }
  | { t: 'left'; id: number; reason: 'leave' | 'dead' }
  | { t: 'members'; members: MemberInfo[] }
  | { t: 'ping'; n: number }
  | { t: 'pong'; n: number }
  | { t: 'leave'; outcome?: Outcome }
  /** Agent -> seed: my services are now these (e.g. none, to drain before leaving); the seed re-announces me (`joined`). */
  | { t: 'services'; services: string[]; standby?: boolean }
  /** Agent -> seed, after the welcome: NAT discovery concluded `nat` since the join (the connect-back came through: `open`); the seed re-announces me. */
  | { t: 'nat'; nat: NatKind }
  | { t: 'error'; code: string; message: string }
  // ---- observers (src/control/watch.ts): `boxer lambda run` follows a run's members without joining ----
  /** Observer -> seed, instead of `join`: report members (of run `run`, or all) as they join and leave. */
  | { t: 'watch'; run?: string }
  /** Seed -> observer: a member present when watching began or joined since (`joined`), or one that left. */
  | { t: 'watched'; ev: 'joined' | 'left'; id: number; name: string; addr: string; run?: string; index?: number; reason?: 'leave' | 'dead'; outcome?: Outcome }
  // ---- NAT traversal (src/traversal, docs/nat-traversal.md) ----
  /** Agent -> seed (either port), before join: reflect my endpoint; `listen` > 0 asks for a connect-back test. */
  | { t: 'probe'; listen: number }
  /** Seed -> agent: the endpoint the probe came from; `open` when the connect-back test succeeded; on the control port, `dport` is the discovery port. */
  | { t: 'reflect'; observed: Endpoint; open: boolean; dport?: number }
  /** First message each way on a peer link: who I am (checked against my key), the path, a home link? */
  | { t: 'hello'; id: number; path: PathKind | 'probe'; home: boolean }
  /** A message for member `to`, carried by the seed or a member both are linked to; `from` set by the carrier. */
  | { t: 'fwd'; to: number; from: number; body: Uint8Array }
  /** Link set-up signalling (carried in `fwd` or on a link). */
  | { t: 'punch'; sid: number; phase: PunchPhase; ep: Endpoint | null; path: PathKind }
  /**
   * Bytes of an end-to-end encrypted inner link carried through a relay. `hop`: to the relay, "carry this to
   * member `peer`"; from the relay (hop false), "this comes from member `peer`". The seed always carries.
   */
  | { t: 'relay'; peer: number; sid: number; data: Uint8Array; end: boolean; hop: boolean }
  /** An opaque payload of the virtual-network layer. */
  | { t: 'vnet'; payload: Uint8Array }
  /** A broker's message to or from the seed's relay of program connections (src/vnet/seed-relay.ts). */
  | { t: 'svnet'; payload: Uint8Array };

/** How a member's command ended, told to the seed in `leave` and passed on to observers. */
export interface Outcome {
  /** The command's exit status (null: killed by a signal, or never started). */
  code: number | null;
  /** The signal that ended it, e.g. `SIGTERM` (null: it exited). */
  signal: string | null;
  /** Why it ended: `exited` (by itself), `deadline` (stopped before the function's deadline), or another short word. */
  reason: string;
}

export class MessageError extends Error {
  override name = 'MessageError';
}

export function encodeMessage(m: Message): Uint8Array {
  return cbor.encode(m);
}

type Welcome = Extract<Message, { t: 'welcome' }>;

/** The CBOR of a member list, to share among the welcomes of one batch (encodeWelcome). */
export function encodeMembers(members: MemberInfo[]): Uint8Array {
  return cbor.encode(members);
}

/**
 * A welcome whose member list is already encoded (encodeMembers): the same bytes as encodeMessage of the
 * whole welcome, without encoding the list again for each newcomer. The map is encoded with `members` last,
 * as null (one byte, 0xf6), which the list's bytes then replace.
 */
export function encodeWelcome(w: Omit<Welcome, 'members'>, members: Uint8Array): Uint8Array {
  const head = cbor.encode({ ...w, members: null });
  if (head[head.length - 1] !== 0xf6) throw new Error('encodeWelcome: the encoder did not put members last');
  const out = new Uint8Array(head.length - 1 + members.length);
  out.set(head.subarray(0, head.length - 1), 0);
  out.set(members, head.length - 1);
  return out;
}

// ---- validation -----------------------------------------------------------------------------------------
type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}
function str(o: Obj, k: string, max = 256): string {
  const v = o[k];
  if (typeof v !== 'string' || v.length > max) throw new MessageError(`field ${k}: expected a string of at most ${max} characters`);
  return v;
}
function optStr(o: Obj, k: string, max = 256): string | undefined {
  return o[k] === undefined || o[k] === null ? undefined : str(o, k, max);
}
function int(o: Obj, k: string, min = 0, max = 2 ** 32 - 1): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new MessageError(`field ${k}: expected an integer in [${min}, ${max}]`);
  }
  return v;
}
function arr(o: Obj, k: string, max: number): unknown[] {
  const v = o[k];
  if (!Array.isArray(v) || v.length > max) throw new MessageError(`field ${k}: expected a list of at most ${max} items`);
  return v;
}
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
function ipv4(o: Obj, k: string): string {
  const v = str(o, k, 15);
  if (!IPV4_RE.test(v)) throw new MessageError(`field ${k}: expected an IPv4 address`);
  return v;
}
function endpoint(v: unknown, what: string): Endpoint {
  if (!isObj(v)) throw new MessageError(`${what}: expected an endpoint`);
  return { ip: ipv4(v, 'ip'), port: int(v, 'port', 0, 65535) };
}
function natKind(o: Obj, k: string): NatKind {
  const v = o[k];
  if (typeof v !== 'string' || !(NAT_KINDS as readonly string[]).includes(v)) throw new MessageError(`field ${k}: unknown NAT kind`);
  return v as NatKind;
}
function strings(o: Obj, k: string, max: number): string[] {
  return arr(o, k, max).map((s, i) => {
    if (typeof s !== 'string' || s.length > 63) throw new MessageError(`field ${k}[${i}]: expected a name`);
    return s;
  });
}
/** A name another member announces: a lowercase DNS label, or the message is refused (it reaches files and routes). */
function label(v: unknown, what: string): string {
  if (typeof v !== 'string' || !NAME_RE.test(v)) throw new MessageError(`${what}: expected a name (a lowercase DNS label)`);
  return v;
}
function portMap(v: unknown): PortMap | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw new MessageError('map: expected a map');
  const m = { xor: int(v, 'xor', 0, 65535), offset: int(v, 'offset', -65535, 65535), lo: int(v, 'lo', 1, 65535), hi: int(v, 'hi', 1, 65535) };
  if (m.lo > m.hi) throw new MessageError('map: lo above hi');
  if (v.rlo === undefined && v.rhi === undefined) return m;
  const r = { rlo: int(v, 'rlo', 1, 65535), rhi: int(v, 'rhi', 1, 65535) };
  if (r.rlo > r.rhi) throw new MessageError('map: rlo above rhi');
  return { ...m, ...r };
}

function runKey(v: unknown): RunKey {
  if (!isObj(v)) throw new MessageError('run: expected a map');
  const id = str(v, 'id', 64);
  if (!RUN_ID_RE.test(id)) throw new MessageError('run id: expected 1-64 characters of A-Z a-z 0-9 . _ -');
  return { id, index: int(v, 'index', 0, MAX_RUN_INDEX) };
}

/** A member, validated, its key copied to `keys` at `at`: no closures, spreads or buffer each (issue 15: all decode all). */
function member(v: unknown, keys: Uint8Array = new Uint8Array(32), at = 0): MemberInfo {
  if (!isObj(v)) throw new MessageError('member: expected a map');
  const key = v.key;
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new MessageError('member key: expected 32 bytes');
  const services = arr(v, 'services', MAX_SERVICES), svc: string[] = new Array(services.length);
  for (let i = 0; i < services.length; i++) svc[i] = label(services[i], 'member service');
  const priv = arr(v, 'priv', MAX_CANDIDATES), pv: Endpoint[] = new Array(priv.length);
  for (let i = 0; i < priv.length; i++) pv[i] = endpoint(priv[i], 'member priv');
  keys.set(key, at);
  const m: MemberInfo = {
    id: int(v, 'id', 1),
    name: label(v.name, 'member name'),
    addr: ipv4(v, 'addr'),
    services: svc,
    ext: v.ext === null || v.ext === undefined ? null : endpoint(v.ext, 'member ext'),
    priv: pv,
    nat: natKind(v, 'nat'),
    key: keys.subarray(at, at + 32),
    lport: v.lport === undefined || v.lport === null ? 0 : int(v, 'lport', 0, 65535),
    map: portMap(v.map),
  };
  if (v.standby === true) m.standby = true;
  return m;
}
/** A list of members (welcome, joins, members), their keys in one buffer: fewer buffers for the GC to track. */
function memberList(o: Obj): MemberInfo[] {
  const list = arr(o, 'members', MAX_MEMBERS_PER_MESSAGE);
  const keys = new Uint8Array(32 * list.length);
  const out: MemberInfo[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) out[i] = member(list[i], keys, 32 * i);
  return out;
}
function blob(o: Obj, k: string, max: number): Uint8Array {
  const v = o[k];
  if (!(v instanceof Uint8Array) || v.length > max) throw new MessageError(`field ${k}: expected at most ${max} bytes`);
  return new Uint8Array(v);
}
function oneOf<T extends string>(o: Obj, k: string, allowed: readonly T[]): T {
  const v = o[k];
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) throw new MessageError(`field ${k}: expected one of ${allowed.join(', ')}`);
  return v as T;
}
function outcome(v: unknown): Outcome {
  if (!isObj(v)) throw new MessageError('outcome: expected a map');
  return {
    code: v.code === null || v.code === undefined ? null : int(v, 'code', 0, 255),
    signal: v.signal === null || v.signal === undefined ? null : str(v, 'signal', 16),
    reason: str(v, 'reason', 32),
  };
}

/**
 * Decodes and validates one message. Throws MessageError saying what is wrong. Long because it is a table: one
 * case a message type, each a few field checks (the field helpers above do the work).
 */
export function decodeMessage(bytes: Uint8Array): Message {
  let v: unknown;
  try {
    v = cbor.decode(bytes);
  } catch (e) {
    throw new MessageError(`not valid CBOR (${(e as Error).message})`);
  }
  if (!isObj(v)) throw new MessageError('expected a CBOR map');
  const t = v.t;
  switch (t) {
    case 'join': {
      let rejoin: Rejoin | undefined;
      if (v.rejoin !== undefined && v.rejoin !== null) {
        if (!isObj(v.rejoin)) throw new MessageError('rejoin: expected a map');
        const r = v.rejoin;
        rejoin = { id: int(r, 'id', 1), addr: ipv4(r, 'addr'), name: str(r, 'name', 63) };
      }
      return {
        t,
        name: optStr(v, 'name', 63),
        services: strings(v, 'services', MAX_SERVICES),
        priv: arr(v, 'priv', MAX_CANDIDATES).map((e) => endpoint(e, 'priv')),
        nat: natKind(v, 'nat'),
        rejoin,
        lport: v.lport === undefined || v.lport === null ? undefined : int(v, 'lport', 0, 65535),
        map: portMap(v.map),
        ...(v.run === undefined || v.run === null ? {} : { run: runKey(v.run) }),
        ...(v.standby === true ? { standby: true } : {}),
      };
    }
    case 'welcome':
      return {
        t,
        id: int(v, 'id', 1),
        addr: ipv4(v, 'addr'),
        name: label(v.name, 'name'),
        network: str(v, 'network', 18),
        observed: endpoint(v.observed, 'observed'),
        members: memberList(v),
        relearning: v.relearning === true,
      };
    case 'joined':
      return { t, m: member(v.m) };
    case 'joins':
      return { t, members: memberList(v) };
    case 'left': {
      const reason = v.reason;
      if (reason !== 'leave' && reason !== 'dead') throw new MessageError('field reason: expected leave or dead');
      return { t, id: int(v, 'id', 1), reason };
    }
    case 'members':
      return { t, members: memberList(v) };
    case 'ping':
    case 'pong':
      return { t, n: int(v, 'n') };
    case 'leave':
      return v.outcome === undefined || v.outcome === null ? { t } : { t, outcome: outcome(v.outcome) };
    case 'watch':
      return { t, run: optStr(v, 'run', 64) };
    case 'watched': {
      const ev = oneOf(v, 'ev', ['joined', 'left'] as const);
      return {
        t,
        ev,
        id: int(v, 'id', 1),
        name: str(v, 'name', 63),
        addr: ipv4(v, 'addr'),
        run: optStr(v, 'run', 64),
        index: v.index === undefined || v.index === null ? undefined : int(v, 'index'),
        reason: v.reason === undefined || v.reason === null ? undefined : oneOf(v, 'reason', ['leave', 'dead'] as const),
        outcome: v.outcome === undefined || v.outcome === null ? undefined : outcome(v.outcome),
      };
    }
    case 'services':
      return { t, services: arr(v, 'services', MAX_SERVICES).map((s, i) => label(s, `services[${i}]`)), ...(v.standby === true ? { standby: true } : {}) };
    case 'nat':
      return { t, nat: natKind(v, 'nat') };
    case 'error':
      return { t, code: str(v, 'code', 64), message: str(v, 'message', 1024) };
    case 'probe':
      return { t, listen: int(v, 'listen', 0, 65535) };
    case 'reflect':
      return { t, observed: endpoint(v.observed, 'observed'), open: v.open === true, dport: v.dport === undefined || v.dport === null ? undefined : int(v, 'dport', 1, 65535) };
    case 'hello':
      return { t, id: int(v, 'id'), path: oneOf(v, 'path', [...PATH_KINDS, 'probe'] as const), home: v.home === true };
    case 'fwd':
      return { t, to: int(v, 'to', 1), from: int(v, 'from'), body: blob(v, 'body', MAX_PAYLOAD + 1024) };
    case 'punch':
      return {
        t,
        sid: int(v, 'sid'),
        phase: oneOf(v, 'phase', PUNCH_PHASES),
        ep: v.ep === null || v.ep === undefined ? null : endpoint(v.ep, 'ep'),
        path: oneOf(v, 'path', PATH_KINDS),
      };
    case 'relay':
      return { t, peer: int(v, 'peer', 1), sid: int(v, 'sid'), data: blob(v, 'data', MAX_PAYLOAD), end: v.end === true, hop: v.hop === true };
    case 'vnet':
    case 'svnet':
      return { t, payload: blob(v, 'payload', MAX_PAYLOAD) };
    default:
      throw new MessageError(`unknown message type ${JSON.stringify(t)}`);
  }
}
