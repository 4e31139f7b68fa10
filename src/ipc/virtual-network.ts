/**
 * A member's virtual network: the broker, the shim's channel and the route table, wired to the local member
 * (an Agent, or the seed's own member: control/local-member.ts), plus the environment that loads the shim into
 * the user's program. Made by `boxer run` (cli/session.ts) and `boxer seed -- CMD` alike.
 */
import fs from 'node:fs';
import { Broker } from '../vnet/broker';
import { SEED, type VnetNetwork } from '../vnet/network';
import { encodeVnet, receiveVnet, type VnetMessage } from '../vnet/messages';
import { openFrom, sealFor } from '../crypto/origin';
import type { KeyPair } from '../crypto/keys';
import { warmSetupPath } from './warm';
import { ShimServer } from './shim-server';
import type { LocalMember } from '../control/local-member';
import type { MemberInfo, PathKind } from '../wire/messages';
import { uniquePath } from '../util/paths';
import { LatestFile } from '../util/file-writer';
import { logger } from '../util/log';
import { native, type NativeApi } from '../util/native';
import { WARM_ROUNDS, PREWARM_CONCURRENCY, ROUTES_REFRESH_MS, SHIM_REPORT_POLL_MS, SHIM_REPORT_WAIT_MS } from '../constants';

const log = logger('vnet');


const linkPath = (m: LocalMember, id: number): PathKind | undefined => (m.linkPath ? m.linkPath(id) : m.links().find((l) => l.id === id)?.path);

/**
 * The broker's view of the network, over the member. The member list and its indexes are built once per
 * change: rendering the route table asks for the route to every member,
 * each of which looks up members, so a fresh sorted list per look-up made a change O(members² log members).
 * The cache holds the list as the member gave it (references to its entries, so that an entry updated in
 * place is seen): dropped at every 'change', which both members emit whenever one is added or removed.
 */
/**
 * `keys`: the member's static key pair (seals of relay requests, src/crypto/origin.ts); `local`: delivers a
 * message this member's broker sends to itself (an `open` member relaying its own connection).
 */
export function brokerNetwork(member: LocalMember, keys: KeyPair, local: (msg: VnetMessage) => void): VnetNetwork {
  let view: { list: MemberInfo[]; byId: Map<number, MemberInfo>; byAddr: Map<string, MemberInfo> } | null = null;
  const now = () => {
    if (!view) {
      const list = member.list();
      view = { list, byId: new Map(list.map((m) => [m.id, m])), byAddr: new Map(list.map((m) => [m.addr, m])) };
    }
    return view;
  };
  // The path of the last link to each member, kept after the link idles out (LINK_IDLE_MS): whether a member
  // behind our NAT is reached over the LAN does not change while its addresses do not, and without it every
  // CONNECT after an idle spell would open the link again first (0.4-2.4 s, past the shim's 2 s bound), and
  // the route table would flip between the LAN route and the agent's. One entry per member of the list.
  const known = new Map<number, { path: PathKind; where: string }>();
  const where = (m: MemberInfo | undefined) => (m ? `${m.ext?.ip ?? ''} ${m.priv.map((p) => p.ip).join(',')}` : '');
  member.on('change', () => {
    view = null;
    for (const id of known.keys()) if (!now().byId.has(id)) known.delete(id);
  });
  return {
    self: () => member.self,
    members: () => now().list,
    member: (id) => now().byId.get(id),
    memberAt: (addr) => now().byAddr.get(addr),
    predictOwn: (p) => member.vnetEndpoint(p),
    linkPath: (id) => {
      const p = linkPath(member, id);
      const m = now().byId.get(id);
      if (p) {
        if (m) known.set(id, { path: p, where: where(m) });
        return p;
      }
      const k = known.get(id);
      return k && k.where === where(m) ? k.path : undefined;
    },
    ensureLink: async (id) => (await member.ping(id)).path,
    send: (to, msg) => {
      if (to === member.self?.id) return local(msg);
      if (to === SEED) {
        if (!member.sendToSeed(encodeVnet(msg))) log.info('the seed is not reachable for a relayed connection');
        return;
      }
      member.sendTo(to, encodeVnet(msg)).catch((e: Error) => log.info('cannot reach a member for a connection', { to, reason: e.message }));
    },
    seedIp: () => member.seedAddressNow(),
    seal: (to, data) => {
      const far = now().byId.get(to);
      return far ? sealFor(data, far.key, keys) : null;
    },
    unseal: (from, sealed) => {
      const origin = now().byId.get(from);
      return origin ? openFrom(sealed, origin.key, keys) : null;
    },
  };
}

export class VirtualNetwork {
  readonly broker: Broker;
  readonly shim: ShimServer;
  readonly routesFile = uniquePath('routes', '.txt');
  /** The route table: rewritten at most every FILE_WRITE_INTERVAL_MS, asynchronously (util/file-writer.ts). */
  private readonly routes: LatestFile;
  private timer: NodeJS.Timeout | null = null;
  private readonly nat: NativeApi;

  constructor(
    private readonly host: LocalMember,
    keys: KeyPair,
  ) {
    this.nat = native();
    const local = (msg: VnetMessage) => setImmediate(() => host.self && this.broker.onMessage(host.self.id, msg));
    this.broker = new Broker(brokerNetwork(host, keys, local), this.nat);
    this.shim = new ShimServer(uniquePath('shim', '.sock'), this.broker, this.nat);
    this.routes = new LatestFile(this.routesFile, () => this.broker.routes(), {
      onError: (cause) => cause && log.warn('cannot write the route table', { file: this.routesFile, reason: cause }),
    });
    // A service address handed out to a program: in the table before RESOLVE answers.
    this.broker.onRoutesChanged = () => this.writeRoutesNow();
    host.on('vnet', (from: number, payload: Uint8Array) => receiveVnet(from, payload, (f, m) => this.broker.onMessage(f, m), log));
    // The set-up path's code, compiled and past V8's interpreter before the program's first connections (warm.ts).
    void warmSetupPath(keys, WARM_ROUNDS, () => this.closed).then((w) => log.debug('warmed the connection set-up path', { rounds: w.rounds, ms: Math.round(w.ms) }));
    host.on('change', () => {
      this.broker.membersChanged();
      this.writeRoutes();
      this.prewarm(host);
    });
  }

  private readonly warmed = new Set<number>();
  private warming = 0;

  /** Opens links to the members behind our own NAT (their route depends on the link's path). */
  private prewarm(host: LocalMember): void {
    const self = host.self;
    const me = self && host.list().find((m) => m.id === self.id);
    if (!me?.ext) return;
    for (const m of host.list()) {
      if (this.warming >= PREWARM_CONCURRENCY) return;
      if (m.id === me.id || this.warmed.has(m.id) || m.ext?.ip !== me.ext.ip || linkPath(host, m.id)) continue;
      this.warmed.add(m.id);
      this.warming++;
      host
        .ping(m.id)
        .then(() => this.writeRoutes())
        .catch((e: Error) => log.debug('no link to a member behind our NAT yet', { member: m.name, reason: e.message }))
        .finally(() => {
          this.warming--;
          this.prewarm(host);
        });
    }
  }

  async start(): Promise<void> {
    await this.shim.start();
    this.prewarm(this.host);
    this.writeRoutesNow();
    this.timer = setInterval(() => this.writeRoutes(), ROUTES_REFRESH_MS);
    this.timer.unref();
  }

  /** Something the route table shows changed (members, links): rewritten soon. */
  private writeRoutes(): void {
    this.routes.changed();
  }

  private writeRoutesNow(): void {
    try {
      this.routes.writeSync();
    } catch (e) {
      log.warn('cannot write the route table', { file: this.routesFile, reason: (e as Error).message });
    }
  }

  /** Resolves once the route table shows the current membership (before the command starts). */
  flush(): Promise<void> {
    return this.routes.flush();
  }

  /**
   * What loads the shim into the program and tells it where everything is; for `seccomp` (a program run under
   * the seccomp supervisor, docs/seccomp.md) the same settings without LD_PRELOAD: the supervisor reads them,
   * and preloads the shim (BOXER_SHIM_FALLBACK) only where seccomp user notification is unavailable.
   */
  env(base: NodeJS.ProcessEnv, mode: 'shim' | 'seccomp' = 'shim'): NodeJS.ProcessEnv {
    if (mode === 'seccomp') return { ...base, BOXER_SHIM_SOCK: this.shim.path, BOXER_ROUTES_FILE: this.routesFile, BOXER_SHIM_FALLBACK: this.nat.SHIM_PATH };
    const preload = [this.nat.SHIM_PATH, ...(base.LD_PRELOAD ? [base.LD_PRELOAD] : [])].join(' ');
    return { ...base, LD_PRELOAD: preload, BOXER_SHIM_SOCK: this.shim.path, BOXER_ROUTES_FILE: this.routesFile };
  }

  /** The seccomp supervisor (native/out/boxer-seccomp). */
  get seccompPath(): string {
    return this.nat.SECCOMP_PATH;
  }

  /** Resolves true once a program's shim has reported in, false after `ms`. */
  shimReported(ms = SHIM_REPORT_WAIT_MS): Promise<boolean> {
    return new Promise((resolve) => {
      const start = Date.now();
      const tick = () => {
        if (this.broker.shims.size > 0) return resolve(true);
        if (Date.now() - start > ms) return resolve(false);
        setTimeout(tick, SHIM_REPORT_POLL_MS).unref();
      };
      tick();
    });
  }

  status(): Record<string, unknown> {
    return { connections: { ...this.broker.stats }, relay: { ...this.broker.relay.stats }, shims: [...this.broker.shims.entries()].map(([pid, name]) => ({ pid, name })) };
  }

  private closed = false;

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.routes.close();
    this.broker.close();
    await this.shim.close();
    try {
      fs.unlinkSync(this.routesFile);
    } catch {
      /* gone */
    }
  }
}
