/**
 * Observers of the seed: a process that knows the network secret follows the membership without being a
 * member (no id, no address, not counted by any barrier). `boxer lambda run` watches its run this way: it
 * sees each function join, and each one leave with the outcome of its command.
 *
 * Protocol (docs/protocol.md, "Observers"): after the handshake the observer sends `watch` {run?} instead of
 * `join`. The seed answers with one `watched` {ev: 'joined'} per member present (of that run, or all when no
 * run is given), then one `watched` per join and leave as they happen; a leave carries the member's `outcome`
 * when it told one in its `leave`. The observer pings (`ping`/`pong`) every WATCH_PING_MS as its keepalive.
 *
 * Seed side: `WatchHub` (the seed calls joined/left). Observer side: `watchSeed()`.
 */
import { EventEmitter } from 'node:events';
import { Channel } from '../channel/channel';
import type { KeyPair } from '../crypto/keys';
import type { Message, Outcome } from '../wire/messages';
import { tcpConnector, type Connector } from './connectors';
import { HANDSHAKE_TIMEOUT_MS, WATCH_PING_MS } from '../constants';
import { BoxerError } from '../util/errors';
import { HandshakeError } from '../crypto/noise';
import { logger } from '../util/log';

const log = logger('watch');

/** What an observer learns of a member. `run` and `index`: the run that started it and its place in it. */
export interface Watched {
  id: number;
  name: string;
  addr: string;
  run?: string;
  index?: number;
}

export type WatchedMessage = Extract<Message, { t: 'watched' }>;

/** The seed's side: the observers it has, and what each should hear. */
export class WatchHub {
  /** Observer channel -> the run it follows (null: every member). Owned by the seed's event loop. */
  private readonly observers = new Map<Channel, string | null>();
  /** Members' run tags, by id, to filter their leave (the seed forgets the member before telling). */
  private readonly tags = new Map<number, Watched>();

  /** Adds an observer (its first message was `watch`) and tells it who is there. */
  add(ch: Channel, run: string | null, present: Watched[]): void {
    this.observers.set(ch, run);
    ch.on('message', (m) => {
      if (m.t === 'ping') ch.sendMessage({ t: 'pong', n: m.n });
      else if (m.t !== 'pong') ch.close(`unexpected ${m.t} from an observer`);
    });
    ch.on('close', () => this.observers.delete(ch));
    for (const w of present) if (run === null || w.run === run) ch.sendMessage({ t: 'watched', ev: 'joined', ...w });
    log.info('observer watching', { peer: ch.peer, run: run ?? '*' });
  }

  joined(w: Watched): void {
    this.tags.set(w.id, w);
    this.send(w, { t: 'watched', ev: 'joined', ...w });
  }

  left(id: number, reason: 'leave' | 'dead', outcome: Outcome | undefined): void {
    const w = this.tags.get(id);
    this.tags.delete(id);
    if (w) this.send(w, { t: 'watched', ev: 'left', ...w, reason, ...(outcome ? { outcome } : {}) });
  }

  /** The tag of a present member (for the snapshot a new observer gets). */
  tag(id: number): Watched | undefined {
    return this.tags.get(id);
  }

  get size(): number {
    return this.observers.size;
  }

  private send(w: Watched, m: WatchedMessage): void {
    for (const [ch, run] of this.observers) if (run === null || w.run === run) ch.sendMessage(m);
  }
}

export interface WatcherEvents {
  joined: [Watched];
  left: [Watched & { reason: 'leave' | 'dead'; outcome?: Outcome }];
  /** The connection to the seed closed (the seed stopped, or the network dropped it). */
  close: [reason: string | null];
}

export interface Watcher extends EventEmitter<WatcherEvents> {
  close(): void;
}

export interface WatchOptions {
  host: string;
  port: number;
  psk: Uint8Array;
  keys: KeyPair;
  run?: string;
  connect?: Connector;
}

/** Connects to the seed as an observer. Rejects with a BoxerError when the seed cannot be reached or refuses. */
export async function watchSeed(o: WatchOptions): Promise<Watcher> {
  const where = `${o.host}:${o.port}`;
  let stream;
  try {
    stream = await (o.connect ?? tcpConnector)(o.host, o.port);
  } catch (e) {
    throw new BoxerError('SEED_UNREACHABLE', `cannot reach the seed at ${where}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}. Check that \`boxer seed\` runs there and that this host can connect to it.`);
  }
  let ch: Channel;
  try {
    ch = await Channel.initiate(stream, { psk: o.psk, keys: o.keys, peer: where, handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS });
  } catch (e) {
    stream.destroy();
    if (e instanceof HandshakeError && e.reason === 'wrong-secret') throw new BoxerError('WRONG_SECRET', `the seed at ${where} does not know this network secret: give the --secret-file the seed uses`);
    throw new BoxerError('SEED_UNREACHABLE', `no handshake with the seed at ${where}: ${(e as Error).message}`);
  }
  const w = new EventEmitter<WatcherEvents>() as Watcher;
  let n = 0;
  const ping = setInterval(() => ch.sendMessage({ t: 'ping', n: ++n }), WATCH_PING_MS);
  ping.unref();
  ch.on('message', (m) => {
    if (m.t !== 'watched') return;
    const base: Watched = { id: m.id, name: m.name, addr: m.addr, ...(m.run !== undefined ? { run: m.run } : {}), ...(m.index !== undefined ? { index: m.index } : {}) };
    if (m.ev === 'joined') w.emit('joined', base);
    else w.emit('left', { ...base, reason: m.reason ?? 'dead', ...(m.outcome ? { outcome: m.outcome } : {}) });
  });
  ch.on('close', (reason) => {
    clearInterval(ping);
    w.emit('close', reason);
  });
  w.close = () => {
    clearInterval(ping);
    ch.close();
  };
  ch.start();
  ch.sendMessage({ t: 'watch', ...(o.run ? { run: o.run } : {}) });
  return w;
}
