/**
 * An in-memory network for peer links (the first test tier): listeners, dials and simultaneous opens between
 * agents of one process, each with its own address. No NAT is modelled: the agents are told their NAT kind
 * (natOverride), and the path logic is what is under test.
 */
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../../src/wire/messages';
import type { BoundSocket, PeerIo } from '../../src/traversal/io';
import { duplexPair } from '../support/memnet';

type OnStream = (s: Duplex, remote: Endpoint) => void;

export class MemNet {
  readonly listeners = new Map<string, OnStream>();
  readonly connecting = new Map<string, (s: Duplex) => void>();
  /** Addresses whose inbound connections are dropped (a NAT without a mapping). */
  readonly unreachable = new Set<string>();
  /** While true, every simultaneous open fails (a punch that does not get through). */
  failPunches = false;
  private nextPort = 20000;

  port(): number {
    return this.nextPort++;
  }

  /** The PeerIo of one host on the in-memory network: one short closure per I/O call (long as a table is). */
  io(ip: string): PeerIo {
    return {
      listen: async (on) => {
        const port = this.port();
        this.listeners.set(`${ip}:${port}`, on);
        return { port, close: async () => void this.listeners.delete(`${ip}:${port}`) };
      },
      dial: (to, timeoutMs, fromPort) =>
        new Promise((resolve, reject) => {
          const l = this.listeners.get(`${to.ip}:${to.port}`);
          if (!l || this.unreachable.has(to.ip)) {
            setTimeout(() => reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), Math.min(timeoutMs, 20));
            return;
          }
          const [a, b] = duplexPair();
          const local = { ip, port: fromPort && fromPort > 0 ? fromPort : this.port() };
          l(b, local);
          resolve({ stream: a, local });
        }),
      bindFresh: (port?: number): BoundSocket => ({ port: port || this.port(), close: () => {} }),
      connectBound: (sock, to, timeoutMs) =>
        new Promise((resolve, reject) => {
          if (this.failPunches) {
            setTimeout(() => reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), 10);
            return;
          }
          const me = `${ip}:${sock.port}>${to.ip}:${to.port}`;
          const mirror = `${to.ip}:${to.port}>${ip}:${sock.port}`;
          const other = this.connecting.get(mirror);
          if (other) {
            this.connecting.delete(mirror);
            const [a, b] = duplexPair();
            other(b);
            resolve(a);
            return;
          }
          const t = setTimeout(() => {
            this.connecting.delete(me);
            reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
          }, timeoutMs);
          this.connecting.set(me, (s) => {
            clearTimeout(t);
            resolve(s);
          });
        }),
      acceptOnce: (port, timeoutMs) =>
        new Promise((resolve, reject) => {
          const key = `${ip}:${port}`;
          const t = setTimeout(() => {
            this.listeners.delete(key);
            reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
          }, timeoutMs);
          this.listeners.set(key, (s) => {
            clearTimeout(t);
            this.listeners.delete(key);
            resolve(s);
          });
        }),
      resolve: async (h) => h,
    };
  }
}
