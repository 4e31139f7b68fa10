// Floods at the seed's door, in memory: a source over its handshake rate is closed before any key exchange,
// refusals are logged as one summary per period (not one line per attempt), and nothing of it is admitted.
import test from 'ava';
import { sodiumReady } from '../../src/crypto/sodium';
import { deriveNetworkKey, generateKeyPair } from '../../src/crypto/keys';
import { Seed } from '../../src/control/seed';
import { HandshakeGate } from '../../src/control/gate';
import { Channel } from '../../src/channel/channel';
import { duplexPair } from '../support/memnet';
import { setSink } from '../../src/util/log';
import { HANDSHAKE_BURST, HANDSHAKE_RATE_PER_S } from '../../src/constants';
import type { Logger } from '../../src/util/log';

const lines: string[] = [];
test.before(async () => {
  await sodiumReady();
  setSink((l) => lines.push(l));
});

test('the gate admits a burst then the refill rate per source, independently per source', (t) => {
  let now = 1_000_000;
  const warns: string[] = [];
  const gate = new HandshakeGate({ warn: (m: string) => warns.push(m), info: () => undefined, debug: () => undefined } as unknown as Logger, () => now);
  let a = 0;
  for (let i = 0; i < 5_000; i++) if (gate.admit('192.0.2.1')) a++;
  t.is(a, HANDSHAKE_BURST, 'the burst, then nothing without time passing');
  now += 1_000;
  let b = 0;
  for (let i = 0; i < 5_000; i++) if (gate.admit('192.0.2.1')) b++;
  t.is(b, HANDSHAKE_RATE_PER_S, 'one second refills the rate');
  t.true(gate.admit('192.0.2.2'), 'another source is not affected');
  t.is(warns.length, 1, 'one line at the first refusal');
  gate.flush();
  t.is(warns.length, 2, 'then one summary');
  t.regex(warns[1], /refused \d+ handshakes/);
  gate.close();
});

test('3,000 wrong-secret handshakes from one source: admitted 0, a handful of log lines, members join after', async (t) => {
  const psk = deriveNetworkKey('the real network secret');
  const wrong = deriveNetworkKey('not the network secret!!');
  const seed = new Seed({ network: '100.96.0.0/16', psk, keys: generateKeyPair(), stateFile: null });
  const before = lines.length;
  const ATTEMPTS = 3_000;
  let refusedFast = 0;
  const tries: Promise<void>[] = [];
  for (let i = 0; i < ATTEMPTS; i++) {
    const [a, b] = duplexPair();
    seed.accept(b, { ip: '203.0.113.66', port: 1024 + i });
    tries.push(
      Channel.initiate(a, { psk: wrong, keys: generateKeyPair(), peer: 'seed' }).then(
        () => t.fail('a wrong secret was admitted'),
        () => {
          refusedFast++;
        },
      ),
    );
  }
  await Promise.all(tries);
  t.is(refusedFast, ATTEMPTS);
  t.is(seed.list().length, 0, 'admitted 0');
  t.is(seed.gate.total.refused, ATTEMPTS);
  seed.gate.flush();
  const logged = lines.slice(before).filter((l) => /comp=seed/.test(l));
  t.log(`${ATTEMPTS} refused handshakes made ${logged.length} log lines; ${ATTEMPTS - HANDSHAKE_BURST} closed by the rate limit before any key exchange`);
  t.true(logged.length <= 4, logged.join('\n'));
  t.true(logged.some((l) => /does not know the network secret/.test(l)), 'the first refusal says why at once');
  // The door still opens for a member with the secret from another address.
  const [a, b] = duplexPair();
  seed.accept(b, { ip: '198.51.100.9', port: 5000 });
  const ch = await Channel.initiate(a, { psk, keys: generateKeyPair(), peer: 'seed' });
  t.false(ch.isClosed);
  ch.close();
  await seed.close();
});
