// The control plane in memory: handshake, join, ids, addresses, names, leave, death, seed restart.
import test from 'ava';
import { Seed } from '../../src/control/seed';
import { Agent } from '../../src/control/agent';
import { sodiumReady } from '../../src/crypto/sodium';
import { deriveNetworkKey, generateKeyPair } from '../../src/crypto/keys';
import { memConnector } from '../support/memnet';
import { setSink } from '../../src/util/log';
import { decodeMessage, encodeMembers, encodeMessage, encodeWelcome } from '../../src/wire/messages';

test.before(async () => {
  await sodiumReady();
  setSink(() => {});
});

function network(secret = 'correct horse battery staple') {
  const psk = deriveNetworkKey(secret);
  const seed = new Seed({ network: '100.96.0.0/16', psk, keys: generateKeyPair(), stateFile: null });
  const agent = (name?: string, services: string[] = [], agentSecret = secret) =>
    new Agent({ seedHost: 'seed', seedPort: 7070, psk: deriveNetworkKey(agentSecret), keys: generateKeyPair(), name, services, connect: memConnector(seed), joinTimeoutMs: 500 });
  return { seed, agent };
}

test('five agents get distinct ids and addresses and all learn everyone', async (t) => {
  const { seed, agent } = network();
  const agents = [0, 1, 2, 3, 4].map((i) => agent(i === 2 ? 'db' : undefined));
  const selves = await Promise.all(agents.map((a) => a.join()));
  await Promise.all(agents.map((a) => a.waitForMembers(5)));
  t.deepEqual(new Set(selves.map((s) => s.id)).size, 5);
  t.deepEqual(new Set(selves.map((s) => s.addr)).size, 5);
  for (const s of selves) t.true(s.addr.startsWith('100.96.'));
  t.true(selves.some((s) => s.name === 'db'));
  t.true(selves.filter((s) => s.name !== 'db').every((s) => s.name === `node-${s.id}`));
  const views = agents.map((a) => JSON.stringify(a.list().map((m) => [m.id, m.addr, m.name])));
  t.true(views.every((v) => v === views[0]));
  t.is(seed.size, 5);
  await Promise.all(agents.map((a) => a.leave()));
  await seed.close();
});

test('a wrong secret is refused with a clear error and learns nothing', async (t) => {
  const { seed, agent } = network();
  const good = agent('good');
  await good.join();
  const bad = agent('bad', [], 'not the right secret at all');
  const err = await t.throwsAsync(bad.join());
  t.is((err as { code?: string }).code, 'WRONG_SECRET');
  t.regex(err!.message, /wrong network secret/);
  t.is(bad.members.size, 0);
  t.is(seed.size, 1);
  t.is(seed.stats.handshakeFailures, 1);
  await good.leave();
  await seed.close();
});

test('a name clash is refused at join; reserved node-N names too', async (t) => {
  const { seed, agent } = network();
  await agent('web').join();
  const e1 = await t.throwsAsync(agent('web').join());
  t.is((e1 as { code?: string }).code, 'NAME_TAKEN');
  const e2 = await t.throwsAsync(agent('node-99').join());
  t.is((e2 as { code?: string }).code, 'NAME_TAKEN');
  const e3 = await t.throwsAsync(agent('x', ['web']).join());
  t.is((e3 as { code?: string }).code, 'NAME_TAKEN');
  await seed.close();
});

test('leave and death reach every member; ids are never reused', async (t) => {
  const { seed, agent } = network();
  const [a, b, c] = [agent('a'), agent('b'), agent('c')];
  await a.join();
  await b.join();
  const sc = await c.join();
  await a.waitForMembers(3);
  await b.leave();
  await new Promise((r) => setTimeout(r, 50));
  t.is(a.members.size, 2);
  c.stop(); // dies without leaving: the seed waits for a reconnect, then declares it dead
  const gone = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 10_000);
    a.on('change', () => {
      if (!a.members.has(sc.id)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
  });
  t.true(gone);
  const d = agent('d');
  const sd = await d.join();
  t.is(sd.id, 4);
  await a.leave();
  await d.leave();
  await seed.close();
});

test('a join wave is told in batches: everyone learns everyone, in fewer messages than joins; a welcome encodes as the whole message would', async (t) => {
  const { seed, agent } = network();
  const n = 40;
  const agents = Array.from({ length: n }, () => agent());
  const seen = agents.map(() => 0);
  agents.forEach((a, i) => a.on('change', () => seen[i]++));
  await Promise.all(agents.map((a) => a.join()));
  await Promise.all(agents.map((a) => a.waitForMembers(n)));
  const views = agents.map((a) => JSON.stringify(a.list().map((m) => [m.id, m.addr, m.name])));
  t.true(views.every((v) => v === views[0]), 'the same list everywhere');
  t.true(seen[0] < n, `the first member heard of the ${n - 1} others in ${seen[0]} changes`);
  const members = agents[0].list();
  const w = { t: 'welcome' as const, id: 3, addr: '100.96.0.3', name: 'node-3', network: '100.96.0.0/16', observed: { ip: '192.0.2.1', port: 4000 }, relearning: false };
  t.deepEqual(decodeMessage(encodeWelcome(w, encodeMembers(members))), decodeMessage(encodeMessage({ ...w, members })));
  await Promise.all(agents.map((a) => a.leave()));
  await seed.close();
});
