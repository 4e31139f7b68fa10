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
 * This file takes connections and members' messages; the membership table is seed-roster.ts, admission of a
 * join seed-admission.ts, the relearning after a restart seed-relearn.ts, the bindings and their state file
 * bindings.ts.
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
import { defaultName, nameConflict } from './names';
import { Roster, type Entry } from './seed-roster';
import { Admission, hex } from './seed-admission';
import { Relearn } from './seed-relearn';
import type { Endpoint, MemberInfo, Message } from '../wire/messages';
import type { KeyPair } from '../crypto/keys';
import { HandshakeError } from '../crypto/noise';
import { HEARTBEAT_INTERVAL_MS, SEED_RELEARN_MS, HANDSHAKE_TIMEOUT_MS, CONTROL_HANDSHAKE_TIMEOUT_MS } from '../constants';
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
  private server: net.Server | null = null;
  private sweeper: NodeJS.Timeout | null = null;
  private readonly sockets = new Set<Duplex>();
  /** Handshake rate limit per source and the summary of refusals (gate.ts). */
  readonly gate = new HandshakeGate(log);
  readonly stats: SeedStats = { joins: 0, handshakeFailures: 0, droppedConnections: 0, relayed: 0 };
  /** Observers (`boxer lambda run`): they hear joins and leaves, outcomes included (src/control/watch.ts). */
  readonly watchers = new WatchHub();
  /** The members (seed-roster.ts). */
  private readonly members = new Roster(this.watchers, log, {
    changed: () => this.emit('change'),
    dropped: () => this.stats.droppedConnections++,
    welcome: (info, observed) => this.welcomeBase(info, observed),
  });
  private readonly relearn: Relearn;
  private readonly admission: Admission;
  selfId: number | null = null;
  /** The port of the NAT discovery server (src/traversal/discovery.ts), told to agents in `reflect`. */
  discoveryPort: number | null = null;
  /** The seed's own member's peer links (src/traversal), when it runs a command: gets what is sent to it. */
  selfSink: { onFwd(m: Extract<Message, { t: 'fwd' }>, via: null): void; onRelay(m: Extract<Message, { t: 'relay' }>, via: null): void } | null = null;

  constructor(private readonly opts: SeedOptions) {
    super();
    this.cidr = parseCidr(opts.network);
    this.bindings = new Bindings(this.cidr);
    const state = this.bindings.load(opts.stateFile);
    this.relearn = new Relearn(state, opts.relearnMs ?? SEED_RELEARN_MS, log, {
      ended: () => this.members.broadcast({ t: 'members', members: this.list() }, -1),
      changed: () => this.emit('change'),
    }, { maxId: this.bindings.maxId, bindings: this.bindings.size });
    this.admission = new Admission({
      roster: this.members,
      bindings: this.bindings,
      watchers: this.watchers,
      log,
      claimsOpen: () => this.relearn.claimsOpen,
      welcome: (info, observed) => this.welcome(info, observed),
      saveState: () => this.saveState(),
      joined: () => this.stats.joins++,
      changed: () => this.emit('change'),
    });
    if (opts.self) this.addSelf(opts.self);
    this.sweeper = setInterval(() => this.members.sweep(), HEARTBEAT_INTERVAL_MS);
    this.sweeper.unref();
  }

  /** The seed's own member (it runs a command): an id, an address and a name like any member, no connection. */
  private addSelf(self: NonNullable<SeedOptions['self']>): void {
    const id = this.bindings.nextId((x) => this.members.has(x));
    if (id === null) throw new BoxerError('NETWORK_FULL', `the virtual network ${this.cidr.text} is full`);
    const info: MemberInfo = {
      id,
      name: self.name ?? defaultName(id),
      addr: addressOf(this.cidr, id)!,
      services: self.services,
      ext: self.ext,
      priv: [],
      nat: 'open',
      key: this.opts.keys.publicKey,
      lport: 0,
    };
    const why = nameConflict(this.members.owners(), id, info.name, info.services);
    if (why) throw new BoxerError('NAME_TAKEN', why);
    this.members.add({ info, channel: null, lastSeen: Infinity, grace: null });
    this.bindings.bind(hex(this.opts.keys.publicKey), id, info.name, (x) => this.members.has(x));
    this.selfId = id;
    this.saveState();
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
    Channel.respond(stream, { psk: this.opts.psk, keys: this.opts.keys, peer, handshakeTimeoutMs: CONTROL_HANDSHAKE_TIMEOUT_MS })
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
        // New joins wait while a restarted seed relearns; rejoins of known members go first.
        this.relearn.admitOrHold(!!m.rejoin, () => {
          if (ch.isClosed) return;
          entry = this.admission.admit(ch, remote, m);
        });
        return;
      }
      entry.lastSeen = Date.now();
      this.onMessage(entry, m);
    });
    ch.on('close', () => {
      clearTimeout(firstTimer);
      if (entry && entry.channel === ch) this.members.disconnected(entry);
    });
    ch.start();
  }

  private welcome(info: MemberInfo, observed: Endpoint): Message {
    return { ...this.welcomeBase(info, observed), members: this.list() };
  }

  /** A welcome but for its member list (the roster adds it: seed-roster.ts). */
  private welcomeBase(info: MemberInfo, observed: Endpoint): Omit<Extract<Message, { t: 'welcome' }>, 'members'> {
    return { t: 'welcome', id: info.id, addr: info.addr, name: info.name, network: this.cidr.text, observed, relearning: this.relearn.relearning };
  }

  private onMessage(entry: Entry, m: Message): void {
    switch (m.t) {
      case 'ping':
        entry.channel?.sendMessage({ t: 'pong', n: m.n });
        break;
      case 'leave':
        this.members.remove(entry.info.id, 'leave', m.outcome);
        entry.channel?.sendMessage({ t: 'left', id: entry.info.id, reason: 'leave' });
        entry.channel?.close();
        break;
      case 'pong':
        break;
      case 'services':
        // A member changes the services it provides (drains before leaving): everyone, itself included, hears it.
        {
          const why = nameConflict(this.members.owners(), entry.info.id, entry.info.name, m.services);
          if (why) {
            entry.channel?.sendMessage({ t: 'error', code: 'NAME_TAKEN', message: why });
            break;
          }
        }
        entry.info.services = m.services;
        if (m.standby) entry.info.standby = true;
        else delete entry.info.standby;
        this.members.broadcast({ t: 'joined', m: entry.info }, -1);
        break;
      case 'nat':
        // NAT discovery ended after the join (the connect-back test came through): everyone, itself included, hears it.
        if (entry.info.nat !== m.nat) {
          entry.info = { ...entry.info, nat: m.nat };
          this.members.broadcast({ t: 'joined', m: entry.info }, -1);
          this.emit('change');
        }
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
        this.members.sendTo(m.to, { t: 'fwd', to: m.to, from: entry.info.id, body: m.body });
        break;
      }
      case 'relay': {
        // Relay of an end-to-end encrypted peer link: the seed sees only ciphertext.
        if (m.peer === this.selfId && this.selfSink) {
          this.selfSink.onRelay({ t: 'relay', peer: entry.info.id, sid: m.sid, data: m.data, end: m.end, hop: false }, null);
          break;
        }
        if (relayHop(m, entry.info.id, (id, x) => this.members.sendTo(id, x))) this.stats.relayed += m.data.length;
        break;
      }
      default:
        entry.channel?.close(`unexpected ${m.t} from member ${entry.info.id}`);
    }
  }

  /** Sends the seed relay's message to member `id`; false when it is not connected. */
  sendVnet(id: number, payload: Uint8Array): boolean {
    this.members.flush(); // a newcomer hears nothing before its welcome
    const e = this.members.get(id);
    return !!e?.channel && e.channel.sendMessage({ t: 'svnet', payload });
  }

  /** What the seed's own member sends "to the seed" (signalling, relay): delivered to the member it names. */
  fromSelf(m: Message): boolean {
    if (this.selfId === null) return false;
    if (m.t === 'fwd') return this.members.sendTo(m.to, { t: 'fwd', to: m.to, from: this.selfId, body: m.body });
    if (m.t === 'relay') return relayHop(m, this.selfId, (id, x) => this.members.sendTo(id, x));
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

  /** Members sorted by id. */
  list(): MemberInfo[] {
    return this.members.list();
  }

  get size(): number {
    return this.members.size;
  }

  /** Records the bindings (the live members' as seen now). */
  private saveState(): void {
    this.bindings.save(this.opts.stateFile, this.members.ids());
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.gate.close();
    this.relearn.close();
    this.members.close();
    for (const s of this.sockets) s.destroy();
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
  }
}

export function stripV6(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}
