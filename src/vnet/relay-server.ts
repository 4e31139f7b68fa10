/**
 * The relay server of program connections: one implementation for every relay, an `open` member's broker and
 * the seed (the relay of last resort). It answers relay-req (open a port for the client, tell the far member
 * where to meet it) and relay-cancel; the splicing itself is the data relay's (relay.ts).
 */
import os from 'node:os';
import type { MemberInfo } from '../wire/messages';
import { logger } from '../util/log';
import type { VnetMessage } from './messages';
import type { DataRelay } from './relay';

const log = logger('relay');
const E = os.constants.errno;

export interface RelayServerHost {
  member(id: number): MemberInfo | undefined;
  /**
   * The address clients and far members reach this relay at: null when it cannot relay now (a member that is
   * not `open`), '' when each reaches it at the address it knows it by (a seed listening on 0.0.0.0).
   */
  relayIp(): string | null;
  send(to: number, m: VnetMessage): void;
}

/** What the relay server needs of the data relay (relay.ts; a fake in memory tests). */
export type RelayPorts = Pick<DataRelay, 'prepare' | 'cancel' | 'close'>;

export class RelayServer {
  constructor(
    private readonly host: RelayServerHost,
    readonly relay: RelayPorts,
  ) {}

  /** A relay-req or relay-cancel from member `from` (other kinds are not the relay's). */
  onMessage(from: number, m: VnetMessage): void {
    if (m.k === 'relay-cancel') return this.relay.cancel(m.cid, m.errno);
    if (m.k === 'relay-req') void this.serve(from, m);
  }

  /** As a relay: open a port for the client and tell the far member where to meet it. */
  private async serve(from: number, m: Extract<VnetMessage, { k: 'relay-req' }>): Promise<void> {
    const client = this.host.member(from);
    const far = this.host.member(m.to);
    const ip = this.host.relayIp();
    const no = (errno: number) => this.host.send(from, { k: 'relay-ok', cid: m.cid, port: 0, ip: '', errno });
    if (!client?.ext || !far || ip === null) return no(E.EHOSTUNREACH);
    try {
      const { port, relayPort, token } = await this.relay.prepare(m.cid, client.ext.ip, (errno) => this.host.send(from, { k: 'result', cid: m.cid, errno }));
      this.host.send(from, { k: 'relay-ok', cid: m.cid, port, ip, errno: 0 });
      this.host.send(far.id, { k: 'relay-open', cid: m.cid, from, vport: m.vport, cport: m.cport, relay: { ip: ip || '0.0.0.0', port: relayPort }, token, ...(m.ask ? { ask: m.ask } : {}) });
    } catch (e) {
      log.info('cannot relay a connection', { reason: (e as Error).message });
      no(E.EAGAIN);
    }
  }

  close(): void {
    this.relay.close();
  }
}
