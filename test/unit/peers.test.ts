// Peer links in memory: NAT classification, path choice, relay, vnet delivery, and life without the seed.
import test from 'ava';
import { Seed } from '../../src/control/seed';
import { Agent } from '../../src/control/agent';
import type { Connector } from '../../src/control/connectors';
import { classify, confirmTranslation, predictEndpoint } from '../../src/traversal/discovery';
import { sodiumReady } from '../../src/crypto/sodium';
import { deriveNetworkKey, generateKeyPair } from '../../src/crypto/keys';
import { decodeMessage, encodeMessage, type NatKind } from '../../src/wire/messages';
import { memConnector } from '../support/memnet';
import { until } from '../support/procs';
import { setSink } from '../../src/util/log';
import { MemNet } from '../support/memio';

test.before(async () => {
  await sodiumReady();
  setSink(() => {});
});

test('classification from two reflections of one local port', (t) => {
  const ip = '203.0.113.9';
  t.is(classify(40000, { ip, port: 40000 }, { ip, port: 40000 }, true).kind, 'open');
  t.is(classify(40000, { ip, port: 40000 }, { ip, port: 40000 }, false).kind, 'preserving');
  t.is(classify(40000, { ip, port: 40001 }, { ip, port: 51234 }, false).kind, 'random');
  const tr = classify(20000, { ip, port: 20000 ^ 0x8000 }, { ip, port: 20000 ^ 0x8000 }, false);
  t.is(tr.kind, 'translating');
  const ok = confirmTranslation(tr, 21000, { ip, port: 21000 ^ 0x8000 });
  t.truthy(ok);
  t.deepEqual(predictEndpoint(ok!, 22222), { ip, port: 22222 ^ 0x8000 });
  t.is(confirmTranslation(tr, 21000, { ip, port: 1234 }), null, 'a second probe off the inferred mapping is not translating');
  t.is(predictEndpoint({ kind: 'random', ip, xor: null, offset: null }, 1000), null);
  t.deepEqual(predictEndpoint({ kind: 'preserving', ip, xor: null, offset: null }, 1000), { ip, port: 1000 });
});

test('the decoder validates traversal messages', (t) => {
  const m = { t: 'punch', sid: 7, phase: 'req', ep: { ip: '198.51.100.1', port: 4000 }, path: 'punched' } as const;
  t.deepEqual(decodeMessage(encodeMessage(m)), m);
  t.throws(() => decodeMessage(encodeMessage({ ...m, phase: 'nope' } as never)));
  t.throws(() => decodeMessage(encodeMessage({ t: 'relay', peer: 0, sid: 1, data: new Uint8Array(1), end: false, hop: true })));
  t.throws(() => decodeMessage(encodeMessage({ t: 'vnet', payload: new Uint8Array(70_000) })));
  t.throws(() => decodeMessage(encodeMessage({ t: 'hello', id: 1, path: 'teleport', home: false } as never)));
});

function network() {
  const psk = deriveNetworkKey('in-memory traversal secret');
  const seed = new Seed({ network: '100.96.0.0/16', psk, keys: generateKeyPair(), stateFile: null });
  const net = new MemNet();
  let seedUp = true;
  const agent = (name: string, ip: string, nat: NatKind, relayUpgradeMs?: number) => {
    const inner = memConnector(seed, ip);
    const connect: Connector = (h, p) => (seedUp ? inner(h, p) : Promise.reject(new Error('ECONNREFUSED')));
    return new Agent({ seedHost: 'seed', seedPort: 7070, psk, keys: generateKeyPair(), name, services: [], connect, joinTimeoutMs: 2_000, traversal: { io: net.io(ip), natOverride: nat, relayUpgradeMs } });
  };
  const killSeed = async () => {
    seedUp = false;
    await seed.close();
  };
  return { seed, net, agent, killSeed };
}

test('paths by NAT kind; relayed links are end to end; vnet messages arrive; predictEndpoint', async (t) => {
  const { seed, agent } = network();
  const pub = agent('pub', '192.0.2.1', 'open');
  const p1 = agent('p1', '198.51.100.1', 'preserving');
  const p2 = agent('p2', '198.51.100.2', 'preserving');
  const rnd = agent('rnd', '198.51.100.3', 'random');
  const all = [pub, p1, p2, rnd];
  for (const a of all) await a.join();
  await until(() => all.every((a) => a.members.size === 4), 5_000, 'membership');
  const id = (a: Agent) => a.self!.id;
  t.is((await p1.ping(id(pub))).path, 'direct');
  t.is((await pub.ping(id(rnd))).path, 'direct', 'an open member asks a NATed one to dial it');
  t.is((await p1.ping(id(p2))).path, 'punched');
  t.is((await p2.ping(id(p1))).path, 'punched', 'the same link serves both directions');
  const r = await p1.ping(id(rnd));
  t.is(r.path, 'relay');
  t.is(r.endpoint, 'via seed');
  t.true(seed.stats.relayed > 0);
  const got = new Promise<[number, Uint8Array]>((resolve) => rnd.once('vnet', (from, payload) => resolve([from, payload])));
  await p2.sendTo(id(rnd), new Uint8Array([1, 2, 3]));
  const [from, payload] = await got;
  t.is(from, id(p2));
  t.deepEqual([...payload], [1, 2, 3]);
  t.deepEqual(p1.predictEndpoint(30000), { ip: '198.51.100.1', port: 30000 });
  t.is(rnd.predictEndpoint(30000), null);
  for (const a of all) await a.leave();
  await seed.close();
});

test('without the seed: links open through a home, relays go through a public member, deaths still spread', async (t) => {
  const { agent, killSeed } = network();
  const pub = agent('pub', '192.0.2.1', 'open');
  const p1 = agent('p1', '198.51.100.1', 'preserving');
  const p2 = agent('p2', '198.51.100.2', 'translating');
  const rnd = agent('rnd', '198.51.100.3', 'random');
  const all = [pub, p1, p2, rnd];
  for (const a of all) await a.join();
  await until(() => all.every((a) => a.members.size === 4), 5_000, 'membership');
  // Every NATed member keeps a link to its home (the only open member).
  await until(() => [p1, p2, rnd].every((a) => a.links().some((l) => l.id === pub.self!.id && l.home)), 5_000, 'home links');
  await killSeed();
  await until(() => all.every((a) => !a.seedConnected), 5_000, 'seed gone');
  const id = (a: Agent) => a.self!.id;
  t.is((await p1.ping(id(p2))).path, 'punched', 'set up through the home');
  const r = await p2.ping(id(rnd));
  t.is(r.path, 'relay');
  t.is(r.endpoint, 'via pub');
  rnd.stop(); // dies: its home notices, tells everyone
  await until(() => [pub, p1, p2].every((a) => !a.members.has(id(rnd))), 15_000, 'death to spread without the seed');
  t.pass();
  for (const a of [pub, p1, p2]) a.stop();
});

test('a relayed link is upgraded to a punched one when punching starts to work', async (t) => {
  const { seed, net, agent } = network();
  const p1 = agent('p1', '198.51.100.1', 'preserving', 300);
  const p2 = agent('p2', '198.51.100.2', 'translating', 300);
  await p1.join();
  await p2.join();
  await until(() => p1.members.size === 2 && p2.members.size === 2, 5_000, 'membership');
  net.failPunches = true;
  t.is((await p1.ping(p2.self!.id)).path, 'relay');
  net.failPunches = false;
  await until(() => p1.links().find((l) => l.id === p2.self!.id)?.path === 'punched', 10_000, 'the upgrade');
  t.is((await p2.ping(p1.self!.id)).path, 'punched');
  await p1.leave();
  await p2.leave();
  await seed.close();
});
