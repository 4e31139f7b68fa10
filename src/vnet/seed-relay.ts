/**
 * The seed's relay of program connections: the relay of last resort when no member is `open` (a network of
 * functions only), or none answers. It speaks the brokers' relay messages (relay-req, relay-ok, relay-open,
 * relay-cancel; src/vnet/messages.ts) over the seed's control connections, where member id 0 stands for the
 * seed, and splices with the same DataRelay an open member's broker uses.
 */
import type { Seed } from '../control/seed';
import { DataRelay, type KernelSplice } from './relay';
import { decodeVnet, encodeVnet } from './messages';
import type { VnetMessage } from './broker';
import { logger } from '../util/log';
import os from 'node:os';

const log = logger('seed-relay');
const E = os.constants.errno;

export class SeedRelay {
  readonly relay: DataRelay;

  /**
   * `publicIp`: the seed's address as members reach it, or null (listening on 0.0.0.0: each member knows).
   * `kernel`: the addon's splice, when it loads (else the relay pipes in Node).
   */
  constructor(
    private readonly seed: Seed,
    private readonly publicIp: string | null,
    kernel?: KernelSplice,
  ) {
    this.relay = new DataRelay(kernel);
    seed.on('svnet', (from, payload) => {
      let m: VnetMessage;
      try {
        m = decodeVnet(payload);
      } catch (e) {
        log.warn('malformed relay message from a member: ignored', { from, reason: (e as Error).message });
        return;
      }
      void this.onMessage(from, m);
    });
  }

  private send(to: number, m: VnetMessage): void {
    if (!this.seed.sendVnet(to, encodeVnet(m))) log.info('a member went away during a relayed connection', { to });
  }

  private async onMessage(from: number, m: VnetMessage): Promise<void> {
    if (m.k === 'relay-cancel') return this.relay.cancel(m.cid, m.errno);
    if (m.k !== 'relay-req') return;
    const client = this.seed.info(from);
    const far = this.seed.info(m.to);
    if (!client?.ext || !far) return this.send(from, { k: 'relay-ok', cid: m.cid, port: 0, ip: '', errno: E.EHOSTUNREACH });
    try {
      const { port, relayPort, token } = await this.relay.prepare(m.cid, client.ext.ip, (errno) => this.send(from, { k: 'result', cid: m.cid, errno }));
      const ip = this.publicIp ?? '';
      this.send(from, { k: 'relay-ok', cid: m.cid, port, ip, errno: 0 });
      this.send(far.id, { k: 'relay-open', cid: m.cid, from, vport: m.vport, cport: m.cport, relay: { ip: ip || '0.0.0.0', port: relayPort }, token });
    } catch (e) {
      log.info('cannot relay a connection', { reason: (e as Error).message });
      this.send(from, { k: 'relay-ok', cid: m.cid, port: 0, ip: '', errno: E.EAGAIN });
    }
  }

  close(): void {
    this.relay.close();
  }
}
