/**
 * In-memory network doubles (the first test tier, after wireguard-go's conn/bindtest): a connected pair of
 * duplex streams, and a connector that routes an agent's connection straight into a seed's accept().
 */
import { Duplex } from 'node:stream';
import type { Seed } from '../../src/control/seed';
import type { Connector } from '../../src/control/connectors';

export function duplexPair(): [Duplex, Duplex] {
  let a!: Duplex;
  let b!: Duplex;
  const make = (other: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk, _enc, cb) {
        const o = other();
        if (!o.destroyed) setImmediate(() => o.push(chunk));
        cb();
      },
      final(cb) {
        setImmediate(() => other().push(null));
        cb();
      },
      destroy(err, cb) {
        const o = other();
        setImmediate(() => {
          if (!o.destroyed) o.destroy();
        });
        cb(err);
      },
    });
  a = make(() => b);
  b = make(() => a);
  return [a, b];
}

let nextPort = 40000;
/** A connector whose every connection lands in `seed.accept()`, as if from 198.51.100.N:PORT. */
export function memConnector(seed: Seed, fromIp = '198.51.100.7'): Connector {
  return async () => {
    const [client, server] = duplexPair();
    seed.accept(server, { ip: fromIp, port: nextPort++ });
    return client;
  };
}
