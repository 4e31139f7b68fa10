/**
 * Service addresses: a stable virtual address per service name (like a cluster IP), behind which the
 * service's members change. A program resolves the name once (nginx at start) and gets the address; each
 * connect() to it goes to one of the members providing the service at that moment, picked per connection by
 * the shim (round robin from a random start per process, native/shim/common/pick.c) from the `svc` lines of
 * the route table, which the agent rewrites on every membership change: a member that joins the service gets
 * connections as soon as its line is written (milliseconds after the seed announces it), a member that
 * leaves it (or drains before leaving: `boxer run`) gets none after its line is gone. A member on standby
 * (MemberInfo.standby: its program does not listen yet, or it drains) keeps the name known but gets no line.
 *
 * The address is this member's handle for the service, handed out by its agent from the top of the network
 * downwards (members are numbered from the bottom), in the order names are first resolved, and kept for the
 * agent's life; another member may use another address for the same service.
 *
 * Wire form, in the route table (docs/shim-protocol.md, "The route table"):
 *   `ID VIP svc MEMBER_VADDR 0 0 0 0`   one per member providing the service (ID: the member's id)
 *   `0 VIP svc 0.0.0.0 0 0 0 0`         a service without members now: connect() is refused
 */
import type { MemberInfo } from '../wire/messages';
import { parseCidr } from '../control/addresses';
import { formatIPv4, parseIPv4 } from '../util/ipv4';

/** The default virtual network (the seed's --network default), when the member has not said its own yet. */
const DEFAULT_NETWORK = '100.96.0.0/16';

export class ServiceAddresses {
  /** Service name -> its address here, and back. Owned by the broker (its event loop). */
  private readonly byName = new Map<string, string>();
  private readonly byAddr = new Map<string, string>();

  /** The address of service `name`, handed out on first use (null: the network has no free address left). */
  address(name: string, network: string | undefined, members: readonly MemberInfo[]): string | null {
    const known = this.byName.get(name);
    if (known) return known;
    const cidr = parseCidr(network ?? DEFAULT_NETWORK);
    const taken = new Set(members.map((m) => m.addr));
    const highestMember = Math.max(cidr.base, ...members.map((m) => parseIPv4(m.addr)!));
    // From the block's last address below its broadcast address, downwards; .0 and .255 are skipped as the
    // seed skips them.
    for (let n = cidr.base + 2 ** (32 - cidr.bits) - 2; n > highestMember; n--) {
      const ip = formatIPv4(n >>> 0);
      if ((n & 255) === 0 || (n & 255) === 255 || taken.has(ip) || this.byAddr.has(ip)) continue;
      this.byName.set(name, ip);
      this.byAddr.set(ip, name);
      return ip;
    }
    return null;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The service whose address is `ip` here, if any. */
  serviceAt(ip: string): string | undefined {
    return this.byAddr.get(ip);
  }

  /** The members taking connections for service `name` now (not on standby), in address order (the shim's order). */
  static members(name: string, members: readonly MemberInfo[]): MemberInfo[] {
    return members.filter((m) => m.services.includes(name) && !m.standby).sort((a, b) => parseIPv4(a.addr)! - parseIPv4(b.addr)!);
  }

  /** The `svc` lines of the route table for every service address handed out. */
  lines(members: readonly MemberInfo[]): string {
    let out = '';
    for (const [name, vip] of this.byName) {
      const ms = ServiceAddresses.members(name, members);
      if (!ms.length) out += `0 ${vip} svc 0.0.0.0 0 0 0 0\n`;
      for (const m of ms) out += `${m.id} ${vip} svc ${m.addr} 0 0 0 0\n`;
    }
    return out;
  }
}
