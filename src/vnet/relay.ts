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
 *
 * The splice itself runs in the kernel when the addon is there (`KernelSplice`, splice(2) on threads of the
 * addon's own: the bytes never enter JavaScript), at most MAX_KERNEL_SPLICES at once; otherwise, or beyond
 * that, the two streams are piped in Node (with its backpressure). Either way EOF half-closes and an error
 * resets the other side, as one TCP connection would.
 *
 * Both halves get keepalive and TCP_USER_TIMEOUT (RELAY_KEEPALIVE_*): when a NAT on one side forgets the flow
 * (restarted, `conntrack -F`; a port-randomizing NAT then maps the member's next packet to a new port, and the
 * half is dead for good), that half errors within a bound and the other is reset, so the programs get
 * ECONNRESET instead of a connection that hangs until the kernel's 15 retransmissions (about 15 minutes).
 */
import net from 'node:net';
import crypto from 'node:crypto';
import { logger } from '../util/log';
import { MAX_KERNEL_SPLICES, MAX_PENDING_RELAYS, RELAY_KEEPALIVE_COUNT, RELAY_KEEPALIVE_IDLE_S, RELAY_KEEPALIVE_INTVL_S, RELAY_PAIR_TIMEOUT_MS, RELAY_USER_TIMEOUT_MS, TOKEN_BYTES } from '../constants';

const log = logger('relay');

/** The addon's kernel relay (native/index.d.ts: splice, spliceActive, spliceAbortAll). */
export interface KernelSplice {
  splice(fdA: number, fdB: number, headToA?: Buffer, headToB?: Buffer): Promise<{ aToB: number; bToA: number; reset: boolean }>;
  spliceActive(): number;
  spliceAbortAll(): number;
  /** Keepalive and TCP_USER_TIMEOUT on a socket (native/index.d.ts); absent in memory tests. */
  tcpLiveness?(fd: number, idleS: number, intvlS: number, count: number, userTimeoutMs: number): void;
}

interface Pair {
  cid: string;
  allowIp: string;
  listener: net.Server;
  a: net.Socket | null;
  b: net.Socket | null;
  token: string;
  timer: NodeJS.Timeout;
  /** Tells the client how the far side answered: 0 when its connection arrived, else its errno. Once. */
  notify: ((errno: number) => void) | null;
}

export interface RelayStats {
  relayed: number;
  /** Bytes relayed: counted as they pass in Node, and when a kernel splice ends. */
  bytes: number;
  refused: number;
  /** Relayed connections spliced in the kernel. */
  inKernel: number;
}

export class DataRelay {
  private readonly pairs = new Map<string, Pair>();
  private readonly byToken = new Map<string, Pair>();
  private tokenServer: net.Server | null = null;
  private tokenPort = 0;
  readonly stats: RelayStats = { relayed: 0, bytes: 0, refused: 0, inKernel: 0 };

  /** `kernel`: the addon's splice, when loaded; without it every relayed connection is piped in Node. */
  constructor(private readonly kernel?: KernelSplice) {}

  /**
   * Opens the listening port for a client connection from `allowIp`; returns it and the far side's ticket.
   * `notify(errno)` is called once: 0 when the far side's connection arrives with the token (it listens),
   * or the errno of a refusal passed in cancel().
   */
  async prepare(cid: string, allowIp: string, notify?: (errno: number) => void): Promise<{ port: number; relayPort: number; token: Buffer }> {
    if (this.pairs.size >= MAX_PENDING_RELAYS) {
      this.stats.refused++;
      throw new Error(`too many relayed connections being set up (${MAX_PENDING_RELAYS})`);
    }
    await this.ensureTokenServer();
    const token = crypto.randomBytes(TOKEN_BYTES);
    const listener = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const pair: Pair = { cid, allowIp, listener, a: null, b: null, token: token.toString('hex'), timer: setTimeout(() => this.drop(pair, 'timed out'), RELAY_PAIR_TIMEOUT_MS), notify: notify ?? null };
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

  /**
   * The client gave up, or the far side refused (`errno`: nothing listens, or it cannot reach us): reset the
   * client's half, as a refused connection would, and pass the errno on.
   */
  cancel(cid: string, errno?: number): void {
    const p = this.pairs.get(cid);
    if (!p) return;
    if (errno) this.tell(p, errno);
    this.drop(p, errno ? `refused by the far member (errno ${errno})` : 'given up by the client');
  }

  private tell(p: Pair, errno: number): void {
    const n = p.notify;
    p.notify = null;
    n?.(errno);
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
      this.tell(pair, 0);
      this.maybeSplice(pair);
    };
    s.on('readable', read);
  }

  private maybeSplice(p: Pair): void {
    if (!p.a || !p.b) return;
    clearTimeout(p.timer);
    this.forget(p);
    const { a, b } = p;
    this.stats.relayed++;
    this.liveness(a);
    this.liveness(b);
    // Bytes after the token that Node read already (the client's side was paused on connect: none there).
    const head = (b.read() as Buffer | null) ?? undefined;
    if (this.spliceInKernel(p, head)) return;
    const count = (d: Buffer) => (this.stats.bytes += d.length);
    a.on('data', count);
    b.on('data', count);
    // An error on one side resets the other, as it would end to end.
    a.on('error', () => b.resetAndDestroy());
    b.on('error', () => a.resetAndDestroy());
    if (head) {
      this.stats.bytes += head.length;
      a.write(head);
    }
    a.pipe(b);
    b.pipe(a);
    b.resume();
    a.resume();
    log.debug('relaying a connection in the agent', { cid: p.cid });
  }

  /** Hands the pair to the addon's kernel splice; false (nothing changed) when it cannot take it. */
  private spliceInKernel(p: Pair, headToA: Buffer | undefined): boolean {
    const k = this.kernel;
    const fa = fdOf(p.a!);
    const fb = fdOf(p.b!);
    if (!k || fa === undefined || fb === undefined || k.spliceActive() >= MAX_KERNEL_SPLICES) return false;
    let done;
    try {
      done = k.splice(fa, fb, headToA);
    } catch (e) {
      log.info('cannot splice a relayed connection in the kernel: relaying it in the agent', { cid: p.cid, reason: (e as Error).message });
      return false;
    }
    // The addon holds its own descriptors now: Node's go, unread.
    p.a!.destroy();
    p.b!.destroy();
    this.stats.inKernel++;
    log.debug('relaying a connection in the kernel', { cid: p.cid });
    void done.then((r) => {
      this.stats.bytes += r.aToB + r.bToA;
      log.debug('relayed connection ended', { cid: p.cid, aToB: r.aToB, bToA: r.bToA, reset: r.reset });
    });
    return true;
  }

  /** Keepalive and a user timeout on one half (best effort: without the addon, Node's keepalive only). */
  private liveness(s: net.Socket): void {
    const fd = fdOf(s);
    try {
      if (this.kernel?.tcpLiveness && fd !== undefined) this.kernel.tcpLiveness(fd, RELAY_KEEPALIVE_IDLE_S, RELAY_KEEPALIVE_INTVL_S, RELAY_KEEPALIVE_COUNT, RELAY_USER_TIMEOUT_MS);
      else s.setKeepAlive(true, RELAY_KEEPALIVE_IDLE_S * 1000);
    } catch (e) {
      log.info('cannot set keepalive on a relayed connection', { reason: (e as Error).message });
    }
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
    if (this.stats.inKernel) this.kernel?.spliceAbortAll();
  }
}

/** The descriptor under a net.Socket (a TCP socket of this process), if it has one. */
function fdOf(s: net.Socket): number | undefined {
  const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
