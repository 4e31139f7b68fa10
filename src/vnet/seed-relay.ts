/**
 * The seed's relay of program connections: the relay of last resort when no member is `open` (a network of
 * functions only), or none answers. The relay server (relay-server.ts) of an open member's broker, carried
 * over the seed's control connections (`svnet`), where member id 0 stands for the seed.
 */
import type { Seed } from '../control/seed';
import { DataRelay, type KernelSplice } from './relay';
import { encodeVnet, receiveVnet } from './messages';
import { RelayServer } from './relay-server';
import { logger } from '../util/log';

const log = logger('seed-relay');

/** `publicIp`: the seed's address as members reach it, or null (listening on 0.0.0.0: each member knows). */
export function seedRelay(seed: Seed, publicIp: string | null, kernel?: KernelSplice): RelayServer {
  const server = new RelayServer(
    {
      member: (id) => seed.member(id),
      relayIp: () => publicIp ?? '',
      send: (to, m) => {
        if (!seed.sendVnet(to, encodeVnet(m))) log.info('a member went away during a relayed connection', { to });
      },
    },
    new DataRelay(kernel),
  );
  seed.on('svnet', (from, payload) => receiveVnet(from, payload, (f, m) => server.onMessage(f, m), log));
  return server;
}
