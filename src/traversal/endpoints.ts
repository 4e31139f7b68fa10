/**
 * Where an agent connects when another member asks it to (a punch answer, a dial-back, a punched program
 * connection's far side, a relay): only to an address that the member list says is that member's (its
 * external address as the seed saw it, or one of its private candidates), never to an address the request
 * names freely. Otherwise any member could make agents connect to their own loopback or to arbitrary hosts
 * and read open/closed from the answer (a port scan through the network).
 */
import type { Endpoint, MemberInfo } from '../wire/messages';

/** Whether `ep` is an address member `m` can be at. */
export function isMemberEndpoint(m: MemberInfo, ep: Endpoint): boolean {
  if (!(ep.port > 0 && ep.port < 65536)) return false;
  if (m.ext && ep.ip === m.ext.ip) return true;
  return m.priv.some((p) => p.ip === ep.ip);
}
