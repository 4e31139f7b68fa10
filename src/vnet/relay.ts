/**
 * The relay of program connections, run by the broker of every `open` member: where no direct or punched path
 * exists between two members (a port-randomizing NAT, two functions behind one NAT without a LAN), the client
 * program's own socket connects to the relay, the far agent connects out to the relay too, and the relay
 * splices the two TCP streams: the bytes are the program's, none added or taken.
 *
 * ```
 *  client A                 relay R (open member)                     server B
 *  broker --relay-req------>  listens on a fresh port P (one connection, from A's address only)
 *         <-relay-ok {P}---   --relay-open {token, relay endpoint}--->  broker: B's program listens on vport?
 *  program socket ===> R:P                                              agent socket ===> R:relay port, token
 *                            splice(A side, B side)  <=================  handed into B's accept()
 * ```
 * The far agent's connection starts with a 16-byte token (the agent's bytes, before the socket is handed to
 * the program); the client's carries nothing extra. Pairs not completed within RELAY_PAIR_TIMEOUT_MS are reset.
 */
import net from 'node:net';
import crypto from 'node:crypto';
import type { Endpoint } from '../wire/messages';
import { logger } from '../util/log';

const log = logger('relay');

/** Both halves of a relayed connection must arrive within this long (a connect's worth of patience). */
export const RELAY_PAIR_TIMEOUT_MS = 10_000;
/** Most relayed connections being set up at once (each holds a listening port); more are refused. */
export const MAX_PENDING_RELAYS = 256;
export const TOKEN_BYTES = 16;

interface Pair {
  cid: string;
  allowIp: string;
  listener: net.Server;
  a: net.Socket | null;
  b: net.Socket | null;
  token: string;
  timer: NodeJS.Timeout;
}

export interface RelayStats {
  relayed: number;
  bytes: number;
  refused: number;
}

export class DataRelay {
  private readonly pairs = new Map<string, Pair>();
  private readonly byToken = new Map<string, Pair>();
  private tokenServer: net.Server | null = null;
  private tokenPort = 0;
  readonly stats: RelayStats = { relayed: 0, bytes: 0, refused: 0 };

  /** Opens the listening port for a client connection from `allowIp`; returns it and the far side's ticket. */
  async prepare(cid: string, allowIp: string): Promise<{ port: number; relayPort: number; token: Buffer }> {
    if (this.pairs.size >= MAX_PENDING_RELAYS) {
      this.stats.refused++;
      throw new Error(`too many relayed connections being set up (${MAX_PENDING_RELAYS})`);
    }
    await this.ensureTokenServer();
    const token = crypto.randomBytes(TOKEN_BYTES);
    const listener = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const pair: Pair = { cid, allowIp, listener, a: null, b: null, token: token.toString('hex'), timer: setTimeout(() => this.drop(pair, 'timed out'), RELAY_PAIR_TIMEOUT_MS) };
    pair.timer.unref();
    listener.on('connection', (s) => {
      const from = (s.remoteAddress ?? '').replace(/^::ffff:/, '');
      if (pair.a || from !== allowIp) {
        s.destroy();
        return;
      }
      pair.a = s;
      listener.close();
      this.maybeSplice(pair);
    });
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(0, '0.0.0.0', () => resolve());
    });
    this.pairs.set(cid, pair);
    this.byToken.set(pair.token, pair);
    return { port: (listener.address() as net.AddressInfo).port, relayPort: this.tokenPort, token };
  }

  /** The far side refused (nothing listens): reset the client's half, as a refused connection would. */
  cancel(cid: string): void {
    const p = this.pairs.get(cid);
    if (p) this.drop(p, 'refused by the far member');
  }

  private async ensureTokenServer(): Promise<void> {
    if (this.tokenServer) return;
    const server = net.createServer({ allowHalfOpen: true }, (s) => this.onFarSide(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '0.0.0.0', () => resolve());
    });
    this.tokenServer = server;
    this.tokenPort = (server.address() as net.AddressInfo).port;
  }

  private onFarSide(s: net.Socket): void {
    s.on('error', () => undefined);
    const t = setTimeout(() => s.destroy(), RELAY_PAIR_TIMEOUT_MS);
    const read = () => {
      const tok = s.read(TOKEN_BYTES) as Buffer | null;
      if (!tok) return;
      s.off('readable', read);
      clearTimeout(t);
      const pair = this.byToken.get(tok.toString('hex'));
      if (!pair || pair.b) {
        s.destroy();
        return;
      }
      pair.b = s;
      this.maybeSplice(pair);
    };
    s.on('readable', read);
  }

  private maybeSplice(p: Pair): void {
    if (!p.a || !p.b) return;
    clearTimeout(p.timer);
    this.forget(p);
    const { a, b } = p;
    const count = (d: Buffer) => (this.stats.bytes += d.length);
    a.on('data', count);
    b.on('data', count);
    // An error on one side resets the other, as it would end to end.
    a.on('error', () => b.resetAndDestroy());
    b.on('error', () => a.resetAndDestroy());
    a.pipe(b);
    b.pipe(a);
    b.resume();
    a.resume();
    this.stats.relayed++;
    log.debug('relaying a connection', { cid: p.cid });
  }

  private drop(p: Pair, why: string): void {
    this.forget(p);
    p.listener.close();
    p.a?.resetAndDestroy();
    p.b?.resetAndDestroy();
    log.info('relayed connection abandoned', { cid: p.cid, reason: why });
  }

  private forget(p: Pair): void {
    clearTimeout(p.timer);
    this.pairs.delete(p.cid);
    this.byToken.delete(p.token);
  }

  close(): void {
    for (const p of [...this.pairs.values()]) this.drop(p, 'agent stopping');
    this.tokenServer?.close();
  }
}

/** The far agent's side: connects out to the relay and sends the token; the socket is then the program's. */
export interface RelayTicket {
  relay: Endpoint;
  token: Buffer;
}
