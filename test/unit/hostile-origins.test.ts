// An evil member (it holds the secret and speaks the protocol) forging origins and endpoints, against the
// real code in memory: a forwarded message is taken only when its named origin sealed it; news of another
// member's departure is ignored while the seed is up or the member's own link lives; and no request makes an
// agent connect to an address that is not the asking member's (its loopback, a third host): no port scan.
import test from 'ava';
import os from 'node:os';
import { sodiumReady } from '../../src/crypto/sodium';
import { generateKeyPair, type KeyPair } from '../../src/crypto/keys';
import { sealFor, openFrom } from '../../src/crypto/origin';
import { Signal } from '../../src/traversal/signal';
import { Punch } from '../../src/traversal/punch';
import { isMemberEndpoint } from '../../src/traversal/endpoints';
import { ConnectServer } from '../../src/vnet/server';
import type { SocketOps, VnetNetwork } from '../../src/vnet/network';
import type { VnetMessage } from '../../src/vnet/messages';
import { encodeMessage, type MemberInfo, type Message } from '../../src/wire/messages';
import type { Logger } from '../../src/util/log';

const E = os.constants.errno;
const ATTEMPTS = 1_000;

function member(id: number, keys: KeyPair, ip: string, nat: MemberInfo['nat'] = 'preserving'): MemberInfo {
  return { id, name: `m${id}`, addr: `100.96.0.${id}`, services: [], ext: { ip, port: 7000 + id }, priv: [{ ip: `10.0.0.${id}`, port: 7000 + id }], lport: 7100 + id, nat, key: keys.publicKey } as MemberInfo;
}

const warnings: string[] = [];
const log = { warn: (m: string) => warnings.push(m), info: () => undefined, debug: () => undefined, error: () => undefined } as unknown as Logger;

let A: KeyPair, B: KeyPair, EVIL: KeyPair;
let members: MemberInfo[];
test.before(async () => {
  await sodiumReady();
  [A, B, EVIL] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
  members = [member(1, A, '198.51.100.1'), member(2, B, '203.0.113.2'), member(3, EVIL, '192.0.2.3', 'open')];
});

function signalAt(self: number, keys: KeyPair, got: Array<[number, string]>) {
  return new Signal({
    links: { live: () => undefined, get: () => undefined, all: () => [], has: () => false } as never,
    keys,
    member: (id) => members.find((m) => m.id === id),
    selfId: () => self,
    members: () => members,
    toSeed: () => true,
    homeOf: () => null,
    ensure: () => Promise.reject(new Error('no')),
    onPunch: (f, m) => got.push([f, m.t]),
    onVnet: (f) => got.push([f, 'vnet']),
    log,
  });
}

const VNET: Message = { t: 'vnet', payload: new Uint8Array([1, 2, 3]) };

test('fwd: only what the named origin sealed is taken; forged, altered or replayed-to-another bodies are dropped', (t) => {
  const got: Array<[number, string]> = [];
  const atB = signalAt(2, B, got);
  let admitted = 0;
  for (let i = 0; i < ATTEMPTS; i++) {
    const forgeries = [
      // Plain body claiming A, carried on the evil member's link (the old format: admitted before).
      { t: 'fwd', to: 2, from: 1, body: encodeMessage(VNET) },
      // Sealed by the evil member, claiming A.
      { t: 'fwd', to: 2, from: 1, body: sealFor(encodeMessage(VNET), B.publicKey, EVIL) },
      // A's genuine seal for member 3, redirected to B.
      { t: 'fwd', to: 2, from: 1, body: sealFor(encodeMessage(VNET), EVIL.publicKey, A) },
      // A genuine seal with one byte flipped.
      { t: 'fwd', to: 2, from: 1, body: flip(sealFor(encodeMessage(VNET), B.publicKey, A), i) },
    ] as const;
    for (const f of forgeries) {
      const before = got.length;
      atB.onFwd(f as Extract<Message, { t: 'fwd' }>, 3);
      atB.onFwd(f as Extract<Message, { t: 'fwd' }>, null);
      admitted += got.length - before;
    }
  }
  t.is(admitted, 0, `admitted ${admitted} of ${ATTEMPTS * 8} forged forwards`);
  // The genuine article, through the seed and through a home.
  atB.onFwd({ t: 'fwd', to: 2, from: 1, body: sealFor(encodeMessage(VNET), B.publicKey, A) }, null);
  atB.onFwd({ t: 'fwd', to: 2, from: 1, body: sealFor(encodeMessage(VNET), B.publicKey, A) }, 3);
  t.deepEqual(got, [
    [1, 'vnet'],
    [1, 'vnet'],
  ]);
  t.truthy(openFrom(sealFor(Uint8Array.of(9), B.publicKey, A), A.publicKey, B));
});

function flip(b: Uint8Array, i: number): Uint8Array {
  const c = Uint8Array.from(b);
  c[i % c.length] ^= 1 << i % 8;
  return c;
}

test('endpoints: only the member’s own external or private address', (t) => {
  const b = members[1];
  t.true(isMemberEndpoint(b, { ip: '203.0.113.2', port: 40000 }));
  t.true(isMemberEndpoint(b, { ip: '10.0.0.2', port: 40000 }));
  for (const ip of ['127.0.0.1', '0.0.0.0', '192.0.2.3', '198.51.100.1', '169.254.169.254']) t.false(isMemberEndpoint(b, { ip, port: 22 }), ip);
  t.false(isMemberEndpoint(b, { ip: '203.0.113.2', port: 0 }));
});

test('punch: a dial-back or punch request toward an address not the asker’s connects nowhere', (t) => {
  const dialled: string[] = [];
  const punch = new Punch({
    io: { bindFresh: () => { dialled.push('bind'); throw new Error('no'); } } as never,
    selfId: () => 2,
    member: (id) => members.find((m) => m.id === id),
    predict: () => null,
    signal: async () => undefined,
    setUp: () => Promise.reject(new Error('no')),
    dialDirect: async (_b, ep) => {
      dialled.push(`${ep.ip}:${ep.port}`);
      return undefined as never;
    },
    primeTarget: () => null,
    log,
  });
  for (let i = 0; i < ATTEMPTS; i++) {
    for (const ip of ['127.0.0.1', '10.9.9.9', '192.0.2.77']) {
      punch.onMessage(3, { t: 'punch', sid: i, phase: 'dial', ep: { ip, port: 1 + (i % 65535) }, path: 'direct' });
      punch.onMessage(3, { t: 'punch', sid: i, phase: 'req', ep: { ip, port: 1 + (i % 65535) }, path: 'punched' });
    }
  }
  t.deepEqual(dialled, [], 'no connection attempted');
  punch.onMessage(3, { t: 'punch', sid: 1, phase: 'dial', ep: { ip: '192.0.2.3', port: 7103 }, path: 'direct' });
  t.deepEqual(dialled, ['192.0.2.3:7103'], 'its own address is dialled');
});

test('vnet: a punched connection request or a relay-open toward another address is refused, nothing connects', async (t) => {
  const sent: Array<[number, VnetMessage]> = [];
  const connects: string[] = [];
  const netw = { self: () => ({ id: 2, addr: '100.96.0.2' }), members: () => members, send: (to: number, m: VnetMessage) => sent.push([to, m]), seedIp: () => '198.18.0.1' } as unknown as VnetNetwork;
  const ops = new Proxy(
    {},
    {
      get: (_o, k) => (...args: unknown[]) => {
        connects.push(`${String(k)} ${args.join(' ')}`);
        return 0;
      },
    },
  ) as unknown as SocketOps;
  const server = new ConnectServer(netw, ops);
  server.listen(80);
  for (let i = 0; i < 100; i++) {
    await server.punchBack(3, members[2], { k: 'open', cid: `3:${i}`, vport: 80, cport: 5000, cext: { ip: '127.0.0.1', port: 22 }, punch: 40000 });
    // From the evil member as "relay", naming A as the client, pointing at a host of its choice.
    await server.acceptRelayed(3, { k: 'relay-open', cid: `3:r${i}`, from: 1, vport: 80, cport: 5000, relay: { ip: '127.0.0.1', port: 22 }, token: new Uint8Array(16) });
    // A relay that is not open.
    await server.acceptRelayed(1, { k: 'relay-open', cid: `1:r${i}`, from: 3, vport: 80, cport: 5000, relay: { ip: '198.51.100.1', port: 7070 }, token: new Uint8Array(16) });
  }
  t.deepEqual(connects, [], 'no socket was opened');
  t.true(sent.every(([, m]) => (m.k === 'result' || m.k === 'relay-cancel') && m.errno === E.EHOSTUNREACH));
  t.is(sent.length, 300);
  server.close();
});

test('vnet: a relay-open is taken only when its client sealed exactly this request through this relay, once', async (t) => {
  const sent: Array<[number, VnetMessage]> = [];
  const connects: string[] = [];
  // We are member 2 (keys B); member 1 (A) is the client; member 3 (EVIL, open, at 192.0.2.3) is the relay.
  const netw = {
    self: () => ({ id: 2, addr: '100.96.0.2' }),
    members: () => members,
    send: (to: number, m: VnetMessage) => sent.push([to, m]),
    seedIp: () => '198.18.0.1',
    unseal: (from: number, sealed: Uint8Array) => openFrom(sealed, members.find((m) => m.id === from)!.key, B),
  } as unknown as VnetNetwork;
  const ops = new Proxy({}, { get: (_o, k) => (...args: unknown[]) => { connects.push(`${String(k)} ${args.join(' ')}`); if (k === 'tcpSocket') throw new Error('stop here'); return 0; } }) as unknown as SocketOps;
  const server = new ConnectServer(netw, ops);
  server.listen(80);
  const relay = { ip: '192.0.2.3', port: 7070 };
  const open = (cid: string, ask?: Uint8Array, vport = 80) => server.acceptRelayed(3, { k: 'relay-open', cid, from: 1, vport, cport: 5000, relay, token: new Uint8Array(16), ...(ask ? { ask } : {}) });
  const { relayAsk } = await import('../../src/vnet/messages');
  let forged = 0;
  for (let i = 0; i < ATTEMPTS; i++) {
    const cid = `1:f${i}`;
    await open(cid); // no seal: the relay speaks for the client
    await open(cid, sealFor(relayAsk(cid, 2, 80, 5000, 3), B.publicKey, EVIL)); // sealed by the relay itself
    await open(cid, sealFor(relayAsk(cid, 2, 22, 5000, 3), B.publicKey, A), 80); // the client asked for port 22, not 80
    await open(cid, sealFor(relayAsk(cid, 2, 80, 5000, 0), B.publicKey, A)); // the client asked the seed, not this relay
    await open(`3:f${i}`, sealFor(relayAsk(`3:f${i}`, 2, 80, 5000, 3), B.publicKey, A)); // a cid that is not the client's
    forged += 5;
  }
  t.deepEqual(connects, [], 'no socket was opened for a forged relay-open');
  t.is(sent.filter(([, m]) => m.k === 'relay-cancel' && m.errno === E.EHOSTUNREACH).length, forged);
  // The real thing connects to the relay (the fake stops it there); the same request replayed does not.
  const ask = sealFor(relayAsk('1:ok', 2, 80, 5000, 3), B.publicKey, A);
  await open('1:ok', ask);
  t.is(connects.filter((c) => c.startsWith('tcpSocket')).length, 1, 'a sealed request is taken');
  await open('1:ok', ask);
  t.is(connects.filter((c) => c.startsWith('tcpSocket')).length, 1, 'its replay is not');
  t.log(`${forged + 1} forged or replayed relay-opens refused, 1 genuine taken`);
  server.close();
});
