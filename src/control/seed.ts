/**
 * The seed: the rendezvous of a network, on a routable host. It authenticates joining agents (the Noise
 * handshake under the network secret), assigns each an id and a virtual address, tells it the external
 * address it is seen from and the member list, tells every member about every join and leave, and declares
 * dead the members that stop sending heartbeats.
 *
 * The seed alone assigns ids and virtual addresses, bound with the name to the member's static key
 * (src/control/bindings.ts); the bindings are kept in a state file under $TMPDIR, so that members reconnecting
 * to a restarted seed prove theirs with their key; while it relearns (SEED_RELEARN_MS after a restart) new
 * joins wait. A seed without recorded bindings (its state file lost) takes the ids members claim when they
 * rejoin, for SEED_RELEARN_MS after it starts, where no other key holds them.
 *
 * The seed is a member itself only when it runs a command (`boxer seed -- CMD`): then it holds an id, an
 * address and a name like any member, without a connection.
 *
 * I/O is injectable: `accept(stream, remote)` takes any duplex stream, so tests drive the seed in memory.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { Channel } from '../channel/channel';
import { WatchHub } from './watch';
import { addressOf, parseCidr, type Cidr } from './addresses';
import { Bindings } from './bindings';
import { HandshakeGate } from './gate';
import { defaultName, nameConflict, type NameOwners } from './names';
import type { Endpoint, MemberInfo, Message, NatKind, Outcome } from '../wire/messages';
import type { KeyPair } from '../crypto/keys';
import { fingerprint } from '../crypto/keys';
import { HandshakeError } from '../crypto/noise';
import { DEAD_AFTER_MS, HEARTBEAT_INTERVAL_MS, RECONNECT_GRACE_MS, SEED_RELEARN_MS, HANDSHAKE_TIMEOUT_MS, MAX_RUN_KEYS } from '../constants';
import { logger } from '../util/log';
import { BoxerError } from '../util/errors';
import { relayHop } from '../traversal/relayed-link';

const log = logger('seed');

export interface SeedOptions {
  network: string;
  psk: Uint8Array;
  keys: KeyPair;
  /** Makes the seed a member (it runs a command). */
  self?: { name?: string; services: string[]; ext: Endpoint | null };
  /** Where ids and addresses handed out are recorded; null: nowhere (tests). */
  stateFile: string | null;
  /** Override of SEED_RELEARN_MS (tests). */
  relearnMs?: number;
}

interface Entry {
  info: MemberInfo;
  channel: Channel | null;
  lastSeen: number;
  grace: NodeJS.Timeout | null;
}

export interface SeedEvents {
  change: [];
  /** A broker's message for the seed's relay of program connections. */
  svnet: [from: number, payload: Uint8Array];
}

export interface SeedStats {
  joins: number;
  handshakeFailures: number;
  droppedConnections: number;
  /** Bytes of peer links relayed. */
  relayed: number;
}

export class Seed extends EventEmitter<SeedEvents> {
  readonly cidr: Cidr;
  private readonly bindings: Bindings;
  private readonly members = new Map<number, Entry>();
  /** `boxer lambda run` members admitted: run key -> member id (in admission order, at most MAX_RUN_KEYS). */
  private readonly runKeys = new Map<string, number>();
  private relearnUntil = 0;
  /** Until then, rejoins of keys without a binding may claim free ids (a seed that lost its state). */
  private claimsUntil = 0;
  private held: Array<() => void> = [];
  private server: net.Server | null = null;
  private sweeper: NodeJS.Timeout | null = null;
  private relearnTimer: NodeJS.Timeout | null = null;
  private readonly sockets = new Set<Duplex>();
  /** Handshake rate limit per source and the summary of refusals (gate.ts). */
  readonly gate = new HandshakeGate(log);
  readonly stats: SeedStats = { joins: 0, handshakeFailures: 0, droppedConnections: 0, relayed: 0 };
  /** Observers (`boxer lambda run`): they hear joins and leaves, outcomes included (src/control/watch.ts). */
  readonly watchers = new WatchHub();
  selfId: number | null = null;
  /** The port of the NAT discovery server (src/traversal/discovery.ts), told to agents in `reflect`. */
  discoveryPort: number | null = null;
  /** The seed's own member's peer links (src/traversal), when it runs a command: gets what is sent to it. */
  selfSink: { onFwd(m: Extract<Message, { t: 'fwd' }>, via: null): void; onRelay(m: Extract<Message, { t: 'relay' }>, via: null): void } | null = null;

  constructor(private readonly opts: SeedOptions) {
    super();
    this.cidr = parseCidr(opts.network);
    this.bindings = new Bindings(this.cidr);
    const relearnMs = opts.relearnMs ?? SEED_RELEARN_MS;
    const state = this.bindings.load(opts.stateFile);
    if (state !== 'none') {
      this.relearnUntil = Date.now() + relearnMs;
      log.info('restarted: relearning the membership from the members', { maxId: this.bindings.maxId, bindings: this.bindings.size });
      this.relearnTimer = setTimeout(() => this.endRelearn(), relearnMs);
    }
    if (state !== 'bindings') this.claimsUntil = Date.now() + relearnMs;
    if (opts.self) {
      const id = this.bindings.nextId((x) => this.members.has(x));
      if (id === null) throw new BoxerError('NETWORK_FULL', `the virtual network ${this.cidr.text} is full`);
      const info: MemberInfo = {
        id,
        name: opts.self.name ?? defaultName(id),
        addr: addressOf(this.cidr, id)!,
        services: opts.self.services,
        ext: opts.self.ext,
        priv: [],
        nat: 'open',
        key: opts.keys.publicKey,
        lport: 0,
      };
      const why = nameConflict(this.owners(), id, info.name, info.services);
      if (why) throw new BoxerError('NAME_TAKEN', why);
      this.members.set(id, { info, channel: null, lastSeen: Infinity, grace: null });
      this.bindings.bind(hex(opts.keys.publicKey), id, info.name, (x) => this.members.has(x));
      this.selfId = id;
      this.saveState();
    }
    this.sweeper = setInterval(() => this.sweep(), HEARTBEAT_INTERVAL_MS);
    this.sweeper.unref();
  }

  /** Listens on host:port (TCP). Resolves once listening. */
  listen(host: string, port: number): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      const server = net.createServer((sock) => {
        sock.setNoDelay(true);
        this.accept(sock, { ip: stripV6(sock.remoteAddress ?? '0.0.0.0'), port: sock.remotePort ?? 0 });
      });
      server.once('error', (e: NodeJS.ErrnoException) => {
        reject(new BoxerError('USAGE', `cannot listen on ${host}:${port}: ${e.code ?? e.message}${e.code === 'EADDRINUSE' ? ' (another seed or program uses that port; pick another with --listen)' : ''}`));
      });
      server.listen(port, host, () => {
        this.server = server;
        resolve(server.address() as net.AddressInfo);
      });
    });
  }

  /** Takes one incoming connection (from the TCP server, or an in-memory stream in tests). */
  accept(stream: Duplex, remote: Endpoint): void {
    const peer = `${remote.ip}:${remote.port}`;
    if (!this.gate.admit(remote.ip)) {
      // Over its rate: closed before any key exchange (gate.ts), counted in the periodic summary.
      this.stats.handshakeFailures++;
      stream.destroy();
      return;
    }
    this.sockets.add(stream);
    stream.on('close', () => this.sockets.delete(stream));
    stream.on('error', () => {});
    Channel.respond(stream, { psk: this.opts.psk, keys: this.opts.keys, peer })
      .then((ch) => this.onChannel(ch, remote))
      .catch((e: Error) => {
        this.stats.handshakeFailures++;
        const kind = e instanceof HandshakeError ? e.reason : /within|timed? ?out/i.test(e.message) ? 'timeout' : 'other';
        this.gate.refused(kind, remote.ip, { port: remote.port, reason: e.message });
      });
  }

  private onChannel(ch: Channel, remote: Endpoint): void {
    let entry: Entry | null = null;
    let watching = false;
    const firstTimer = setTimeout(() => {
      if (!entry) ch.close('no join message after the handshake');
    }, HANDSHAKE_TIMEOUT_MS);
    ch.on('message', (m) => {
      if (watching) return; // the WatchHub answers observers
      if (!entry) {
        if (m.t === 'watch') {
          clearTimeout(firstTimer);
          watching = true;
          this.watchers.add(ch, m.run ?? null, this.list().map((i) => this.watchers.tag(i.id) ?? { id: i.id, name: i.name, addr: i.addr }));
          return;
        }
        if (m.t === 'probe') {
          // NAT discovery: reflect the endpoint of the control connection (src/traversal/discovery.ts).
          ch.sendMessage({ t: 'reflect', observed: remote, open: false, dport: this.discoveryPort ?? undefined });
          return;
        }
        if (m.t !== 'join') return ch.close(`expected join, got ${m.t}`);
        clearTimeout(firstTimer);
        const admit = () => {
          if (ch.isClosed) return;
          entry = this.admit(ch, remote, m);
        };
        // New joins wait while a restarted seed relearns; rejoins of known members go first.
        if (!m.rejoin && Date.now() < this.relearnUntil) this.held.push(admit);
        else admit();
        return;
      }
      entry.lastSeen = Date.now();
      this.onMessage(entry, m);
    });
    ch.on('close', () => {
      clearTimeout(firstTimer);
      if (entry && entry.channel === ch) this.onDisconnect(entry);
    });
    ch.start();
  }

  /**
   * Admits a join: the key's binding when it has one (the same member on a new connection, or restarted with its
   * kept key), else a claim of a rejoin (a seed that lost its state), else a new id. Refuses what conflicts.
   */
  private admit(ch: Channel, remote: Endpoint, m: Extract<Message, { t: 'join' }>): Entry | null {
    const refuse = (code: string, message: string) => {
      log.info('refused a join', { peer: ch.peer, code, reason: message });
      ch.sendMessage({ t: 'error', code, message });
      setTimeout(() => ch.close(), 50).unref();
      return null;
    };
    const live = (id: number) => this.members.has(id);
    const key = hex(ch.remoteStatic);
    const d = this.bindings.decide(key, m, { live, keyOf: (x) => this.members.get(x)?.info.key, owners: this.owners(), claimsOpen: Date.now() < this.claimsUntil });
    if ('refuse' in d) return refuse(d.refuse, d.message);
    const { id, name, bound } = d;
    // At-least-once delivery of `boxer lambda run`'s invocations: one member per (run, index), ever; the same
    // member (its key holds the id) may come back.
    const runKey = m.run ? `${m.run.id}/${m.run.index}` : null;
    const runHolder = runKey === null ? undefined : this.runKeys.get(runKey);
    if (runHolder !== undefined && runHolder !== id) {
      return refuse('duplicate', `member ${m.run!.index} of run ${m.run!.id} has joined already (as member ${runHolder}): this is a duplicate invocation`);
    }
    const known = this.members.get(id);
    const binding = this.bindings.bind(key, id, name, live);
    if (runKey !== null) this.rememberRun(runKey, id);
    const tag = { id, name, addr: binding.addr, ...(m.run ? { run: m.run.id, index: m.run.index } : {}) };
    const info: MemberInfo = { id, name, addr: binding.addr, services: m.services, ext: remote, priv: m.priv, nat: m.nat as NatKind, key: ch.remoteStatic, lport: m.lport ?? 0, ...(m.map ? { map: m.map } : {}), ...(m.standby ? { standby: true } : {}) };
    if (known) {
      // The same key on a new connection: the same process (a rejoin), or the member restarted with its key.
      if (known.grace) clearTimeout(known.grace);
      const old = known.channel;
      known.channel = ch;
      known.grace = null;
      known.lastSeen = Date.now();
      if (old && old !== ch) old.close();
      if (m.rejoin) {
        Object.assign(known.info, { ext: remote, nat: m.nat, priv: m.priv, ...(m.lport !== undefined ? { lport: m.lport } : {}), ...(m.map ? { map: m.map } : {}) });
        ch.sendMessage(this.welcome(known.info, remote));
        this.saveState();
        return known;
      }
      // A new process: the members drop what they knew of the old one (links, connections), then learn the new.
      known.info = info;
      this.saveState();
      ch.sendMessage(this.welcome(info, remote));
      this.broadcast({ t: 'left', id, reason: 'dead' }, id);
      this.broadcast({ t: 'joined', m: info }, id);
      this.watchers.left(id, 'dead', undefined);
      this.watchers.joined(tag);
      log.info('member restarted with its key', { id, name, addr: info.addr, ext: `${remote.ip}:${remote.port}`, key: fingerprint(ch.remoteStatic) });
      this.emit('change');
      return known;
    }
    const entry: Entry = { info, channel: ch, lastSeen: Date.now(), grace: null };
    this.members.set(id, entry);
    this.stats.joins++;
    this.saveState();
    // The others first: a member names a connection from the newcomer only once it knows it (src/vnet/sources.ts),
    // and the newcomer's program may connect as soon as the welcome is in.
    this.broadcast({ t: 'joined', m: info }, id);
    ch.sendMessage(this.welcome(info, remote));
    this.watchers.joined(tag);
    log.info(m.rejoin ? 'member rejoined' : bound ? 'member came back with its key' : 'member joined', { id, name, addr: info.addr, ext: `${remote.ip}:${remote.port}`, key: fingerprint(ch.remoteStatic) });
    this.emit('change');
    return entry;
  }

  private rememberRun(key: string, id: number): void {
    this.runKeys.delete(key);
    this.runKeys.set(key, id);
    while (this.runKeys.size > MAX_RUN_KEYS) this.runKeys.delete(this.runKeys.keys().next().value!);
  }

  private welcome(info: MemberInfo, observed: Endpoint): Message {
    return {
      t: 'welcome',
      id: info.id,
      addr: info.addr,
      name: info.name,
      network: this.cidr.text,
      observed,
      members: this.list(),
      relearning: Date.now() < this.relearnUntil,
    };
  }

  private onMessage(entry: Entry, m: Message): void {
    switch (m.t) {
      case 'ping':
        entry.channel?.sendMessage({ t: 'pong', n: m.n });
        break;
      case 'leave':
        this.remove(entry.info.id, 'leave', m.outcome);
        entry.channel?.sendMessage({ t: 'left', id: entry.info.id, reason: 'leave' });
        entry.channel?.close();
        break;
      case 'pong':
        break;
      case 'services':
        // A member changes the services it provides (drains before leaving): everyone, itself included, hears it.
        {
          const why = nameConflict(this.owners(), entry.info.id, entry.info.name, m.services);
          if (why) {
            entry.channel?.sendMessage({ t: 'error', code: 'NAME_TAKEN', message: why });
            break;
          }
        }
        entry.info.services = m.services;
        if (m.standby) entry.info.standby = true;
        else delete entry.info.standby;
        this.broadcast({ t: 'joined', m: entry.info }, -1);
        break;
      case 'svnet':
        this.emit('svnet', entry.info.id, m.payload);
        break;
      case 'fwd': {
        // Signalling between members (src/traversal): the seed vouches for the sender.
        if (m.to === this.selfId && this.selfSink) {
          this.selfSink.onFwd({ t: 'fwd', to: m.to, from: entry.info.id, body: m.body }, null);
          break;
        }
        this.sendTo(m.to, { t: 'fwd', to: m.to, from: entry.info.id, body: m.body });
        break;
      }
      case 'relay': {
        // Relay of an end-to-end encrypted peer link: the seed sees only ciphertext.
        if (m.peer === this.selfId && this.selfSink) {
          this.selfSink.onRelay({ t: 'relay', peer: entry.info.id, sid: m.sid, data: m.data, end: m.end, hop: false }, null);
          break;
        }
        if (relayHop(m, entry.info.id, (id, x) => this.sendTo(id, x))) this.stats.relayed += m.data.length;
        break;
      }
      default:
        entry.channel?.close(`unexpected ${m.t} from member ${entry.info.id}`);
    }
  }

  /** Sends the seed relay's message to member `id`; false when it is not connected. */
  sendVnet(id: number, payload: Uint8Array): boolean {
    const e = this.members.get(id);
    return !!e?.channel && e.channel.sendMessage({ t: 'svnet', payload });
  }

  /** Sends `m` to member `id` on its control connection; false when it has none. */
  private sendTo(id: number, m: Message): boolean {
    const ch = this.members.get(id)?.channel;
    if (!ch) return false;
    ch.sendMessage(m);
    return true;
  }

  /** What the seed's own member sends "to the seed" (signalling, relay): delivered to the member it names. */
  fromSelf(m: Message): boolean {
    if (this.selfId === null) return false;
    if (m.t === 'fwd') return this.sendTo(m.to, { t: 'fwd', to: m.to, from: this.selfId, body: m.body });
    if (m.t === 'relay') return relayHop(m, this.selfId, (id, x) => this.sendTo(id, x));
    return false;
  }

  /** A member by id. */
  member(id: number): MemberInfo | undefined {
    return this.members.get(id)?.info;
  }

  /** The port of the seed's own member's peer-link listener (announced to joining members). */
  setSelfListener(port: number): void {
    const e = this.selfId !== null ? this.members.get(this.selfId) : undefined;
    if (e) e.info.lport = port;
  }

  private onDisconnect(entry: Entry): void {
    entry.channel = null;
    if (!this.members.has(entry.info.id)) return;
    this.stats.droppedConnections++;
    log.info('member connection lost; waiting for it to reconnect', { id: entry.info.id, graceMs: RECONNECT_GRACE_MS });
    entry.grace = setTimeout(() => {
      if (!entry.channel) this.remove(entry.info.id, 'dead');
    }, RECONNECT_GRACE_MS);
    entry.grace.unref();
  }

  private sweep(): void {
    const now = Date.now();
    for (const e of this.members.values()) {
      if (e.channel && now - e.lastSeen > DEAD_AFTER_MS) {
        log.info('member stopped sending heartbeats: declaring it dead', { id: e.info.id, silentMs: now - e.lastSeen });
        const ch = e.channel;
        e.channel = null;
        ch.close();
        this.remove(e.info.id, 'dead');
      }
    }
  }

  private remove(id: number, reason: 'leave' | 'dead', outcome?: Outcome): void {
    const e = this.members.get(id);
    if (!e) return;
    if (e.grace) clearTimeout(e.grace);
    this.members.delete(id);
    log.info(reason === 'leave' ? 'member left' : 'member died', { id, name: e.info.name });
    this.broadcast({ t: 'left', id, reason }, id);
    this.watchers.left(id, reason, outcome);
    this.emit('change');
  }

  private endRelearn(): void {
    this.relearnUntil = 0;
    // Members that died while the seed was down never came back: everyone gets the authoritative list.
    this.broadcast({ t: 'members', members: this.list() }, -1);
    for (const admit of this.held.splice(0)) admit();
    this.emit('change');
  }

  private broadcast(m: Message, except: number): void {
    for (const e of this.members.values()) if (e.info.id !== except && e.channel) e.channel.sendMessage(m);
  }

  private owners(): NameOwners {
    const owners: NameOwners = { members: new Map(), services: new Map() };
    for (const e of this.members.values()) {
      owners.members.set(e.info.name, e.info.id);
      for (const s of e.info.services) owners.services.set(s, (owners.services.get(s) ?? 0) + 1);
    }
    return owners;
  }

  /** Members sorted by id. */
  list(): MemberInfo[] {
    return [...this.members.values()].map((e) => e.info).sort((a, b) => a.id - b.id);
  }

  get size(): number {
    return this.members.size;
  }

  /** Records the bindings (the live members' as seen now). */
  private saveState(): void {
    this.bindings.save(this.opts.stateFile, this.members.keys());
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.gate.close();
    if (this.relearnTimer) clearTimeout(this.relearnTimer);
    for (const e of this.members.values()) if (e.grace) clearTimeout(e.grace);
    for (const s of this.sockets) s.destroy();
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
  }
}

function hex(key: Uint8Array): string {
  return Buffer.from(key).toString('hex');
}

export function stripV6(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}
