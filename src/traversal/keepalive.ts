/**
 * Link health, every LINK_KEEPALIVE_MS: a ping on every link (its keepalive and RTT), closing links that are
 * silent (LINK_DEAD_AFTER_MS) or idle (LINK_IDLE_MS, home links excepted), and the upgrade of relayed links:
 * every RELAY_UPGRADE_MS a relayed link tries its direct paths again, and a success replaces it.
 */
import type { MemberInfo } from '../wire/messages';
import { LINK_DEAD_AFTER_MS, LINK_IDLE_MS, LINK_OPEN_TIMEOUT_MS } from '../constants';
import { withTimeout } from '../util/async';
import type { Logger } from '../util/log';
import type { Link, LinkTable } from './links';

export interface KeepaliveDeps {
  links: LinkTable;
  member(id: number): MemberInfo | undefined;
  /** The non-relayed paths toward `b`, best first (empty: none). */
  directAttempts(b: MemberInfo): Array<() => Promise<Link>>;
  /** Work of the same tick elsewhere (the bound, the home link). */
  afterTick(): void;
  /** Override of RELAY_UPGRADE_MS. */
  upgradeMs: number;
  log: Logger;
}

/** Measures one round trip on `l` (rejects when the link closes first; the caller bounds the wait). */
export function pingLink(l: Link): Promise<number> {
  return new Promise((resolve, reject) => {
    const n = ++l.n;
    l.pings.set(n, { t0: Date.now(), done: (rtt) => (rtt < 0 ? reject(new Error('the link closed')) : resolve(rtt)) });
    l.ch.sendMessage({ t: 'ping', n });
  });
}

export class Keepalive {
  /** Members whose relayed link is being upgraded, or was lately (owned by upgrade). */
  private readonly upgrading = new Set<number>();

  constructor(private readonly d: KeepaliveDeps) {}

  tick(): void {
    const now = Date.now();
    for (const l of this.d.links.all()) {
      if (now - l.lastHeard > LINK_DEAD_AFTER_MS) {
        l.ch.close(`peer link to member ${l.member} silent for ${LINK_DEAD_AFTER_MS} ms`);
        continue;
      }
      if (!l.home && now - l.lastUsed > LINK_IDLE_MS) {
        l.ch.close();
        continue;
      }
      for (const [n, p] of l.pings) if (now - p.t0 > LINK_DEAD_AFTER_MS) l.pings.delete(n);
      const n = ++l.n;
      l.pings.set(n, { t0: now });
      l.ch.sendMessage({ t: 'ping', n });
      if (l.path === 'relay' && now - l.since > this.d.upgradeMs && !this.upgrading.has(l.member)) void this.upgrade(l);
    }
    this.d.afterTick();
  }

  /** Tries the direct paths of a relayed link again; a success replaces the relayed link. */
  private async upgrade(l: Link): Promise<void> {
    const b = this.d.member(l.member);
    if (!b) return;
    const attempts = this.d.directAttempts(b);
    if (!attempts.length) return;
    this.upgrading.add(l.member);
    try {
      for (const run of attempts) {
        try {
          const x = await withTimeout(run(), LINK_OPEN_TIMEOUT_MS, 'upgrade');
          if (x.path !== 'relay') {
            this.d.log.info('relayed link upgraded', { peer: b.name, path: x.path });
            return;
          }
        } catch {
          /* next */
        }
      }
    } finally {
      // Try again only after another RELAY_UPGRADE_MS.
      setTimeout(() => this.upgrading.delete(l.member), this.d.upgradeMs).unref();
    }
  }
}
