/**
 * How an agent (or an observer) opens its stream to the seed: TCP by default, through the traversal I/O when
 * the agent has peer links (so the control connection's local port is known), in memory in tests.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { OWN_PORT, type PeerIo } from '../traversal/io';
import { JOIN_TIMEOUT_MS } from '../constants';

export type Connector = (host: string, port: number) => Promise<Duplex>;

/** Opens a TCP connection, failing with the socket's error code. */
export const tcpConnector: Connector = (host, port) =>
  new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    sock.setNoDelay(true);
    const onErr = (e: Error) => reject(e);
    sock.once('error', onErr);
    sock.once('connect', () => {
      sock.off('error', onErr);
      resolve(sock);
    });
  });

/**
 * A Connector through the traversal I/O, so that the control connection's local port is known, and its own:
 * bound before the connect (OWN_PORT), so that NAT discovery's probe can share it (a port picked by connect()
 * may be held by another process's socket to another destination: the probe's bind then failed).
 */
export function ioConnector(io: PeerIo): Connector {
  return async (host, port) => {
    const ip = await io.resolve(host);
    return (await io.dial({ ip, port }, JOIN_TIMEOUT_MS, OWN_PORT)).stream;
  };
}
