/**
 * The agent's session with its seed: joins (retrying an unreachable seed until the join timeout), runs NAT
 * discovery on the first connection, keeps the connection alive with heartbeats, reconnects and rejoins with
 * its id and address when it is lost (which is how a restarted seed relearns the membership), and leaves.
 * What the seed says after the welcome goes to the agent (agent.ts), which keeps the member list.
 */
import type { Duplex } from 'node:stream';
import { Channel } from '../channel/channel';
import type { Endpoint, Message, NatKind, Outcome } from '../wire/messages';
import { HandshakeError } from '../crypto/noise';
import {
  HEARTBEAT_INTERVAL_MS,
  DEAD_AFTER_MS,
  JOIN_TIMEOUT_MS,
  RECONNECT_MIN_MS,
  RECONNECT_MAX_MS,
  LEAVE_TIMEOUT_MS,
  CONTROL_HANDSHAKE_TIMEOUT_MS,
  DISCOVERY_PORT_OFFSET,
} from '../constants';
import type { Logger } from '../util/log';
import { sleep } from '../util/async';
import { BoxerError, WIRE_ERRORS, type WireErrorCode } from '../util/errors';
import type { Peers } from '../traversal/peers';
import { discover, probe, type NatMapping, type ProbeAnswer } from '../traversal/discovery';
import type { Connector } from './connectors';
import { portMapOf } from './port-map';
import type { AgentOptions, Self } from './agent';

type Welcome = Extract<Message, { t: 'welcome' }>;
type Reflect = Extract<Message, { t: 'reflect' }>;

/** What the session needs of its agent. */
export interface SessionHost {
  /** Who the agent is (null before its first welcome): a rejoin carries it. */
  self(): Self | null;
  /** The NAT mapping as the agent knows it now (it goes into `join`). */
  mapping(): NatMapping;
  /** NAT discovery (or the override) concluded. */
  mapped(m: NatMapping): void;
  /** The seed welcomed us (a join or a rejoin): the agent takes its identity and the member list. */
  welcomed(m: Welcome): void;
  /** A message from the seed after the welcome. */
  message(m: Message): void;
  /** The connection to the seed was lost (the session keeps trying to get it back). */
  lost(): void;
}

export class SeedSession {
  /** The connection to the seed (null while disconnected). */
  channel: Channel | null = null;
  /** The seed's address as connected to. */
  seedIp: string | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private lastHeard = 0;
  private pingN = 0;
  private stopping = false;
  private reconnecting = false;
  private discovered = false;
  /** The NAT kind our last `join` (or `nat`) told the seed (null: no traversal). */
  private joinedAs: NatKind | null = null;

  constructor(
    private readonly opts: AgentOptions,
    private readonly connect: Connector,
    private readonly peers: Peers | null,
    private readonly host: SessionHost,
    private readonly log: Logger,
  ) {}

  get connected(): boolean {
    return !!this.channel && !this.channel.isClosed;
  }

  /**
   * Joins the network: retries an unreachable seed until the join timeout, then fails with a BoxerError
   * (SEED_UNREACHABLE, WRONG_SECRET, NAME_TAKEN, NETWORK_FULL) saying what happened and what to do.
   */
  async join(): Promise<void> {
    const { seedHost, seedPort } = this.opts;
    const deadline = Date.now() + (this.opts.joinTimeoutMs ?? JOIN_TIMEOUT_MS);
    let attempts = 0;
    let lastErr = '';
    let pause = RECONNECT_MIN_MS;
    await this.peers?.start();
    for (;;) {
      attempts++;
      try {
        await this.open();
        return;
      } catch (e) {
        if (e instanceof BoxerError) throw e;
        lastErr = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      }
      if (Date.now() + pause > deadline || this.stopping) {
        throw new BoxerError(
          'SEED_UNREACHABLE',
          `cannot reach the seed at ${seedHost}:${seedPort}: tried ${attempts} times over ${Math.round((this.opts.joinTimeoutMs ?? JOIN_TIMEOUT_MS) / 1000)} s, last error ${lastErr}. Check that \`boxer seed\` runs there and that this host can open connections to it.`,
        );
      }
      await sleep(pause);
      pause = Math.min(pause * 2, RECONNECT_MAX_MS);
    }
  }

  /**
   * One connection to the seed: handshake, (NAT discovery,) join, welcome. Resolves once welcomed. The first
   * time, NAT discovery's first probe starts beside the handshake, from the control connection's port; the
   * join goes once both reflections are in (the connect-back's outcome is not waited for: see upgraded()).
   */
  private async open(): Promise<void> {
    const { seedHost, seedPort } = this.opts;
    const stream = await this.connect(seedHost, seedPort);
    const localPort = (stream as { localPort?: number }).localPort;
    const seedIp = ((stream as { remoteAddress?: string }).remoteAddress ?? seedHost).replace(/^::ffff:/, '');
    const tr = this.opts.traversal;
    const probing = !!tr && !this.discovered && !tr.natOverride && !!localPort;
    const early = probing ? this.startProbe(seedIp, this.opts.traversal?.discoveryPort ?? seedPort + DISCOVERY_PORT_OFFSET, localPort!) : null;
    const ch = await this.handshake(stream);
    this.seedIp = seedIp;
    if (this.peers && !this.peers.primeTo) this.peers.primeTo = { ip: seedIp, port: this.opts.traversal?.discoveryPort ?? seedPort + DISCOVERY_PORT_OFFSET };
    let reflected = false;
    await new Promise<void>((resolve, reject) => {
      let welcomed = false;
      ch.on('message', (m) => {
        if (probing && !reflected && m.t === 'reflect') {
          reflected = true;
          void this.discover(m, early!, seedIp, localPort!).then(() => this.sendJoin(ch, stream));
          return;
        }
        if (welcomed) {
          this.lastHeard = Date.now();
          this.host.message(m);
          return;
        }
        if (m.t === 'welcome') {
          welcomed = true;
          this.onWelcome(ch, m);
          resolve();
          return;
        }
        reject(this.refusal(m));
        ch.close(m.t === 'error' ? undefined : `expected welcome, got ${m.t}`);
      });
      ch.on('close', () => {
        if (!welcomed) reject(new Error('the seed closed the connection before welcoming us'));
        else this.onSeedLost(ch);
      });
      ch.start();
      if (probing) ch.sendMessage({ t: 'probe', listen: 0 });
      else this.sendJoin(ch, stream);
    });
  }

  /** The first probe (with the connect-back test), to the discovery port at `port`; never rejects. */
  private startProbe(ip: string, port: number, localPort: number): { port: number; answer: Promise<ProbeAnswer> } {
    const tr = this.opts.traversal!;
    const answer = probe({ io: tr.io, psk: this.opts.psk, keys: this.opts.keys, seed: { ip, port } }, localPort, this.peers?.lport ?? 0);
    answer.catch(() => undefined); // awaited (and its failure reported) by discover()
    return { port, answer };
  }

  /** The Noise handshake with the seed; a wrong secret or protocol version fails with what to do. */
  private async handshake(stream: Duplex): Promise<Channel> {
    const { seedHost, seedPort } = this.opts;
    try {
      return await Channel.initiate(stream, { psk: this.opts.psk, keys: this.opts.keys, peer: `seed ${seedHost}:${seedPort}`, handshakeTimeoutMs: CONTROL_HANDSHAKE_TIMEOUT_MS });
    } catch (e) {
      if (e instanceof HandshakeError && e.reason === 'wrong-secret') {
        throw new BoxerError('WRONG_SECRET', `the seed at ${seedHost}:${seedPort} refused us: wrong network secret. Use the secret the seed printed (--secret-file FILE or BOXER_SECRET).`);
      }
      if (e instanceof HandshakeError && e.reason === 'version') {
        throw new BoxerError('USAGE', `the seed at ${seedHost}:${seedPort} speaks another protocol version: run the same Boxer version everywhere`);
      }
      throw e;
    }
  }

  /** What a message other than `welcome`, in answer to `join`, means: the seed's refusal, or a broken seed. */
  private refusal(m: Message): Error {
    if (m.t === 'error') {
      const code = m.code in WIRE_ERRORS ? WIRE_ERRORS[m.code as WireErrorCode] : 'INTERNAL';
      return new BoxerError(code, `the seed refused the join: ${m.message}`);
    }
    return new Error(`expected welcome, got ${m.t}`);
  }

  /**
   * NAT discovery against the seed's discovery server, once the seed reflected our control connection: the
   * mapping from the ports now; `open` later, when the connect-back comes through (upgraded()).
   */
  private async discover(m: Reflect, early: { port: number; answer: Promise<ProbeAnswer> }, seedIp: string, localPort: number): Promise<void> {
    const tr = this.opts.traversal!;
    if (m.dport && this.peers && !tr.discoveryPort) this.peers.primeTo = { ip: seedIp, port: m.dport };
    const port = tr.discoveryPort ?? m.dport ?? this.opts.seedPort + DISCOVERY_PORT_OFFSET;
    // The seed names another discovery port than the one guessed: probe there instead.
    const first = port === early.port ? early.answer : this.startProbe(seedIp, port, localPort).answer;
    const found = await discover({ io: tr.io, psk: this.opts.psk, keys: this.opts.keys, seed: { ip: seedIp, port } }, localPort, m.observed, first);
    this.host.mapped(found.mapping);
    this.discovered = true;
    void found.upgrade.then((u) => u && this.upgraded(u));
  }

  /** The connect-back came through after the join: we are `open`; the seed re-announces us. */
  private upgraded(u: NatMapping): void {
    this.host.mapped(u);
    if (this.connected && this.joinedAs !== u.kind) {
      this.channel!.sendMessage({ t: 'nat', nat: u.kind });
      this.joinedAs = u.kind;
    }
  }

  /** `join` (or, with our identity, a rejoin) with what the agent knows now. */
  private sendJoin(ch: Channel, stream: Duplex): void {
    const self = this.host.self();
    const tr = this.opts.traversal;
    const mapping = this.host.mapping();
    this.joinedAs = tr ? mapping.kind : null;
    ch.sendMessage({
      t: 'join',
      name: self ? undefined : this.opts.name,
      services: this.opts.services,
      ...(this.opts.standby && this.opts.services.length ? { standby: true } : {}),
      priv: this.opts.priv ?? this.privCandidates(stream),
      nat: tr ? mapping.kind : this.opts.nat ?? 'unknown',
      lport: this.peers?.lport,
      map: tr ? portMapOf(mapping, this.opts.punchPorts) : undefined,
      run: this.opts.run,
      rejoin: self ? { id: self.id, addr: self.addr, name: self.name } : undefined,
    });
  }

  /** Private address candidates for same-NAT peers: the control connection's local address, our listener's port. */
  private privCandidates(stream: Duplex): Endpoint[] {
    const ip = (stream as { localAddress?: string }).localAddress?.replace(/^::ffff:/, '');
    const port = this.peers?.lport;
    return ip && port && /^\d+\.\d+\.\d+\.\d+$/.test(ip) ? [{ ip, port }] : [];
  }

  private onWelcome(ch: Channel, m: Welcome): void {
    const override = this.opts.traversal?.natOverride;
    if (override && !this.discovered) {
      this.host.mapped({ kind: override, ip: m.observed.ip, xor: null, offset: null }); // the seed's view
      this.discovered = true;
    }
    this.channel = ch;
    this.lastHeard = Date.now();
    this.startHeartbeat();
    this.host.welcomed(m);
    // The connect-back came through between our join and the welcome.
    const now = this.host.mapping().kind;
    if (this.joinedAs !== null && this.joinedAs !== now && now === 'open') {
      ch.sendMessage({ t: 'nat', nat: now });
      this.joinedAs = now;
    }
  }

  private startHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      const ch = this.channel;
      if (!ch || ch.isClosed) return;
      if (Date.now() - this.lastHeard > DEAD_AFTER_MS) {
        ch.close(`the seed has been silent for ${DEAD_AFTER_MS} ms`);
        return;
      }
      ch.sendMessage({ t: 'ping', n: ++this.pingN });
    }, HEARTBEAT_INTERVAL_MS);
    this.heartbeat.unref();
  }

  private onSeedLost(ch: Channel): void {
    if (this.channel !== ch) return;
    this.channel = null;
    if (this.stopping) return;
    this.log.warn('lost the connection to the seed; reconnecting', { seed: `${this.opts.seedHost}:${this.opts.seedPort}` });
    this.host.lost();
    void this.reconnect();
  }

  /** Tries to reach the seed again for as long as the agent runs, with capped backoff. */
  private async reconnect(): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    let pause = RECONNECT_MIN_MS;
    let attempts = 0;
    while (!this.stopping && !this.connected) {
      await sleep(pause);
      if (this.stopping) break;
      attempts++;
      try {
        await this.open();
      } catch (e) {
        if (attempts === 1 || attempts % 30 === 0) {
          this.log.info('seed still unreachable', { attempts, reason: (e as Error).message });
        }
        if (e instanceof BoxerError && e.code !== 'SEED_UNREACHABLE') {
          this.log.error('the seed refused our rejoin', { reason: e.message });
        }
      }
      pause = Math.min(pause * 2, RECONNECT_MAX_MS);
    }
    this.reconnecting = false;
  }

  /** Leaves gracefully: tells the seed (which tells everyone, and observers how the command ended), then closes. */
  async leave(outcome?: Outcome): Promise<void> {
    this.stopping = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    const ch = this.channel;
    if (this.peers) {
      if (!ch || ch.isClosed) this.peers.announceLeave();
      await this.peers.close();
    }
    if (!ch || ch.isClosed) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, LEAVE_TIMEOUT_MS);
      ch.on('message', (m) => {
        if (m.t === 'left' && m.id === this.host.self()?.id) resolve();
      });
      ch.on('close', () => resolve());
      ch.sendMessage(outcome ? { t: 'leave', outcome } : { t: 'leave' });
      t.unref();
    });
    ch.close();
  }

  /** Stops without telling anyone (tests of dead-member detection use it). */
  stop(): void {
    this.stopping = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    void this.peers?.close();
    this.channel?.close();
  }
}
