/**
 * The brokers' messages to each other, carried as the opaque payload of the control plane's `vnet` message
 * (end-to-end encrypted on peer links, relays and the seed's forwarding). CBOR maps with a kind `k`:
 *
 * | k | fields | meaning |
 * |---|---|---|
 * | `open` | `cid`, `vport`, `cport`, `cext` (endpoint or null), `punch` (port or null) | a program of the sender connects to the receiver's `vport` from its virtual port `cport`, its socket seen at `cext`; with `punch`, bind that port and connect to `cext` (simultaneous open) |
 * | `result` | `cid`, `errno`, `more` (optional) | the outcome of a connection (0, ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH): from the far member for a punched one, from the relay for a relayed one (0 once the far member's connection reached it); `more`: further cids with the same outcome (a far member batches its successes, RESULT_BATCH_MS) |
 * | `relay-req` | `cid`, `to`, `vport`, `cport`, `ask` | to an `open` member: relay a connection from the sender to member `to`; `ask` is `relayAsk(...)` sealed by the sender for `to` (src/crypto/origin.ts) |
 * | `relay-ok` | `cid`, `port`, `ip`, `errno` | the relay's answer: where the client's program connects (`ip` empty: the address the client reaches the relay at) |
 * | `relay-open` | `cid`, `from`, `vport`, `cport`, `relay`, `token` (16 bytes), `ask` | to the far member: connect to the relay, send the token, hand the socket to the program on `vport`; only when `ask` opens as `from`'s seal of this very request through this relay |
 * | `relay-cancel` | `cid`, `errno` (optional) | to the relay: the client gave up, or (with `errno`: ECONNREFUSED, EHOSTUNREACH) the far member refused or cannot reach it; the relay resets the client's half and passes `errno` on to the client as a `result` |
 */
import { Encoder } from 'cbor-x';
import type { Endpoint } from '../wire/messages';
import type { Logger } from '../util/log';

/** Messages between the brokers of members (and the seed's relay), as in the table above. */
export type VnetMessage =
  | { k: 'open'; cid: string; vport: number; cport: number; cext: Endpoint | null; punch: number | null }
  | { k: 'result'; cid: string; errno: number; more?: string[] }
  | { k: 'relay-req'; cid: string; to: number; vport: number; cport: number; ask?: Uint8Array }
  | { k: 'relay-ok'; cid: string; port: number; ip: string; errno: number }
  | { k: 'relay-open'; cid: string; from: number; vport: number; cport: number; relay: Endpoint; token: Uint8Array; ask?: Uint8Array }
  | { k: 'relay-cancel'; cid: string; errno?: number };

/** One kind of broker message. */
export type VnetOf<K extends VnetMessage['k']> = Extract<VnetMessage, { k: K }>;

const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, structuredClone: false });

export function encodeVnet(m: VnetMessage): Uint8Array {
  return cbor.encode(m);
}

function port(v: unknown, what: string, allowNull = false): number | null {
  if (allowNull && (v === null || v === undefined)) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) throw new Error(`${what}: expected a port`);
  return v;
}

function endpoint(v: unknown): Endpoint | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'object') throw new Error('cext: expected an endpoint');
  const o = v as Record<string, unknown>;
  if (typeof o.ip !== 'string' || !/^\d{1,3}(\.\d{1,3}){3}$/.test(o.ip)) throw new Error('endpoint ip: expected an IPv4 address');
  return { ip: o.ip, port: port(o.port, 'cext.port') as number };
}

/** Decodes and validates a broker message; throws saying what is wrong. */
export function decodeVnet(bytes: Uint8Array): VnetMessage {
  let v: Record<string, unknown>;
  try {
    v = cbor.decode(bytes) as Record<string, unknown>;
  } catch (e) {
    // The CBOR decoder's own TypeError/RangeError on a cut or malformed input: ours, so callers see one kind.
    throw new Error(`not CBOR: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null) throw new Error('expected a map');
  if (typeof v.cid !== 'string' || v.cid.length > 64) throw new Error('cid: expected a short string');
  if (v.k === 'open') {
    return { k: 'open', cid: v.cid, vport: port(v.vport, 'vport') as number, cport: port(v.cport, 'cport') as number, cext: endpoint(v.cext), punch: port(v.punch, 'punch', true) };
  }
  const errno = () => {
    if (typeof v.errno !== 'number' || !Number.isInteger(v.errno) || v.errno < 0 || v.errno > 4095) throw new Error('errno: expected an errno');
    return v.errno;
  };
  const member = (x: unknown, what: string) => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 1) throw new Error(`${what}: expected a member id`);
    return x;
  };
  const ask = (x: unknown): { ask?: Uint8Array } => {
    if (x === undefined || x === null) return {};
    if (!(x instanceof Uint8Array) || x.length > MAX_ASK_BYTES) throw new Error('ask: expected at most 256 bytes');
    return { ask: new Uint8Array(x) };
  };
  switch (v.k) {
    case 'result': {
      if (v.more === undefined || v.more === null) return { k: 'result', cid: v.cid, errno: errno() };
      if (!Array.isArray(v.more) || v.more.length > MAX_MORE_CIDS || !v.more.every((c) => typeof c === 'string' && c.length <= 64)) throw new Error(`more: expected at most ${MAX_MORE_CIDS} short strings`);
      return { k: 'result', cid: v.cid, errno: errno(), more: v.more as string[] };
    }
    case 'relay-req':
      return { k: 'relay-req', cid: v.cid, to: member(v.to, 'to'), vport: port(v.vport, 'vport') as number, cport: port(v.cport, 'cport') as number, ...ask(v.ask) };
    case 'relay-ok': {
      const ip = v.ip === undefined || v.ip === '' ? '' : (endpoint({ ip: v.ip, port: 0 }) as Endpoint).ip;
      return { k: 'relay-ok', cid: v.cid, port: port(v.port, 'port') as number, ip, errno: errno() };
    }
    case 'relay-open': {
      const relay = endpoint(v.relay);
      if (!relay) throw new Error('relay: expected an endpoint');
      if (!(v.token instanceof Uint8Array) || v.token.length !== 16) throw new Error('token: expected 16 bytes');
      return { k: 'relay-open', cid: v.cid, from: member(v.from, 'from'), vport: port(v.vport, 'vport') as number, cport: port(v.cport, 'cport') as number, relay, token: new Uint8Array(v.token), ...ask(v.ask) };
    }
    case 'relay-cancel':
      return v.errno === undefined || v.errno === null ? { k: 'relay-cancel', cid: v.cid } : { k: 'relay-cancel', cid: v.cid, errno: errno() };
  }
  throw new Error(`unknown kind ${JSON.stringify(v.k)}`);
}

/** Bound on the further cids of one `result` (RESULT_BATCH_MAX, with room). */
const MAX_MORE_CIDS = 256;

/** Bound on a sealed relay ask (nonce 24 + MAC 16 + the text of relayAsk, well under 100 bytes). */
const MAX_ASK_BYTES = 256;

/**
 * What the client of a relayed connection seals for the far member (crypto_box under the two static keys): the
 * connection id, the far member, both ports and the relay it asked (SEED for the seed). The far member accepts a
 * relay-open only if its `ask` opens as the client's seal of exactly these: a relay can carry a connection, not
 * invent one from a member that did not ask for it, nor move it to another port.
 */
export function relayAsk(cid: string, to: number, vport: number, cport: number, relay: number): Uint8Array {
  return new TextEncoder().encode(`relay-ask ${cid} ${to} ${vport} ${cport} ${relay}`);
}

/** Decodes a broker message from member `from` and hands it to `fn`; a malformed one is logged and dropped. */
export function receiveVnet(from: number, payload: Uint8Array, fn: (from: number, m: VnetMessage) => void, log: Logger): void {
  let m: VnetMessage;
  try {
    m = decodeVnet(payload);
  } catch (e) {
    log.warn('malformed connection message from a member: ignored', { from, reason: (e as Error).message });
    return;
  }
  fn(from, m);
}
