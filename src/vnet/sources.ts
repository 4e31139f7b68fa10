/**
 * Where a member's direct connections to this member can come from: which real addresses and source ports an
 * accepted connection may have if a member made it. accept() uses it to tell a client outside the network (a
 * public user of a front end, a health check, `curl` on the same host) from a member at once, without waiting
 * for an announcement that will never come; it waits only where a member can really be the client.
 *
 * A member's connection reaches us straight (not through a hand-off over loopback) only on a `direct` route:
 *  - when we are `open` (or `unknown`: a network on one host), every member connects to our public address:
 *    it arrives from the member's public address (its NAT's, when it has one), with a source port that is its
 *    local port mapped by its NAT. A local port lies in its ip_local_port_range (PortMap.rlo..rhi: the shim's
 *    random bind and the kernel's port 0 both draw there), so behind a preserving or translating NAT the port
 *    tells several functions behind one address apart, and tells them from strangers behind it. A member that
 *    did not say its range: any port. A member behind a `random` (or undiscovered) NAT never connects to an
 *    `open` member straight (routes.ts, `unnameable`: its port names nobody), so it has no source line there:
 *    strangers behind its NAT are answered at once, and never named as it.
 *  - a member behind our own NAT connects over the LAN to our private address: from its private addresses,
 *    any port.
 * Connections that match nothing are from outside the network: left as they are, at native cost.
 *
 * Wire form, appended to the route table (docs/shim-protocol.md, "The route table"):
 *   `ID VADDR from IP XOR OFFSET LO HI`: a connection from IP whose source port q satisfies
 *   LO <= ((q - OFFSET) & 0xffff) ^ XOR <= HI may be member VADDR's (the inverse of the NAT's mapping
 *   q = ((p ^ XOR) + OFFSET) & 0xffff of a local port p). Any port: `0 0 1 65535`.
 */
import type { MemberInfo } from '../wire/messages';
import { unnameable } from './routes';

export interface Source {
  id: number;
  addr: string;
  ip: string;
  xor: number;
  offset: number;
  lo: number;
  hi: number;
}

const ANY_PORT = { xor: 0, offset: 0, lo: 1, hi: 65535 };

/** The source ports of a member's connections as its NAT shows them (ANY_PORT when not predictable). */
function portsOf(m: MemberInfo): Omit<Source, 'id' | 'addr' | 'ip'> {
  const map = m.map;
  if (!map || map.rlo === undefined || map.rhi === undefined) return ANY_PORT;
  if (m.nat === 'open' || m.nat === 'unknown') return { xor: 0, offset: 0, lo: map.rlo, hi: map.rhi };
  if (m.nat === 'preserving' || m.nat === 'translating') return { xor: map.xor, offset: map.offset, lo: map.rlo, hi: map.rhi };
  return ANY_PORT;
}

/** Every address and port block a member's direct connection to `me` can arrive from. */
export function directSources(me: MemberInfo | undefined, members: readonly MemberInfo[]): Source[] {
  if (!me) return [];
  const reachable = me.nat === 'open' || me.nat === 'unknown';
  const out: Source[] = [];
  for (const m of members) {
    if (m.id === me.id || !m.ext) continue;
    if (reachable && !(me.nat === 'open' && unnameable(m))) out.push({ id: m.id, addr: m.addr, ip: m.ext.ip, ...portsOf(m) });
    if (me.ext && m.ext.ip === me.ext.ip) for (const p of m.priv) out.push({ id: m.id, addr: m.addr, ip: p.ip, ...ANY_PORT });
  }
  return out;
}

/** Whether a connection from ip:port can be the member of source `s`. */
export function sourceMatches(s: Source, ip: string, port: number): boolean {
  if (s.ip !== ip) return false;
  const p = ((port - s.offset) & 0xffff) ^ s.xor;
  return p >= s.lo && p <= s.hi;
}

/** The `from` lines of the route table. */
export function formatSources(sources: readonly Source[]): string {
  return sources.map((s) => `${s.id} ${s.addr} from ${s.ip} ${s.xor} ${s.offset} ${s.lo} ${s.hi}\n`).join('');
}
