/**
 * The port map a member announces at join (MemberInfo.map): how the data path predicts its external ports
 * from its NAT mapping and the local ports its punched connections use.
 */
import fs from 'node:fs';
import type { PortMap } from '../wire/messages';
import type { NatMapping } from '../traversal/discovery';

/** This host's ip_local_port_range (per network namespace): where its sockets bound to port 0 land. */
export function localPortRange(): [number, number] {
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo && hi < 65536) return [lo, hi];
  } catch {
    /* not Linux, or /proc hidden: the kernel default */
  }
  return [32768, 60999];
}

/** The port map announced at join: how the data path predicts this member's external ports. */
export function portMapOf(m: NatMapping, ports?: [number, number]): PortMap {
  const local = localPortRange();
  const [lo, hi] = ports ?? local;
  return { xor: m.xor ?? 0, offset: m.kind === 'translating' && m.xor === null ? m.offset ?? 0 : 0, lo, hi, rlo: local[0], rhi: local[1] };
}
