/**
 * Names in the virtual network. The accept-time namer answers "who is this accepted connection from?": a
 * hand-off names itself (handoff.ts), an `open` member alone at its address is named by that address, and
 * any other direct connection by the announcement (`open` without `punch`) its client's broker sent. The
 * resolver answers RESOLVE: a member by name, or a service's stable address (services.ts).
 */
import os from 'node:os';
import type { Endpoint, MemberInfo } from '../wire/messages';
import { ANNOUNCE_WAIT_MS, LOOPBACK_ANNOUNCE_WAIT_MS, MAX_ACCEPT_WAITERS, VNET_STALE_MS } from '../constants';
import { logger } from '../util/log';
import { isLoopback, type VnetNetwork } from './network';
import { directSources, sourceMatches } from './sources';
import type { AcceptAnswer } from './server';
import type { ServiceAddresses } from './services';

const log = logger('vnet');
const E = os.constants.errno;

/** Whether a connection straight from member `m` is known by its address alone: `m` is `open` and no other member is at its public address. */
export function namedByAddress(members: MemberInfo[], m: MemberInfo): boolean {
  if (m.nat !== 'open' || !m.ext || isLoopback(m.ext.ip)) return false;
  const ip = m.ext.ip;
  return members.filter((x) => x.ext?.ip === ip).length === 1;
}

export class AcceptNamer {
  /** Announced direct connections by `ip:port` of the client's socket (`ip:0`: port unpredictable); owned by announce/name/sweep. */
  private readonly expected = new Map<string, { vaddr: string; vport: number; at: number }>();
  /** accept()s waiting for an announcement, by the same key (owned by name/announce). */
  private readonly waiters = new Map<string, Array<() => void>>();
  /** How many accept()s wait now (bounded by MAX_ACCEPT_WAITERS). */
  private waiting = 0;

  constructor(private readonly netw: VnetNetwork) {}

  /** A client's broker announced a direct connection from `ext` (its socket's public endpoint) by member `client`. */
  announce(client: MemberInfo, ext: Endpoint, cport: number): void {
    const key = `${ext.ip}:${ext.port}`;
    this.expected.set(key, { vaddr: client.addr, vport: cport, at: Date.now() });
    for (const w of [...(this.waiters.get(key) ?? [])]) w();
    this.waiters.delete(key);
  }

  /** Who the connection from `peer` is, waiting up to ANNOUNCE_WAIT_MS for its announcement (ENOENT: nobody said). */
  async name(peer: Endpoint): Promise<AcceptAnswer> {
    const key = `${peer.ip}:${peer.port}`;
    let exp = this.expected.get(key);
    if (!exp) {
      // An `open` member (no NAT: its port is its own) alone at that address needs no announcement: answer at
      // once, so a connection from it costs no wait (time to first byte close to native).
      const members = this.netw.members();
      const at = members.find((m) => m.ext?.ip === peer.ip);
      if (at && namedByAddress(members, at)) return { errno: 0, vaddr: at.addr, vport: peer.port };
      const self = this.netw.self();
      const me = self ? members.find((m) => m.id === self.id) : undefined;
      if (!directSources(me, members).some((s) => sourceMatches(s, peer.ip, peer.port))) {
        // No member can be this client (sources.ts): a client from outside the network, not to be kept waiting.
        return { errno: E.ENOENT };
      }
      if (this.waiting >= MAX_ACCEPT_WAITERS) {
        log.info('too many accept() calls waiting for announcements: answered unnamed', { peer: key, waiting: this.waiting });
        return { errno: E.ENOENT };
      }
      await this.announced(key, isLoopback(peer.ip) ? LOOPBACK_ANNOUNCE_WAIT_MS : ANNOUNCE_WAIT_MS);
      exp = this.expected.get(key);
    }
    if (!exp) {
      // A client whose external port could not be predicted announced its address only.
      const anyKey = `${peer.ip}:0`;
      exp = this.expected.get(anyKey);
      if (exp) this.expected.delete(anyKey);
    } else this.expected.delete(key);
    if (!exp) {
      log.info('an accepted connection was not announced by any member: left as it is', { peer: key, known: [...this.expected.keys()].join(',') });
      return { errno: E.ENOENT };
    }
    return { errno: 0, vaddr: exp.vaddr, vport: exp.vport };
  }

  private announced(key: string, ms: number): Promise<void> {
    this.waiting++;
    return new Promise<void>((resolve) => {
      const list = this.waiters.get(key) ?? [];
      const done = () => {
        clearTimeout(t);
        // The waiter leaves the table whichever way it ends: an unanswered one must not stay (memory).
        const i = list.indexOf(done);
        if (i >= 0) list.splice(i, 1);
        if (list.length === 0 && this.waiters.get(key) === list) this.waiters.delete(key);
        this.waiting--;
        resolve();
      };
      const t = setTimeout(done, ms);
      list.push(done);
      this.waiters.set(key, list);
    });
  }

  /** accept()s waiting for an announcement now, and the addresses they wait on (for tests and status). */
  get pending(): { waiting: number; keys: number } {
    return { waiting: this.waiting, keys: this.waiters.size };
  }

  /** Forgets announcements older than VNET_STALE_MS. */
  sweep(): void {
    const old = Date.now() - VNET_STALE_MS;
    for (const [k, v] of this.expected) if (v.at < old) this.expected.delete(k);
  }
}

export class Resolver {
  constructor(
    private readonly netw: VnetNetwork,
    private readonly services: ServiceAddresses,
    /** Called when a new service address was handed out: the route table must have it before the program. */
    private readonly onNewAddress: () => void,
  ) {}

  /**
   * RESOLVE: a member's address by its name, or a service's stable address (services.ts), behind which each
   * connection goes to one of the members providing it at that moment. Nothing for a name nobody has.
   */
  resolve(name: string): string[] {
    const n = name.endsWith('.boxer') ? name.slice(0, -6) : name;
    const ms = this.netw.members();
    const byName = ms.find((m) => m.name === n);
    if (byName) return [byName.addr];
    if (!ms.some((m) => m.services.includes(n))) return [];
    const fresh = !this.services.has(n);
    const vip = this.services.address(n, this.netw.self()?.network, ms);
    if (vip && fresh) this.onNewAddress();
    return vip ? [vip] : [];
  }
}
