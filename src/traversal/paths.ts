/**
 * Where a peer link is decided: the paths to try toward a member, best first, from the two NAT kinds and
 * addresses alone (docs/nat-traversal.md). Pure: no I/O; peers.ts runs the plan.
 *
 *   `open` member involved                      -> `direct` (dial its listener; or ask it to dial us)
 *   same external address                       -> `lan` (private candidates), then `hairpin`, then `relay`
 *   both `preserving`/`translating`             -> `punched` (simultaneous open), then `relay`
 *   `random` or `unknown` with a NATed member   -> `relay` (through the seed, else a public member)
 */
import type { Endpoint, MemberInfo, NatKind, PathKind } from '../wire/messages';
import { DIRECT_CONNECT_TIMEOUT_MS, LAN_CONNECT_TIMEOUT_MS } from '../constants';
import type { NatMapping } from './discovery';

/** One step of a plan: how to make a link of kind `path`. */
export type PathStep =
  /** Dial the member's listener (`direct`) or one of its private candidates (`lan`). */
  | { path: 'direct' | 'lan'; how: 'dial'; ep: Endpoint; timeoutMs: number }
  /** We are `open`: ask the member to dial us (`ep` null: at the address it knows us by). */
  | { path: 'direct'; how: 'ask'; ep: Endpoint | null }
  /** Simultaneous open through both NATs (`punched`), or through our shared gateway (`hairpin`). */
  | { path: 'punched' | 'hairpin'; how: 'punch' }
  /** Through the seed, else through the member's home (relayed-link.ts). */
  | { path: 'relay'; how: 'relay' };

/** NAT kinds whose external port can be predicted, so a simultaneous open can aim at it. */
export const punchable = (k: NatKind | string): boolean => k === 'preserving' || k === 'translating';

/** The paths to try toward `b`, best first; `me`: our mapping, `lport`: our peer-link listener's port (0: none). */
export function planPaths(me: NatMapping, lport: number, b: MemberInfo): PathStep[] {
  if (b.nat === 'open' && b.lport && b.ext) {
    return [{ path: 'direct', how: 'dial', ep: { ip: b.ext.ip, port: b.lport }, timeoutMs: DIRECT_CONNECT_TIMEOUT_MS }];
  }
  if (me.kind === 'open' && lport) {
    // Without our own address (a seed listening on 0.0.0.0), the peer dials the address it knows us by.
    return [{ path: 'direct', how: 'ask', ep: me.ip ? { ip: me.ip, port: lport } : null }];
  }
  const out: PathStep[] = [];
  if (me.ip && b.ext && me.ip === b.ext.ip) {
    for (const c of b.priv) out.push({ path: 'lan', how: 'dial', ep: c, timeoutMs: LAN_CONNECT_TIMEOUT_MS });
    if (punchable(me.kind) && punchable(b.nat)) out.push({ path: 'hairpin', how: 'punch' });
  } else if (punchable(me.kind) && punchable(b.nat)) {
    out.push({ path: 'punched', how: 'punch' });
  }
  out.push({ path: 'relay', how: 'relay' });
  return out;
}

/** The kinds of a plan, for logs and tests. */
export function pathKinds(plan: PathStep[]): PathKind[] {
  return plan.map((s) => s.path);
}
