// In memory: the far side of a punched connection (punch back, retries, hand-off, refusal), the relay
// server (shared by open members and the seed) and the client's relay fallback, with fake sockets and a fake
// network: no descriptor, no packet.
import test from 'ava';
import os from 'node:os';
import { Broker } from '../../src/vnet/broker';
import { RelayServer, type RelayPorts } from '../../src/vnet/relay-server';
import { SEED, type SocketOps, type VnetNetwork } from '../../src/vnet/network';
import type { VnetMessage } from '../../src/vnet/messages';
import type { MemberInfo, NatKind } from '../../src/wire/messages';
import { setSink } from '../../src/util/log';

const E = os.constants.errno;
test.before(() => void setSink(() => {}));

function member(id: number, nat: NatKind, ext: string): MemberInfo {
  return { id, name: `m${id}`, addr: `100.96.0.${id}`, services: [], ext: { ip: ext, port: 1 }, priv: [], nat, key: new Uint8Array(32), lport: 0 };
}

/** Socket calls recorded; `connectFails` lists the error codes of the next connects, in turn. */
class FakeOps implements SocketOps {
  next = 100;
  readonly calls: string[] = [];
  connectFails: string[] = [];
  private readonly local = new Map<number, number>();
  tcpSocket(): number {
    return this.next++;
  }
  bind(fd: number, ip: string, port: number): void {
    this.local.set(fd, port || 30000 + fd);
    this.calls.push(`bind ${fd} ${ip}:${port}`);
  }
  localAddress(fd: number) {
    return { address: '127.0.0.1', port: this.local.get(fd) ?? 0 };
  }
  connectStart(fd: number, ip: string, port: number): boolean {
    this.calls.push(`connect ${fd} ${ip}:${port}`);
    return false;
  }
  async connectWait(fd: number): Promise<void> {
    const code = this.connectFails.shift();
    if (code) throw Object.assign(new Error(code), { code });
  }
  setLinger0(fd: number): void {
    this.calls.push(`linger0 ${fd}`);
  }
  close(fd: number): void {
    this.calls.push(`close ${fd}`);
  }
}

function farSide(self: MemberInfo, members: MemberInfo[]) {
  const sent: Array<[number, VnetMessage]> = [];
  const netw: VnetNetwork = {
    self: () => ({ id: self.id, addr: self.addr }),
    members: () => members,
    predictOwn: (p) => ({ ip: self.ext!.ip, port: p }),
    linkPath: () => undefined,
    ensureLink: async () => 'direct',
    send: (to, msg) => void sent.push([to, msg]),
    seedIp: () => '192.0.2.1',
  };
  const ops = new FakeOps();
  const broker = new Broker(netw, ops);
  return { broker, ops, sent };
}

const until = async (cond: () => boolean, what: string) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
};

const client = member(1, 'preserving', '203.0.113.1');
const server = member(2, 'translating', '198.51.100.2');

test('punch back: binds the port the client aimed at, connects to its endpoint, hands the socket over, says 0', async (t) => {
  const { broker, ops, sent } = farSide(server, [client, server]);
  broker.listen(8080);
  broker.onMessage(1, { k: 'open', cid: '1:1', vport: 8080, cport: 41000, cext: { ip: '203.0.113.1', port: 41000 }, punch: 50007 });
  broker.onMessage(1, { k: 'open', cid: '1:1', vport: 8080, cport: 41000, cext: { ip: '203.0.113.1', port: 41000 }, punch: 50007 });
  await until(() => ops.calls.some((c) => c.startsWith('connect 101 127.0.0.1:8080')), 'the wake connection');
  t.deepEqual(ops.calls.slice(0, 2), ['bind 100 0.0.0.0:50007', 'connect 100 203.0.113.1:41000'], 'a resent request is handled once');
  // The program's accept() returns the wake connection; ACCEPTED from its loopback port claims the real socket.
  const a = await broker.accepted(8080, { ip: '127.0.0.1', port: 30101 });
  t.deepEqual(a, { errno: 0, vaddr: client.addr, vport: 41000, fd: 100 });
  await until(() => sent.length > 0, 'the result');
  t.deepEqual(sent, [[1, { k: 'result', cid: '1:1', errno: 0 }]]);
  t.is(broker.stats.handedOff, 1);
  broker.close();
});

test('punch back: a reset from a client whose SYN had not left is retried; a timeout is reported', async (t) => {
  const { broker, ops, sent } = farSide(server, [client, server]);
  broker.listen(8080);
  ops.connectFails = ['ECONNREFUSED', 'ECONNREFUSED'];
  broker.onMessage(1, { k: 'open', cid: '1:2', vport: 8080, cport: 41000, cext: { ip: '203.0.113.1', port: 41000 }, punch: 50008 });
  await until(() => sent.length > 0, 'the result');
  t.deepEqual(sent, [[1, { k: 'result', cid: '1:2', errno: 0 }]]);
  t.is(ops.calls.filter((c) => c.startsWith('bind') && c.endsWith(':50008')).length, 3, 'two resets, three tries');
  ops.connectFails = ['ETIMEDOUT'];
  broker.onMessage(1, { k: 'open', cid: '1:3', vport: 8080, cport: 41001, cext: { ip: '203.0.113.1', port: 41001 }, punch: 50009 });
  await until(() => sent.length > 1, 'the second result');
  t.deepEqual(sent[1], [1, { k: 'result', cid: '1:3', errno: E.ETIMEDOUT }]);
  broker.close();
});

test('punch back with nothing listening: ECONNREFUSED first, then the connection is reset', async (t) => {
  const { broker, ops, sent } = farSide(server, [client, server]);
  broker.onMessage(1, { k: 'open', cid: '1:4', vport: 9999, cport: 41000, cext: { ip: '203.0.113.1', port: 41000 }, punch: 50010 });
  await until(() => ops.calls.includes('close 100'), 'the reset');
  t.deepEqual(sent, [[1, { k: 'result', cid: '1:4', errno: E.ECONNREFUSED }]]);
  t.deepEqual(ops.calls.slice(-2), ['linger0 100', 'close 100']);
  t.is(broker.stats.refused, 1);
  broker.close();
});

test('a direct connection is named from its announcement; an open member alone at its address needs none', async (t) => {
  const open = member(3, 'open', '198.51.100.3');
  const me = member(2, 'open', '198.51.100.2');
  const { broker } = farSide(me, [client, me, open]);
  broker.onMessage(1, { k: 'open', cid: '1:5', vport: 8080, cport: 41000, cext: { ip: '203.0.113.1', port: 41234 }, punch: null });
  t.deepEqual(await broker.accepted(8080, { ip: '203.0.113.1', port: 41234 }), { errno: 0, vaddr: client.addr, vport: 41000 });
  t.deepEqual(await broker.accepted(8080, { ip: '198.51.100.3', port: 5555 }), { errno: 0, vaddr: open.addr, vport: 5555 });
  let t0 = Date.now();
  t.deepEqual(await broker.accepted(8080, { ip: '192.0.2.77', port: 1 }), { errno: E.ENOENT });
  t.true(Date.now() - t0 < 500, 'a client no member can be is answered at once');
  t0 = Date.now();
  t.deepEqual(await broker.accepted(8080, { ip: '203.0.113.1', port: 1 }), { errno: E.ENOENT });
  t.true(Date.now() - t0 >= 900, 'a connection a member can have made waits for its announcement first');
  broker.close();
});

function fakeRelay(): RelayPorts & { cancelled: string[] } {
  const cancelled: string[] = [];
  return {
    cancelled,
    prepare: async (cid: string) => ({ port: 45000, relayPort: 45001, token: Buffer.alloc(16, cid.length) }),
    cancel: (cid: string) => void cancelled.push(cid),
    close: () => {},
  };
}

test('relay server: an open member relays with its address; the seed on 0.0.0.0 lets each side use the one it knows', async (t) => {
  const members = [client, server];
  for (const [ip, okIp, openIp] of [['198.51.100.9', '198.51.100.9', '198.51.100.9'], ['', '', '0.0.0.0']] as const) {
    const sent: Array<[number, VnetMessage]> = [];
    const relay = fakeRelay();
    const rs = new RelayServer({ member: (id) => members.find((m) => m.id === id), relayIp: () => ip, send: (to, m) => void sent.push([to, m]) }, relay);
    rs.onMessage(1, { k: 'relay-req', cid: '1:7', to: 2, vport: 8080, cport: 41000 });
    await until(() => sent.length === 2, 'the relay answers');
    t.deepEqual(sent[0], [1, { k: 'relay-ok', cid: '1:7', port: 45000, ip: okIp, errno: 0 }]);
    t.deepEqual(sent[1], [2, { k: 'relay-open', cid: '1:7', from: 1, vport: 8080, cport: 41000, relay: { ip: openIp, port: 45001 }, token: Buffer.alloc(16, 3) }]);
    rs.onMessage(2, { k: 'relay-cancel', cid: '1:7', errno: E.ECONNREFUSED });
    t.deepEqual(relay.cancelled, ['1:7']);
  }
  const sent: Array<[number, VnetMessage]> = [];
  const notOpen = new RelayServer({ member: (id) => members.find((m) => m.id === id), relayIp: () => null, send: (to, m) => void sent.push([to, m]) }, fakeRelay());
  notOpen.onMessage(1, { k: 'relay-req', cid: '1:8', to: 2, vport: 8080, cport: 41000 });
  notOpen.onMessage(1, { k: 'relay-req', cid: '1:9', to: 77, vport: 8080, cport: 41000 });
  t.deepEqual(sent, [
    [1, { k: 'relay-ok', cid: '1:8', port: 0, ip: '', errno: E.EHOSTUNREACH }],
    [1, { k: 'relay-ok', cid: '1:9', port: 0, ip: '', errno: E.EHOSTUNREACH }],
  ]);
});

test('client relay fallback: a relay that cannot take it is skipped, the seed is last, a refusal is the answer', async (t) => {
  const me = member(1, 'random', '203.0.113.1');
  const far = member(2, 'random', '198.51.100.2');
  const relays = [member(5, 'open', '198.51.100.5'), member(6, 'open', '198.51.100.6')];
  const asked: number[] = [];
  let farAnswer = 0;
  let broker: Broker;
  const netw: VnetNetwork = {
    self: () => ({ id: 1, addr: me.addr }),
    members: () => [me, far, ...relays],
    predictOwn: () => null,
    linkPath: (id) => (id === 6 ? 'direct' : undefined),
    ensureLink: async () => 'relay',
    seedIp: () => '192.0.2.1',
    send: (to, msg) => {
      if (msg.k !== 'relay-req') return;
      asked.push(to);
      // Member 6 (linked: asked first) has no port; member 5 takes it; the far side answers through it.
      const ok: VnetMessage = to === 6 ? { k: 'relay-ok', cid: msg.cid, port: 0, ip: '', errno: E.EAGAIN } : { k: 'relay-ok', cid: msg.cid, port: 45000, ip: '', errno: 0 };
      setImmediate(() => {
        broker.onMessage(to, ok);
        if (to !== 6) setImmediate(() => broker.onMessage(to, { k: 'result', cid: msg.cid, errno: farAnswer }));
      });
    },
  };
  broker = new Broker(netw, new FakeOps());
  const a = await broker.connect(far.addr, 8080, 41000);
  t.deepEqual(asked, [6, 5]);
  t.is(a.errno, 0);
  t.deepEqual(a.real, { ip: '198.51.100.5', port: 45000 }, 'relay-ok without an ip: the address we know the relay by');
  farAnswer = E.ECONNREFUSED;
  asked.length = 0;
  t.is((await broker.connect(far.addr, 8080, 41001)).errno, E.ECONNREFUSED);
  t.is(broker.stats.relayed, 1);
  t.true(asked.every((id) => id !== SEED), 'the seed is asked only when the open members could not');
  broker.close();
});
