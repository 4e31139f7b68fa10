/**
 * The agent's member view: who this member is, the member list as the seed tells it (joins, leaves, deaths,
 * snapshots; names kept unique), the services it provides, and its peer links (src/traversal). The connection
 * to the seed itself (join, heartbeats, reconnect and rejoin, leave) is agent-session.ts.
 *
 * I/O is injectable: `connect` opens a stream to the seed (connectors.ts: TCP by default; in-memory in tests).
 */
import { EventEmitter } from 'node:events';
import type { Endpoint, MemberInfo, Message, NatKind, Outcome, RunKey, PathKind } from '../wire/messages';
import type { KeyPair } from '../crypto/keys';
import { logger } from '../util/log';
import { Peers, type LinkStatus } from '../traversal/peers';
import { predictEndpoint, UNKNOWN_MAPPING, type NatMapping } from '../traversal/discovery';
import type { PeerIo } from '../traversal/io';
import type { LocalMember } from './local-member';
import { tcpConnector, ioConnector, type Connector } from './connectors';
import { SeedSession } from './agent-session';

export interface AgentOptions {
  seedHost: string;
  seedPort: number;
  psk: Uint8Array;
  keys: KeyPair;
  name?: string;
  services: string[];
  /** Join with `services` on standby (MemberInfo.standby): `boxer run` takes connections once its program listens. */
  standby?: boolean;
  priv?: Endpoint[];
  nat?: NatKind;
  connect?: Connector;
  joinTimeoutMs?: number;
  /** Label for logs when several agents share a process. */
  label?: string;
  /** Peer links and NAT discovery (src/traversal); without it the agent only talks to the seed. */
  traversal?: TraversalOptions;
  /**
   * Local ports reserved for punched program connections (src/vnet/ports.ts), announced in the port map so
   * that other members pick their punch port there; default: the whole ip_local_port_range.
   */
  punchPorts?: [number, number];
  /** Which member of a `boxer lambda run` this is (sent in `join`; the seed refuses a second join with it). */
  run?: RunKey;
}

export interface TraversalOptions {
  io: PeerIo;
  /** The seed's discovery port (default: seed port + DISCOVERY_PORT_OFFSET). */
  discoveryPort?: number;
  /** Skip discovery and take this NAT kind (in-memory tests). */
  natOverride?: NatKind;
  /** Bound on open peer links (default MAX_LINKS). */
  maxLinks?: number;
  /** Override of RELAY_UPGRADE_MS (tests). */
  relayUpgradeMs?: number;
}

export interface Self {
  id: number;
  name: string;
  addr: string;
  network: string;
  observed: Endpoint;
}

export interface AgentEvents {
  /** The member list changed (join, leave, death, snapshot). */
  change: [];
  /** The connection to the seed was lost (the agent keeps trying) or regained. */
  seed: [connected: boolean];
  /** A `vnet` payload from another member (any path). */
  vnet: [from: number, payload: Uint8Array];
}

export class Agent extends EventEmitter<AgentEvents> implements LocalMember {
  self: Self | null = null;
  readonly members = new Map<number, MemberInfo>();
  private readonly log;
  /** Peer links (null without traversal). */
  readonly peers: Peers | null = null;
  /** What NAT discovery concluded (`unknown` until it ran). */
  mapping: NatMapping = UNKNOWN_MAPPING;
  /** The connection to the seed: join, heartbeats, reconnect and rejoin, leave (agent-session.ts). */
  private readonly session: SeedSession;

  constructor(private readonly opts: AgentOptions) {
    super();
    const connect = opts.connect ?? (opts.traversal ? ioConnector(opts.traversal.io) : tcpConnector);
    this.log = logger('agent', opts.label ? { agent: opts.label } : {});
    if (opts.traversal) {
      this.peers = new Peers(
        {
          selfId: () => this.self?.id ?? 0,
          member: (id) => {
            // The seed's own member (it runs a command) is `open` without a known external address when the
            // seed listens on 0.0.0.0: it is where our control connection goes.
            const m = this.members.get(id);
            const seedIp = this.session.seedIp;
            if (m && !m.ext && m.nat === 'open' && m.lport && seedIp) return { ...m, ext: { ip: seedIp, port: 0 } };
            return m;
          },
          members: () => this.members.values(),
          toSeed: (m) => {
            const ch = this.session.channel;
            return !!ch && !ch.isClosed && (ch.sendMessage(m) || true);
          },
          seedConnected: () => this.seedConnected,
          forget: (id, reason) => this.forget(id, reason),
        },
        { psk: opts.psk, keys: opts.keys, io: opts.traversal.io, maxLinks: opts.traversal.maxLinks, relayUpgradeMs: opts.traversal.relayUpgradeMs, label: opts.label },
      );
      this.peers.on('vnet', (from, payload) => this.emit('vnet', from, payload));
      if (opts.traversal.natOverride) this.mapping = this.peers.mapping = { ...UNKNOWN_MAPPING, kind: opts.traversal.natOverride };
    }
    this.session = new SeedSession(
      opts,
      connect,
      this.peers,
      {
        self: () => this.self,
        mapping: () => this.mapping,
        mapped: (m) => {
          this.mapping = m;
          this.peers!.mapping = m;
        },
        welcomed: (m) => this.onWelcome(m),
        message: (m) => this.onMessage(m),
        lost: () => this.emit('seed', false),
      },
      this.log,
    );
  }

  /** This agent's predicted external endpoint for a local port (null for `random`/`unknown` NATs). */
  predictEndpoint(localPort: number): Endpoint | null {
    return predictEndpoint(this.mapping, localPort);
  }

  /** Sends an opaque `vnet` payload to a member over whatever path reaches it (link, relay, seed). */
  sendTo(memberId: number, payload: Uint8Array): Promise<void> {
    if (!this.peers) return Promise.reject(new Error('peer links are off in this agent'));
    return this.peers.sendTo(memberId, payload);
  }

  /** Sends a vnet payload to the seed's relay of program connections; false when the seed is not reachable. */
  sendToSeed(payload: Uint8Array): boolean {
    const ch = this.session.channel;
    return !!ch && !ch.isClosed && ch.sendMessage({ t: 'svnet', payload });
  }

  /** The seed's address as this agent reaches it (null while disconnected). */
  seedAddressNow(): string | null {
    return this.seedConnected ? this.session.seedIp : null;
  }

  /** Opens (or uses) the link to a member and measures its round-trip time. */
  ping(memberId: number): Promise<{ path: PathKind; endpoint: string; rttMs: number }> {
    if (!this.peers) return Promise.reject(new Error('peer links are off in this agent'));
    return this.peers.ping(memberId);
  }

  /** The open peer links. */
  links(): LinkStatus[] {
    return this.peers?.status() ?? [];
  }

  /** Our external endpoint for a local port, for the virtual network (null: unpredictable). */
  vnetEndpoint(localPort: number): Endpoint | null {
    if (this.mapping.kind === 'unknown') {
      // No NAT discovery ran (a network on one host's loopback): our address as the seed saw it.
      const ext = this.self ? this.members.get(this.self.id)?.ext : undefined;
      return ext ? { ip: ext.ip, port: localPort } : null;
    }
    return this.predictEndpoint(localPort);
  }

  /** Drops every peer link (they reopen on demand). */
  closeLinks(): number {
    return this.peers?.closeLinks() ?? 0;
  }

  statusExtra(): Record<string, unknown> {
    return { role: 'member', seedConnected: this.seedConnected, nat: this.mapping.kind, links: this.links() };
  }

  /** A member learnt gone over a peer link (the seed is down). */
  private forget(id: number, reason: 'leave' | 'dead'): boolean {
    if (!this.members.has(id) || id === this.self?.id) return false;
    this.members.delete(id);
    this.log.info(reason === 'leave' ? 'member left (heard from a peer)' : 'member died (heard from a peer)', { id });
    this.peers?.memberGone(id);
    this.emit('change');
    return true;
  }

  get seedConnected(): boolean {
    return this.session.connected;
  }

  /**
   * Joins the network: retries an unreachable seed until the join timeout, then fails with a BoxerError
   * (SEED_UNREACHABLE, WRONG_SECRET, NAME_TAKEN, NETWORK_FULL) saying what happened and what to do.
   */
  async join(): Promise<Self> {
    await this.session.join();
    return this.self!;
  }

  private onWelcome(m: Extract<Message, { t: 'welcome' }>): void {
    const rejoined = !!this.self;
    this.self = { id: m.id, name: m.name, addr: m.addr, network: m.network, observed: m.observed };
    // A restarted seed that is still relearning: keep members it has not heard from yet.
    if (!(rejoined && m.relearning)) {
      this.members.clear();
      this.byName.clear();
    }
    for (const x of m.members) this.put(x);
    this.log.info(rejoined ? 'rejoined the network' : 'joined the network', { id: m.id, name: m.name, addr: m.addr, observed: `${m.observed.ip}:${m.observed.port}`, members: this.members.size });
    this.emit('seed', true);
    this.emit('change');
  }
  /**
   * Adds or updates a member from the seed. Names reach the member file and the shim's lookups, so they stay
   * unique here too (the decoder has checked each is a lowercase DNS label): an older holder of the same name is
   * dropped, the seed's latest word wins; a member announced with this member's own name is ignored.
   */
  private put(m: MemberInfo): void {
    if (this.self && m.id !== this.self.id && m.name === this.self.name) {
      this.log.warn('another member announced with our name: ignored', { name: m.name, id: m.id });
      return;
    }
    // The holder of the name by the index (checked against the table: entries go without the index knowing).
    const holder = this.byName.get(m.name);
    const x = holder !== undefined && holder !== m.id ? this.members.get(holder) : undefined;
    if (x && x.name === m.name) {
      this.log.warn('two members with one name: keeping the latest', { name: m.name, dropped: x.id, kept: m.id });
      this.members.delete(x.id);
      this.peers?.memberGone(x.id);
    }
    this.byName.set(m.name, m.id);
    this.members.set(m.id, m);
  }

  /** Member id by name, for put()'s check (a member's name per the seed's last word; may name members gone). */
  private readonly byName = new Map<string, number>();

  /** Member `id` (LocalMember.member: the virtual network's look-ups). */
  member(id: number): MemberInfo | undefined {
    return this.members.get(id);
  }

  /** The path of the open peer link to member `id`, if any (LocalMember.linkPath). */
  linkPath(id: number): PathKind | undefined {
    return this.peers?.linkPath(id);
  }

  private onMessage(m: Message): void {
    switch (m.t) {
      case 'joined':
        this.put(m.m);
        this.emit('change');
        break;
      case 'joins':
        for (const x of m.members) this.put(x);
        this.emit('change');
        break;
      case 'left':
        if (m.id === this.self?.id) return; // the acknowledgement of our own leave
        this.peers?.memberGone(m.id);
        if (this.members.delete(m.id)) this.emit('change');
        break;
      case 'fwd':
        this.peers?.onFwd(m, null);
        break;
      case 'relay':
        this.peers?.onRelay(m, null);
        break;
      case 'svnet':
        // From the seed's relay of program connections: member id 0 stands for the seed.
        this.emit('vnet', 0, m.payload);
        break;
      case 'members':
        this.members.clear();
        this.byName.clear();
        for (const x of m.members) this.put(x);
        this.emit('change');
        break;
      case 'pong':
      case 'ping':
        break;
      case 'error':
        this.log.warn('the seed reported an error', { code: m.code, reason: m.message });
        break;
      default:
        this.session.channel?.close(`unexpected ${m.t} from the seed`);
    }
  }

  /** Members sorted by id. */
  list(): MemberInfo[] {
    return [...this.members.values()].sort((a, b) => a.id - b.id);
  }

  /** Waits until the network has at least `n` members; calls `progress` on every change. */
  waitForMembers(n: number, progress?: (have: number) => void, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        progress?.(this.members.size);
        if (this.members.size >= n) {
          this.off('change', check);
          resolve();
        }
      };
      signal?.addEventListener('abort', () => {
        this.off('change', check);
        reject(new Error('aborted while waiting for members'));
      });
      this.on('change', check);
      check();
    });
  }

  /**
   * Provides these services from now on; `standby`: declared, but no connections for them now (the program
   * does not listen yet, or the member drains before it leaves). The seed re-announces this member to everyone;
   * the next join (a seed restart) carries them too.
   */
  setServices(services: string[], standby = false): void {
    this.opts.services = [...services];
    this.opts.standby = standby;
    const me = this.self && this.members.get(this.self.id);
    if (me) {
      const { standby: _was, ...rest } = me;
      this.members.set(me.id, { ...rest, services: [...services], ...(standby ? { standby: true } : {}) });
      this.emit('change');
    }
    this.session.channel?.sendMessage({ t: 'services', services: [...services], ...(standby ? { standby: true } : {}) });
  }

  /** The services this member provides, and whether it is on standby (see MemberInfo.standby). */
  get serving(): { services: string[]; standby: boolean } {
    return { services: [...this.opts.services], standby: !!this.opts.standby };
  }

  /** Leaves gracefully: tells the seed (which tells everyone, and observers how the command ended), then closes. */
  leave(outcome?: Outcome): Promise<void> {
    return this.session.leave(outcome);
  }

  /** Stops without telling anyone (tests of dead-member detection use it). */
  stop(): void {
    this.session.stop();
  }
}
