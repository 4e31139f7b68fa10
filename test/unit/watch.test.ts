// Observers of the seed (src/control/watch.ts), in memory: an observer hears the members present when it starts
// watching, then every join, and every leave with the outcome the member told, or `dead` without one; it is
// no member (not counted, not in anyone's list) and a wrong secret is refused with a clear error.
import test from 'ava';
import { Seed } from '../../src/control/seed';
import { Agent } from '../../src/control/agent';
import { watchSeed, type Watched } from '../../src/control/watch';
import { sodiumReady } from '../../src/crypto/sodium';
import { deriveNetworkKey, generateKeyPair } from '../../src/crypto/keys';
import { memConnector } from '../support/memnet';
import { setSink } from '../../src/util/log';
import type { Outcome } from '../../src/wire/messages';
import { BoxerError } from '../../src/util/errors';

test.before(async () => {
  await sodiumReady();
  setSink(() => {});
});

const SECRET = 'correct horse battery staple';

test('an observer hears members present, joins, leaves with outcomes and deaths, and is no member', async (t) => {
  const psk = deriveNetworkKey(SECRET);
  const seed = new Seed({ network: '100.96.0.0/16', psk, keys: generateKeyPair(), stateFile: null });
  const agent = (name: string) => new Agent({ seedHost: 'seed', seedPort: 7070, psk, keys: generateKeyPair(), name, services: [], connect: memConnector(seed), joinTimeoutMs: 500 });
  const a = agent('a');
  await a.join();
  const w = await watchSeed({ host: 'seed', port: 7070, psk, keys: generateKeyPair(), connect: memConnector(seed) });
  const joined: Watched[] = [];
  const left: Array<Watched & { reason: string; outcome?: Outcome }> = [];
  w.on('joined', (m) => joined.push(m));
  w.on('left', (m) => left.push(m));
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
    t.true(cond());
  };
  await until(() => joined.length === 1);
  t.like(joined[0], { name: 'a', addr: a.self!.addr, id: a.self!.id });
  const b = agent('b');
  const c = agent('c');
  await b.join();
  await c.join();
  await until(() => joined.length === 3);
  t.is(seed.size, 3, 'the observer is not a member');
  t.is(a.members.size, 3);
  await b.leave({ code: 3, signal: null, reason: 'exited' });
  await until(() => left.length === 1);
  t.like(left[0], { name: 'b', reason: 'leave', outcome: { code: 3, signal: null, reason: 'exited' } });
  c.stop(); // dies without a word: the seed declares it dead, with no outcome
  await until(() => left.length === 2);
  t.like(left[1], { name: 'c', reason: 'dead' });
  t.is(left[1].outcome, undefined);
  await a.leave({ code: null, signal: 'SIGTERM', reason: 'deadline' });
  await until(() => left.length === 3);
  t.like(left[2], { name: 'a', outcome: { code: null, signal: 'SIGTERM', reason: 'deadline' } });
  w.close();
  await seed.close();
});

test('an observer with the wrong secret is refused with WRONG_SECRET', async (t) => {
  const seed = new Seed({ network: '100.96.0.0/16', psk: deriveNetworkKey(SECRET), keys: generateKeyPair(), stateFile: null });
  const e = await t.throwsAsync(watchSeed({ host: 'seed', port: 7070, psk: deriveNetworkKey('another secret, not the one'), keys: generateKeyPair(), connect: memConnector(seed) }));
  t.true(e instanceof BoxerError && e.code === 'WRONG_SECRET', String(e));
  t.regex(e!.message, /does not know this network secret/);
  await seed.close();
});
