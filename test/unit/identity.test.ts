// Identity binding in memory: the seed alone assigns ids and addresses and binds them, with the name, to the
// member's static key. Each bad case of issue 14 (a rejoin taking another member's address, a claim moving the
// counters out of range, names with newlines or capitals) is reproduced here with a raw client that speaks the
// protocol, then the good cases (a seed restart, a member restarted with its kept key) are checked.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Seed } from '../../src/control/seed';
import { Agent } from '../../src/control/agent';
import type { Connector } from '../../src/control/connectors';
import { Channel } from '../../src/channel/channel';
import { addressOf, parseCidr } from '../../src/control/addresses';
import { sodiumReady } from '../../src/crypto/sodium';
import { deriveNetworkKey, generateKeyPair, type KeyPair } from '../../src/crypto/keys';
import { decodeMessage, encodeMessage, type Message } from '../../src/wire/messages';
import { duplexPair } from '../support/memnet';
import { setSink } from '../../src/util/log';

const SECRET = 'correct horse battery staple';
/** Bounds against hangs only: the machine running the tests may be shared and slow. */
const JOIN_MS = 20_000;
const WAIT_MS = 20_000;
let psk: Uint8Array;

test.before(async () => {
  await sodiumReady();
  setSink(() => {});
  psk = deriveNetworkKey(SECRET);
});

/** A seed that can be replaced (restarted) under the agents' feet. */
function network(opts: { network?: string; stateFile?: string | null; relearnMs?: number } = {}) {
  const make = () => new Seed({ network: opts.network ?? '100.96.0.0/16', psk, keys: generateKeyPair(), stateFile: opts.stateFile ?? null, relearnMs: opts.relearnMs });
  const net = { seed: make(), restart: async () => {}, agent: (name?: string, keys: KeyPair = generateKeyPair()) => new Agent({ seedHost: 'seed', seedPort: 7070, psk, keys, name, services: [], connect, joinTimeoutMs: JOIN_MS }) };
  let port = 41000;
  const connect: Connector = async () => {
    const [client, server] = duplexPair();
    net.seed.accept(server, { ip: '198.51.100.9', port: port++ });
    return client;
  };
  net.restart = async () => {
    await net.seed.close();
    net.seed = make();
  };
  return net;
}

/** A raw member: holds the secret, speaks the protocol, sends whatever join it is given; returns the seed's answer. */
async function rawJoin(seed: Seed, join: Record<string, unknown>, keys: KeyPair = generateKeyPair()): Promise<Message> {
  const [client, server] = duplexPair();
  seed.accept(server, { ip: '203.0.113.66', port: 4444 });
  const ch = await Channel.initiate(client, { psk, keys, peer: 'seed' });
  const answer = new Promise<Message>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no answer to the join')), JOIN_MS);
    ch.on('message', (m) => {
      clearTimeout(t);
      resolve(m);
    });
  });
  ch.start();
  ch.sendMessage({ t: 'join', services: [], priv: [], nat: 'open', ...join } as Message);
  const m = await answer;
  ch.close();
  return m;
}

function tmpState(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-identity-')), 'seed.json');
}

test('a rejoin cannot take another member\'s id or address', async (t) => {
  const { seed, agent } = network();
  const victim = await agent('victim').join();
  // Its own id with the victim's address, the victim's id, and a free id with the victim's address.
  for (const rejoin of [
    { id: 7, addr: victim.addr, name: 'thief' },
    { id: victim.id, addr: victim.addr, name: 'victim' },
    { id: 9, addr: victim.addr, name: 'thief' },
  ]) {
    const m = await rawJoin(seed, { rejoin });
    t.is(m.t, 'error', JSON.stringify(rejoin));
    if (m.t === 'error') t.is(m.code, 'bad-request');
  }
  t.deepEqual(seed.list().map((m) => [m.name, m.addr]), [['victim', victim.addr]]);
  await seed.close();
});

test('nothing a member sends moves the seed\'s counters out of range; admission goes on', async (t) => {
  const cidr = '100.96.7.0/24'; // 254 ids
  const { seed, agent } = network({ network: cidr });
  // Out of the network, or an address that is not the id's: refused.
  for (const rejoin of [
    { id: 4294967295, addr: '100.96.7.1', name: 'x' },
    { id: 255, addr: '100.96.7.255', name: 'x' },
    { id: 3, addr: '100.96.7.254', name: 'x' },
  ]) t.is((await rawJoin(seed, { rejoin })).t, 'error', JSON.stringify(rejoin));
  // A claim of the last id, inside the network, while the seed may still relearn (it has no state): taken...
  const top = await rawJoin(seed, { rejoin: { id: 254, addr: addressOf(parseCidr(cidr), 254), name: 'top' } });
  t.is(top.t, 'welcome');
  // ...and later joins still get ids and addresses: the lowest nobody holds.
  const selves = [];
  for (let i = 0; i < 3; i++) selves.push(await agent(`m${i}`).join());
  t.deepEqual(selves.map((s) => [s.id, s.addr]), [[1, '100.96.7.1'], [2, '100.96.7.2'], [3, '100.96.7.3']]);
  await seed.close();
});

test('after a seed restart members prove their binding with their key; impostors and late claims are refused', async (t) => {
  const stateFile = tmpState();
  const net = network({ stateFile, relearnMs: 300 });
  const a = net.agent('alpha');
  const b = net.agent('beta');
  const sa = await a.join();
  const sb = await b.join();
  const before = { a: { ...sa }, b: { ...sb } };
  await net.restart();
  // Members reconnect by themselves (backoff from 200 ms) and rejoin with their key.
  await until(() => net.seed.size === 2, WAIT_MS);
  t.deepEqual(net.seed.list().map((m) => [m.id, m.addr, m.name]), [
    [before.a.id, before.a.addr, 'alpha'],
    [before.b.id, before.b.addr, 'beta'],
  ]);
  // Another key claiming alpha's binding: refused (the seed knows whose it is, and it is not relearning claims).
  const imp = await rawJoin(net.seed, { rejoin: { id: before.a.id, addr: before.a.addr, name: 'alpha' } });
  t.is(imp.t, 'error');
  // A claim of an id nobody holds, from a key the seed never bound: refused too (the seed has its state).
  const free = addressOf(parseCidr('100.96.0.0/16'), 40)!;
  t.is((await rawJoin(net.seed, { rejoin: { id: 40, addr: free, name: 'ghost' } })).t, 'error');
  // A new member gets the next id.
  const c = await net.agent('gamma').join();
  t.is(c.id, 3);
  a.stop();
  b.stop();
  await net.seed.close();
});

test('a seed whose state file was lost relearns the members from their claims, once, and refuses conflicts', async (t) => {
  const stateFile = tmpState();
  const net = network({ stateFile, relearnMs: 10_000 });
  const a = net.agent('alpha');
  const sa = await a.join();
  const addrA = sa.addr;
  await net.seed.close();
  fs.unlinkSync(stateFile);
  await net.restart();
  await until(() => net.seed.size === 1, WAIT_MS);
  t.deepEqual(net.seed.list().map((m) => [m.id, m.addr, m.name]), [[1, addrA, 'alpha']]);
  // The claim is now alpha's binding: another key claiming it is refused.
  t.is((await rawJoin(net.seed, { rejoin: { id: 1, addr: addrA, name: 'alpha' } })).t, 'error');
  a.stop();
  await net.seed.close();
});

test('a member restarted with its kept key gets its id and address back at once; a live impostor is refused', async (t) => {
  const net = network();
  const keys = generateKeyPair();
  const observer = net.agent('obs');
  await observer.join();
  const first = net.agent('zk1', keys);
  const s1 = await first.join();
  await observer.waitForMembers(2);
  // The first process is gone without a word (SIGKILL: its connection may still look open to the seed).
  const started = Date.now();
  const second = net.agent('zk1', keys);
  const s2 = await second.join();
  first.stop();
  // At once: admitted while the first process still held its connection (the old seed refused it as a name
  // clash until it declared the first dead, 2.5-4 s later).
  t.log(`the restarted member was admitted after ${Date.now() - started} ms`);
  t.is(s2.id, s1.id);
  t.is(s2.addr, s1.addr);
  await until(() => observer.members.get(s1.id)?.key !== undefined && observer.list().filter((m) => m.name === 'zk1').length === 1, WAIT_MS);
  t.deepEqual(net.seed.list().map((m) => m.name).sort(), ['obs', 'zk1']);
  // Another process under the same name with another key, while zk1 lives: the name is taken.
  const impostor = net.agent('zk1');
  const err = await t.throwsAsync(impostor.join());
  t.is((err as { code?: string }).code, 'NAME_TAKEN');
  // A key bound to zk1 cannot come back under another name.
  const renamed = net.agent('zk2', keys);
  t.is(((await t.throwsAsync(renamed.join())) as { code?: string }).code, 'USAGE');
  t.is(net.seed.member(s1.id)?.name, 'zk1');
  second.stop();
  observer.stop();
  await net.seed.close();
});

test('names are lowercase DNS labels, checked at the seed and by every agent\'s decoder', async (t) => {
  const { seed, agent } = network();
  await agent('web').join();
  for (const join of [{ name: 'Web' }, { name: 'evil\n9 100.96.0.1 web' }, { name: 'a b' }, { services: ['API'] }, { rejoin: { id: 5, addr: '100.96.0.5', name: 'X' } }]) {
    const m = await rawJoin(seed, join);
    t.is(m.t, 'error', JSON.stringify(join));
    if (m.t === 'error') {
      t.is(m.code, 'bad-request');
      t.regex(m.message, /not a valid name/);
    }
  }
  t.is(seed.size, 1);
  // What an agent accepts from the seed (or anyone): a member with such a name does not decode.
  const member = { id: 2, name: 'ok', addr: '100.96.0.2', services: [], ext: null, priv: [], nat: 'open', key: new Uint8Array(32) };
  t.notThrows(() => decodeMessage(encodeMessage({ t: 'joined', m: member } as Message)));
  for (const name of ['OK', 'a\nb', '-a', 'x'.repeat(64)]) {
    t.throws(() => decodeMessage(encodeMessage({ t: 'joined', m: { ...member, name } } as Message)), undefined, name);
  }
  t.throws(() => decodeMessage(encodeMessage({ t: 'joined', m: { ...member, services: ['Api'] } } as Message)));
  await seed.close();
});

test('an agent keeps one member per name whatever the seed says, and never one with its own name', async (t) => {
  // A seed that lies: it welcomes the agent as "me", then announces two members under one name and a third
  // under the agent's own name.
  const seedKeys = generateKeyPair();
  const member = (id: number, name: string) => ({ id, name, addr: `100.96.0.${id}`, services: [], ext: null, priv: [], nat: 'open' as const, key: new Uint8Array(32), lport: 0 });
  let seedCh: Channel | null = null;
  const connect: Connector = async () => {
    const [client, server] = duplexPair();
    void Channel.respond(server, { psk, keys: seedKeys, peer: 'agent' }).then((ch) => {
      seedCh = ch;
      ch.on('message', (m) => {
        if (m.t !== 'join') return;
        ch.sendMessage({ t: 'welcome', id: 1, addr: '100.96.0.1', name: 'me', network: '100.96.0.0/16', observed: { ip: '198.51.100.1', port: 1 }, members: [member(1, 'me'), member(2, 'web'), member(3, 'web')], relearning: false });
      });
      ch.start();
    });
    return client;
  };
  const agent = new Agent({ seedHost: 'seed', seedPort: 7070, psk, keys: generateKeyPair(), name: 'me', services: [], connect, joinTimeoutMs: JOIN_MS });
  await agent.join();
  t.deepEqual(agent.list().map((m) => [m.id, m.name]), [[1, 'me'], [3, 'web']], 'the later of two members named web');
  seedCh!.sendMessage({ t: 'joined', m: member(4, 'me') });
  seedCh!.sendMessage({ t: 'joined', m: member(5, 'web') });
  await until(() => agent.members.has(5), WAIT_MS);
  t.deepEqual(agent.list().map((m) => [m.id, m.name]), [[1, 'me'], [5, 'web']]);
  agent.stop();
});

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
