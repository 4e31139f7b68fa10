/**
 * The socket operations NAT traversal needs, behind one narrow interface (`PeerIo`) so that tests can
 * substitute an in-memory network. The real implementation uses the native addon (native/index.d.ts):
 * Node.js 20 cannot bind a client socket to a chosen port with SO_REUSEPORT, which both the discovery probe
 * (same local port as the control connection) and the simultaneous open (connect from a known local port)
 * need.
 */
import net from 'node:net';
import dns from 'node:dns/promises';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../wire/messages';
import { native } from '../util/native';


/** A socket bound to a local port, not yet connected. */
export interface BoundSocket {
  port: number;
  close(): void;
}

export interface Listener {
  port: number;
  close(): Promise<void>;
}

/**
 * `dial(to, ms, OWN_PORT)`: bind a port no other socket holds before connecting (bind(0): the kernel skips
 * every port in use, and connect() of any process skips a port bound so), so that the discovery probe can
 * share it by SO_REUSEPORT. The control connection to the seed dials so: a port picked by connect() itself
 * may be shared with another process's socket to another destination, and the probe's bind would fail.
 */
export const OWN_PORT = -1;

export interface PeerIo {
  /** Listens for peer links on all addresses, port chosen by the system. */
  listen(onStream: (s: Duplex, remote: Endpoint) => void): Promise<Listener>;
  /**
   * Connects from a fresh local port (or `fromPort`, shared with SO_REUSEPORT; OWN_PORT: a port of its own
   * that a later `fromPort` dial may share); rejects on failure or timeout.
   */
  dial(to: Endpoint, timeoutMs: number, fromPort?: number): Promise<{ stream: Duplex; local: Endpoint }>;
  /** Binds a fresh socket (kernel-chosen port, or `port` shared with SO_REUSEPORT), for a simultaneous open. */
  bindFresh(port?: number): BoundSocket;
  /** Connects `sock` to `to` (both sides do it at once: simultaneous open). Consumes `sock`. */
  connectBound(sock: BoundSocket, to: Endpoint, timeoutMs: number): Promise<Duplex>;
  /** Accepts one connection on `port` (all addresses) within `timeoutMs`, then stops listening. */
  acceptOnce(port: number, timeoutMs: number): Promise<Duplex>;
  /** Resolves a host name to an IPv4 address. */
  resolve(host: string): Promise<string>;
}

class NativeBound implements BoundSocket {
  closed = false;
  constructor(
    readonly fd: number,
    readonly port: number,
  ) {}
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      native().close(this.fd);
    } catch {
      /* already closed */
    }
  }
}

function wrap(fd: number): net.Socket {
  const s = new net.Socket({ fd, readable: true, writable: true });
  s.setNoDelay(true);
  return s;
}

/** The real network, through the addon. */
export const nativeIo: PeerIo = {
  listen(onStream) {
    return new Promise((resolve, reject) => {
      // Every accepted socket is tracked, so that close() ends them: server.close() alone waits for all of
      // them, and a peer linking to us while we shut down would keep the process alive.
      const accepted = new Set<net.Socket>();
      const server = net.createServer((sock) => {
        accepted.add(sock);
        sock.once('close', () => accepted.delete(sock));
        sock.setNoDelay(true);
        const ip = (sock.remoteAddress ?? '0.0.0.0').replace(/^::ffff:/, '');
        onStream(sock, { ip, port: sock.remotePort ?? 0 });
      });
      server.once('error', reject);
      server.listen(0, '0.0.0.0', () => {
        const port = (server.address() as net.AddressInfo).port;
        resolve({
          port,
          close: () =>
            new Promise<void>((r) => {
              server.close(() => r());
              for (const sock of accepted) sock.destroy();
            }),
        });
      });
    });
  },

  async dial(to, timeoutMs, fromPort = 0) {
    const n = native();
    const fd = n.tcpSocket();
    try {
      // Without a chosen port, let connect() pick it: bind(0) draws from the half of the ephemeral range that
      // listen(0) uses, where client sockets would take ports that servers (and tests) are about to listen on.
      // OWN_PORT: bind(0) before connect, for a port no other socket holds (see OWN_PORT).
      if (fromPort) n.bind(fd, '0.0.0.0', fromPort === OWN_PORT ? 0 : fromPort);
      if (!n.connectStart(fd, to.ip, to.port)) await n.connectWait(fd, timeoutMs);
      const la = n.localAddress(fd);
      return { stream: wrap(fd), local: { ip: la.address, port: la.port } };
    } catch (e) {
      try {
        n.close(fd);
      } catch {
        /* closed */
      }
      throw e;
    }
  },

  bindFresh(port = 0) {
    const n = native();
    const fd = n.tcpSocket();
    try {
      n.bind(fd, '0.0.0.0', port);
      return new NativeBound(fd, n.localAddress(fd).port);
    } catch (e) {
      n.close(fd);
      throw e;
    }
  },

  async connectBound(sock, to, timeoutMs) {
    const n = native();
    const b = sock as NativeBound;
    try {
      if (!n.connectStart(b.fd, to.ip, to.port)) await n.connectWait(b.fd, timeoutMs);
    } catch (e) {
      b.close();
      throw e;
    }
    b.closed = true; // the net.Socket owns the descriptor now
    return wrap(b.fd);
  },

  acceptOnce(port, timeoutMs) {
    return new Promise((resolve, reject) => {
      let done = false;
      const server = net.createServer((sock) => {
        if (done) return sock.destroy();
        done = true;
        clearTimeout(t);
        server.close();
        sock.setNoDelay(true);
        resolve(sock);
      });
      const t = setTimeout(() => {
        done = true;
        server.close();
        reject(Object.assign(new Error(`no connection on port ${port} within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      server.once('error', (e) => {
        done = true;
        clearTimeout(t);
        reject(e);
      });
      server.listen(port, '0.0.0.0');
    });
  },

  async resolve(host) {
    if (net.isIPv4(host)) return host;
    const r = await dns.lookup(host, { family: 4 });
    return r.address;
  },
};
