/**
 * How a member's programs reach each other member: the route, decided from both NAT kinds and the peer link's
 * path, and written for the shim as the route table (docs/shim-protocol.md, "The route table").
 *
 * | far member | route |
 * |---|---|
 * | this member | `self` (the shim connects over loopback) |
 * | `open`, and we are behind a `random` or `unknown` NAT (not on loopback) | `agent`: the far member relays its own connection |
 * | `open`, or `unknown` (no NAT discovery: a network on one host) | `direct` to its public address |
 * | same NAT as us, link path `lan` | `direct` to its private address |
 * | behind a predictable NAT (`preserving`, `translating`), we predictable too | `punch` |
 * | anything else (a `random` NAT on either side, same NAT without a LAN) | `agent`: the broker relays |
 *
 * A `direct` route to a public address is written `direct-quiet` when we are an `open` member alone at our
 * address (broker.ts, Broker.routes): the far side then names our connections by our address, so the agent needs no
 * word of them and the shim sends none.
 */
import type { MemberInfo, NatKind, PathKind } from '../wire/messages';

export type Route =
  | { kind: 'self' }
  | { kind: 'direct'; ip: string; quiet?: boolean }
  | { kind: 'punch'; ip: string; xor: number; offset: number; lo: number; hi: number }
  | { kind: 'agent' }
  | { kind: 'none' };

/** NAT kinds whose external port for a local port can be predicted. */
export function predictable(k: NatKind): boolean {
  return k === 'open' || k === 'preserving' || k === 'translating';
}

/** The far NAT's external port for local port `m` under a route's mapping. */
export function mappedPort(r: { xor: number; offset: number }, m: number): number {
  return ((m ^ r.xor) + r.offset) & 0xffff;
}

/** A uniformly random port in [lo, hi]. */
export function pickPort(lo: number, hi: number): number {
  return lo + Math.floor(Math.random() * (hi - lo + 1));
}

/**
 * Whether `m`'s direct connections to an open member could not be told from anyone else's behind its NAT: its
 * NAT maps each connection to a port nobody can predict (`random`; `unknown`: not discovered), so neither its
 * address nor a port block names it. Such connections go through the open member's own relay instead (the
 * far member's agent connects the program's side itself, with a token, and hands it over named: sealed `ask`),
 * docs/virtual-network.md. On loopback (a network on one host) every member is told apart by its agent.
 */
export function unnameable(m: MemberInfo): boolean {
  return (m.nat === 'random' || m.nat === 'unknown') && !!m.ext && !m.ext.ip.startsWith('127.');
}

/** The route from member `me` to member `far`; `link` is the path of the peer link to it, if one is open. */
export function decideRoute(me: MemberInfo | undefined, far: MemberInfo, link: PathKind | undefined): Route {
  if (!me) return { kind: 'none' };
  if (far.id === me.id) return { kind: 'self' };
  if (!far.ext) return { kind: 'none' };
  if (far.nat === 'open' && unnameable(me)) return { kind: 'agent' };
  if (far.nat === 'open' || far.nat === 'unknown') return { kind: 'direct', ip: far.ext.ip };
  const sameNat = !!me.ext && me.ext.ip === far.ext.ip;
  if (sameNat) return link === 'lan' && far.priv.length ? { kind: 'direct', ip: far.priv[0].ip } : { kind: 'agent' };
  if (predictable(far.nat) && predictable(me.nat) && far.map) {
    const { xor, offset, lo, hi } = far.map;
    return { kind: 'punch', ip: far.ext.ip, xor, offset, lo, hi };
  }
  return { kind: 'agent' };
}

/**
 * The route table as the shim reads it: `ID VADDR KIND IP XOR OFFSET LO HI` per member. On `self`, `agent` and
 * `none` lines IP is the member's public address (`ext`, when known): the shim does not connect there, but
 * names an accepted connection from its table only when one line alone has the connection's address, and
 * must see every member at that address to know.
 */
export function formatRoutes(rows: Array<{ id: number; addr: string; route: Route; ext?: string }>): string {
  return rows
    .map(({ id, addr, route: r, ext }) => {
      switch (r.kind) {
        case 'direct':
          return `${id} ${addr} ${r.quiet ? 'direct-quiet' : 'direct'} ${r.ip} 0 0 0 0\n`;
        case 'punch':
          return `${id} ${addr} punch ${r.ip} ${r.xor} ${r.offset} ${r.lo} ${r.hi}\n`;
        default:
          return `${id} ${addr} ${r.kind} ${ext ?? '0.0.0.0'} 0 0 0 0\n`;
      }
    })
    .join('');
}
