// The Lambda event's decoder (src/lambda/event.ts) and the seed's one-join-per-(run, index) rule, in memory.
import test from 'ava';
import { decodeEvent, DEFAULT_LEAVE_BEFORE_MS } from '../../src/lambda/event';
import { commandEnv } from '../../src/lambda/handler';
import { decodeMessage, encodeMessage } from '../../src/wire/messages';
import { Seed } from '../../src/control/seed';
import { Agent } from '../../src/control/agent';
import { sodiumReady } from '../../src/crypto/sodium';
import { deriveNetworkKey, generateKeyPair } from '../../src/crypto/keys';
import { memConnector } from '../support/memnet';
import { setSink } from '../../src/util/log';

test.before(async () => {
  await sodiumReady();
  setSink(() => {});
});

const MIN = { seed: 'seed.example.com:7070', nodes: 3, command: ['./start.sh', '--x'] };

test('a minimal event gets the defaults; every documented field is taken', (t) => {
  t.deepEqual(decodeEvent(MIN), { seed: MIN.seed, nodes: 3, command: MIN.command, services: [], env: {}, leaveBeforeMs: DEFAULT_LEAVE_BEFORE_MS, awsCredentials: false });
  const full = decodeEvent(
    JSON.stringify({ ...MIN, name: 'db', service: 'zk', env: { A: '1' }, leaveBeforeMs: 5000, secret: { secretsManager: 'arn:aws:secretsmanager:eu-west-1:1:secret:x' }, run: 'r-1', index: 2, awsCredentials: true }),
  );
  t.is(full.name, 'db');
  t.deepEqual(full.services, ['zk']);
  t.deepEqual(full.env, { A: '1' });
  t.is(full.leaveBeforeMs, 5000);
  t.deepEqual(full.secret, { secretsManager: 'arn:aws:secretsmanager:eu-west-1:1:secret:x' });
  t.deepEqual(full.run, { id: 'r-1', index: 2 });
  t.true(full.awsCredentials);
  t.deepEqual(decodeEvent({ ...MIN, service: ['a', 'b'], secret: { ssmParameter: '/boxer/net' } }).secret, { ssmParameter: '/boxer/net' });
});

test('bad events are refused with an error naming the field', (t) => {
  const bad: Array<[unknown, RegExp]> = [
    ['{not json', /not JSON/],
    [[], /expected a JSON object/],
    [{ ...MIN, seed: 'nohost' }, /seed "nohost": expected HOST:PORT/],
    [{ ...MIN, nodes: 0 }, /nodes: expected a whole number/],
    [{ ...MIN, command: [] }, /command: expected a list/],
    [{ ...MIN, command: [''] }, /command\[0\]/],
    [{ ...MIN, name: 'Not_A_Name' }, /name "Not_A_Name": expected a DNS label/],
    [{ ...MIN, env: { 'A-B': 'x' } }, /env: "A-B" is not a variable name/],
    [{ ...MIN, env: { BOXER_SECRET: 'x'.repeat(20) } }, /the secret never goes in the event/],
    [{ ...MIN, secret: 'plain text secret' }, /secret: expected \{"secretsManager"/],
    [{ ...MIN, secret: { vault: 'x' } }, /unknown source "vault"/],
    [{ ...MIN, run: 'r1' }, /run and index go together/],
    [{ ...MIN, run: 'bad id!', index: 1 }, /run: expected a run id/],
    [{ ...MIN, run: 'r1', index: -1 }, /index: expected a member index/],
    [{ ...MIN, leaveBeforeMs: -5 }, /leaveBeforeMs/],
    [{ ...MIN, awsCredentials: 'yes' }, /awsCredentials: expected true or false/],
    [{ ...MIN, sede: 'typo' }, /unknown field "sede"/],
  ];
  for (const [ev, re] of bad) t.throws(() => decodeEvent(ev), { message: re, name: 'EventError' }, JSON.stringify(ev));
});

test('the command gets no AWS credentials and no secret unless the event asks', (t) => {
  const base = { PATH: '/usr/bin', AWS_ACCESS_KEY_ID: 'AKIA', AWS_SECRET_ACCESS_KEY: 's', AWS_SESSION_TOKEN: 't', AWS_REGION: 'eu-west-1', BOXER_SECRET: 'x', AWS_LAMBDA_RUNTIME_API: '127.0.0.1:9001' };
  const env = commandEnv(base, decodeEvent({ ...MIN, env: { K: 'v' } }), '/var/task');
  t.is(env.AWS_ACCESS_KEY_ID, undefined);
  t.is(env.AWS_SECRET_ACCESS_KEY, undefined);
  t.is(env.AWS_SESSION_TOKEN, undefined);
  t.is(env.BOXER_SECRET, undefined);
  t.is(env.AWS_LAMBDA_RUNTIME_API, undefined);
  t.is(env.AWS_REGION, 'eu-west-1');
  t.is(env.K, 'v');
  t.is(env.PATH, '/var/task/bin:/usr/bin');
  const withCreds = commandEnv(base, decodeEvent({ ...MIN, awsCredentials: true }), '/var/task');
  t.is(withCreds.AWS_SESSION_TOKEN, 't');
  t.is(withCreds.BOXER_SECRET, undefined);
});

test('join carries the run key; the seed admits each (run, index) once, also after that member left', async (t) => {
  t.deepEqual(decodeMessage(encodeMessage({ t: 'join', services: [], priv: [], nat: 'open', run: { id: 'r1', index: 4 } })), {
    t: 'join',
    name: undefined,
    services: [],
    priv: [],
    nat: 'open',
    rejoin: undefined,
    lport: undefined,
    map: undefined,
    run: { id: 'r1', index: 4 },
  });
  t.throws(() => decodeMessage(encodeMessage({ t: 'join', services: [], priv: [], nat: 'open', run: { id: 'no spaces', index: 1 } })), { message: /run id/ });

  const psk = deriveNetworkKey('correct horse battery staple');
  const seed = new Seed({ network: '100.96.0.0/16', psk, keys: generateKeyPair(), stateFile: null });
  const agent = (run?: { id: string; index: number }) =>
    new Agent({ seedHost: 'seed', seedPort: 7070, psk, keys: generateKeyPair(), services: [], connect: memConnector(seed), joinTimeoutMs: 500, run });
  const first = agent({ id: 'r1', index: 0 });
  await first.join();
  const dup = await t.throwsAsync(agent({ id: 'r1', index: 0 }).join());
  t.is((dup as { code?: string }).code, 'DUPLICATE');
  t.regex(dup!.message, /member 0 of run r1 has joined already .*duplicate invocation/);
  await agent({ id: 'r1', index: 1 }).join(); // another index
  await agent({ id: 'r2', index: 0 }).join(); // another run
  await agent().join(); // boxer run: no key
  t.is(seed.size, 4);
  await first.leave();
  const again = await t.throwsAsync(agent({ id: 'r1', index: 0 }).join());
  t.is((again as { code?: string }).code, 'DUPLICATE', 'a late duplicate is refused too');
  await seed.close();
});
