// Same-NAT members: the path of the last peer link to a member outlives the link (it idles out after
// LINK_IDLE_MS when only relayed or LAN program connections run). Before, every CONNECT after an idle spell
// opened the link again inside the shim's 2 s bound (hairpin 2.4 s: ENETUNREACH) and the route table lost the
// LAN route meanwhile. Here the real composition (ipc/virtual-network.ts brokerNetwork + vnet/client.ts) over a
// fake member whose link comes and goes.
import test from 'ava';
import { EventEmitter } from 'node:events';
import { brokerNetwork } from '../../src/ipc/virtual-network';
import { ConnectClient } from '../../src/vnet/client';
import { generateKeyPair } from '../../src/crypto/keys';
import { sodiumReady } from '../../src/crypto/sodium';
import type { LocalMember } from '../../src/control/local-member';
import type { MemberInfo, PathKind } from '../../src/wire/messages';
import { setSink } from '../../src/util/log';

test.before(async () => {
  await sodiumReady();
  setSink(() => undefined);
});

function info(id: number, priv: string): MemberInfo {
  return { id, name: `m${id}`, addr: `100.96.0.${id}`, services: [], ext: { ip: '198.18.1.5', port: 7000 + id }, priv: [{ ip: priv, port: 7000 + id }], nat: 'preserving', key: new Uint8Array(32), lport: 7000 + id };
}

class FakeMember extends EventEmitter {
  self = { id: 1, name: 'm1', addr: '100.96.0.1', network: '100.96.0.0/16' };
  members = [info(1, '10.5.0.2'), info(2, '10.5.0.3')];
  link: PathKind | null = null;
  ensured = 0;
  sendTo = async () => undefined;
  sendToSeed = () => false;
  seedAddressNow = () => null;
  list() {
    return this.members;
  }
  links() {
    return this.link ? [{ id: 2, path: this.link, endpoint: '10.5.0.3:7002', rttMs: 1, home: false, idleMs: 0 }] : [];
  }
  async ping(id: number) {
    this.ensured++;
    this.link = 'lan';
    return { path: 'lan' as PathKind, endpoint: `member ${id}`, rttMs: 1 };
  }
}

test('a LAN member stays routed over the LAN after its link idled out: CONNECT opens no link', async (t) => {
  const m = new FakeMember();
  const netw = brokerNetwork(m as unknown as LocalMember, generateKeyPair(), () => undefined);
  const client = new ConnectClient(netw);
  // First connection: no link yet, so CONNECT opens one (its path says the LAN reaches m2).
  const first = await client.connect('100.96.0.2', 80, 40000);
  t.is(m.ensured, 1);
  t.deepEqual(first.real, { ip: '10.5.0.3', port: 80 });
  // The link idles out; the next CONNECT is answered from what the link said, without opening it again.
  m.link = null;
  const second = await client.connect('100.96.0.2', 80, 40001);
  t.is(m.ensured, 1, 'no link opened on the second CONNECT');
  t.deepEqual(second.real, { ip: '10.5.0.3', port: 80 });
  t.is(client.route(m.members[1]).kind, 'direct', 'the route table keeps the LAN route');
  // The member moved (another private address): what the old link said no longer holds.
  m.members = [m.members[0], info(2, '10.5.0.9')];
  m.emit('change');
  t.is(netw.linkPath(2), undefined);
  // And a member that left is forgotten.
  m.link = 'lan';
  netw.linkPath(2);
  m.link = null;
  m.members = [m.members[0]];
  m.emit('change');
  m.members = [info(1, '10.5.0.2'), info(2, '10.5.0.9')];
  m.emit('change');
  t.is(netw.linkPath(2), undefined);
});
