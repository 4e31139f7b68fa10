// Who can be the client of an accepted connection (src/vnet/sources.ts) and what the broker does with it: a
// client outside the network is answered at once (ENOENT: left as it is), while a member behind a shared NAT
// whose announcement comes late is still named, each of two members behind one address by its port block. In
// memory: the broker with a fake network and fake socket calls.
import test from 'ava';
import os from 'node:os';
import { Broker, type SocketOps, type VnetMessage, type VnetNetwork } from '../../src/vnet/broker';
import { directSources, formatSources, sourceMatches } from '../../src/vnet/sources';
import { decideRoute } from '../../src/vnet/routes';
import type { MemberInfo, NatKind, PortMap } from '../../src/wire/messages';

const E = os.constants.errno;

function member(id: number, nat: NatKind, ext: string, opts: { map?: PortMap; priv?: string[] } = {}): MemberInfo {
  return {
    id,
    name: `m${id}`,
    addr: `100.96.0.${id}`,
    services: [],
    ext: { ip: ext, port: 7000 + id },
    priv: (opts.priv ?? []).map((ip) => ({ ip, port: 1 })),
    nat,
    key: new Uint8Array(32),
    ...(opts.map ? { map: opts.map } : {}),
  };
}

// The lab's shapes: vm1 open (us), fsa/fsb behind one preserving NAT with split port ranges, fta behind a
// translating NAT (XOR 0x8000), fr behind a random one, an older member that did not say its range.
const VM1 = member(1, 'open', '198.18.0.3', { map: { xor: 0, offset: 0, lo: 40000, hi: 40063, rlo: 32768, rhi: 60999 } });
const FSA = member(2, 'preserving', '198.18.1.2', { map: { xor: 0, offset: 0, lo: 33000, hi: 33063, rlo: 32768, rhi: 46883 }, priv: ['10.2.0.2'] });
const FSB = member(3, 'preserving', '198.18.1.2', { map: { xor: 0, offset: 0, lo: 50000, hi: 50063, rlo: 46884, rhi: 60999 }, priv: ['10.2.0.3'] });
const FTA = member(4, 'translating', '198.18.1.4', { map: { xor: 0x8000, offset: 0, lo: 16400, hi: 16463, rlo: 16384, rhi: 17407 } });
const FR = member(5, 'random', '198.18.1.3', { map: { xor: 0, offset: 0, lo: 33000, hi: 33063, rlo: 32768, rhi: 60999 } });
const OLD = member(6, 'preserving', '198.18.1.6', { map: { xor: 0, offset: 0, lo: 33000, hi: 33063 } });
const ALL = [VM1, FSA, FSB, FTA, FR, OLD];

const from = (me: MemberInfo, ip: string, port: number) =>
  directSources(me, ALL)
    .filter((s) => sourceMatches(s, ip, port))
    .map((s) => s.id);

test('an open member: each member behind a NAT by its address and port block, strangers match nothing', (t) => {
  t.deepEqual(from(VM1, '198.18.1.2', 40000), [FSA.id]);
  t.deepEqual(from(VM1, '198.18.1.2', 50000), [FSB.id]);
  t.deepEqual(from(VM1, '198.18.1.2', 20000), [], 'behind the shared NAT, outside both blocks: a stranger');
  t.deepEqual(from(VM1, '198.18.1.4', 16500 ^ 0x8000), [FTA.id], 'translating: the mapped port');
  t.deepEqual(from(VM1, '198.18.1.4', 16500), []);
  t.deepEqual(from(VM1, '198.18.1.3', 1234), [], 'random NAT: it comes through our relay, named; anyone straight from there is a stranger');
  t.deepEqual(from(VM1, '198.18.1.6', 1234), [OLD.id], 'no range announced: any port');
  t.deepEqual(from(VM1, '198.18.0.9', 40000), [], 'a public host that is no member');
  t.deepEqual(from(VM1, '127.0.0.1', 40000), [], 'a local client');
  t.deepEqual(from(VM1, '198.18.0.3', 40000), [], 'our own address (a client on this host): not a member');
});

test('a member behind a random NAT reaches an open member through that member\'s own relay, never straight', (t) => {
  t.deepEqual(decideRoute(FR, VM1, undefined), { kind: 'agent' });
  t.deepEqual(decideRoute(FTA, VM1, undefined), { kind: 'direct', ip: '198.18.0.3' }, 'a port block names the others');
  const loopFr = { ...FR, ext: { ip: '127.0.0.1', port: 1 } };
  t.deepEqual(decideRoute(loopFr, { ...VM1, ext: { ip: '127.0.0.1', port: 2 } }, undefined), { kind: 'direct', ip: '127.0.0.1' }, 'on one host: direct');
});

test('a member behind a NAT is reached directly only over its LAN', (t) => {
  t.deepEqual(from(FSA, '10.2.0.3', 1234), [FSB.id]);
  t.deepEqual(from(FSA, '198.18.0.3', 40000), [], 'the open VM connects through a hand-off, never straight');
  t.deepEqual(from(FSA, '198.18.1.2', 50000), []);
});

test('the route table lines', (t) => {
  t.is(formatSources(directSources(VM1, [VM1, FTA])), '4 100.96.0.4 from 198.18.1.4 32768 0 16384 17407\n');
});

class FakeNet implements VnetNetwork {
  sent: Array<{ to: number; msg: VnetMessage }> = [];
  constructor(private readonly me: MemberInfo) {}
  self() {
    return { id: this.me.id, addr: this.me.addr };
  }
  members() {
    return ALL;
  }
  predictOwn() {
    return null;
  }
  linkPath() {
    return undefined;
  }
  async ensureLink(): Promise<'direct'> {
    return 'direct';
  }
  send(to: number, msg: VnetMessage) {
    this.sent.push({ to, msg });
  }
  seedIp() {
    return null;
  }
}

const noSockets = {} as SocketOps;

test('accept: an outside client is answered at once; members behind one NAT are named when their late announcements come', async (t) => {
  const b = new Broker(new FakeNet(VM1), noSockets);
  t.teardown(() => b.close());
  const t0 = Date.now();
  t.deepEqual(await b.accepted(80, { ip: '198.18.0.9', port: 40000 }), { errno: E.ENOENT });
  t.deepEqual(await b.accepted(80, { ip: '198.18.1.2', port: 20000 }), { errno: E.ENOENT });
  t.deepEqual(await b.accepted(80, { ip: '127.0.0.1', port: 45000 }), { errno: E.ENOENT });
  t.true(Date.now() - t0 < 200, 'no wait for outside clients (bound against hangs only)');

  // Two members behind one address connect; their announcements arrive after their accept() asked.
  const a = b.accepted(80, { ip: '198.18.1.2', port: 40001 });
  const c = b.accepted(80, { ip: '198.18.1.2', port: 50001 });
  await new Promise((r) => setTimeout(r, 100));
  b.onMessage(FSB.id, { k: 'open', cid: '3:1', vport: 80, cport: 50001, cext: { ip: '198.18.1.2', port: 50001 }, punch: null });
  b.onMessage(FSA.id, { k: 'open', cid: '2:1', vport: 80, cport: 40001, cext: { ip: '198.18.1.2', port: 40001 }, punch: null });
  t.deepEqual(await a, { errno: 0, vaddr: FSA.addr, vport: 40001 });
  t.deepEqual(await c, { errno: 0, vaddr: FSB.addr, vport: 50001 });
});

test('accept: a connection from a member block that is never announced is left as it is after the wait', async (t) => {
  const b = new Broker(new FakeNet(VM1), noSockets);
  t.teardown(() => b.close());
  t.deepEqual(await b.accepted(80, { ip: '198.18.1.2', port: 40002 }), { errno: E.ENOENT });
});
