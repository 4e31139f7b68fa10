// The seed's bindings table on its own: ids and addresses are one number, the counter cannot leave the network,
// a full network reuses the id of the member gone longest (never a live one), the table stays bounded, and the
// state file keeps only well-formed bindings of this network.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Bindings } from '../../src/control/bindings';
import { addressOf, capacity, parseCidr } from '../../src/control/addresses';
import { setSink } from '../../src/util/log';

test.before(() => setSink(() => {}));

const key = (n: number) => n.toString(16).padStart(64, '0');

test('id N has the N-th usable address; .0 and .255 are skipped; nothing outside the block', (t) => {
  const c16 = parseCidr('100.96.0.0/16');
  t.is(capacity(c16), 256 * 254);
  t.is(addressOf(c16, 1), '100.96.0.1');
  t.is(addressOf(c16, 254), '100.96.0.254');
  t.is(addressOf(c16, 255), '100.96.1.1');
  t.is(addressOf(c16, capacity(c16)), '100.96.255.254');
  t.is(addressOf(c16, capacity(c16) + 1), null);
  t.is(addressOf(c16, 0), null);
  const c30 = parseCidr('10.0.0.4/30');
  t.is(capacity(c30), 2);
  t.deepEqual([1, 2, 3].map((i) => addressOf(c30, i)), ['10.0.0.5', '10.0.0.6', null]);
});

test('a full network reuses the id of the binding gone longest, never a live member\'s; then it is full', (t) => {
  const b = new Bindings(parseCidr('10.0.0.4/30'), 8);
  const live = new Set<number>();
  const isLive = (id: number) => live.has(id);
  for (const k of [1, 2]) {
    const id = b.nextId(isLive)!;
    b.bind(key(k), id, `m${k}`, isLive);
    live.add(id);
  }
  t.is(b.nextId(isLive), null, 'every address is live');
  live.delete(2);
  live.delete(1);
  b.ofId(1)!.seen = 10;
  b.ofId(2)!.seen = 5;
  t.is(b.nextId(isLive), 2, 'the binding gone longest gives its id');
  b.bind(key(3), 2, 'm3', isLive);
  t.is(b.ofKey(key(2)), undefined);
  t.is(b.ofId(2)!.key, key(3));
  t.is(b.maxId, 2);
});

test('the table is bounded: bindings of members gone longest are dropped first, live ones never', (t) => {
  const b = new Bindings(parseCidr('100.96.0.0/16'), 3);
  const live = new Set([1]);
  for (let k = 1; k <= 5; k++) {
    b.bind(key(k), k, `m${k}`, (id) => live.has(id));
    b.ofId(k)!.seen = k;
  }
  t.is(b.size, 3);
  t.truthy(b.ofId(1), 'live member 1 kept');
  t.deepEqual([2, 3, 4, 5].filter((id) => b.ofId(id)), [4, 5]);
});

test('the state file round-trips; malformed, foreign and conflicting entries are skipped', (t) => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-bind-')), 'seed.json');
  const c = parseCidr('100.96.0.0/16');
  const b = new Bindings(c);
  b.bind(key(1), 1, 'alpha', () => true);
  b.bind(key(2), 7, 'beta', () => true);
  b.save(file, [1]);
  t.is(fs.statSync(file).mode & 0o777, 0o600);
  const again = new Bindings(c);
  t.is(again.load(file), 'bindings');
  t.deepEqual([again.ofKey(key(1))?.id, again.ofKey(key(2))?.addr, again.maxId], [1, '100.96.0.7', 7]);
  const s = JSON.parse(fs.readFileSync(file, 'utf8'));
  s.bindings.push({ id: 9, addr: '100.96.0.8', name: 'x', key: key(9) }, { id: 10, addr: '100.96.0.10', name: 'Bad\nName', key: key(10) }, { id: 1, addr: '100.96.0.1', name: 'dup', key: key(11) });
  s.maxId = 2 ** 40;
  fs.writeFileSync(file, JSON.stringify(s));
  const third = new Bindings(c);
  t.is(third.load(file), 'bindings');
  t.is(third.size, 2);
  t.is(third.maxId, capacity(c), 'a counter beyond the network is brought back into it');
  t.is(new Bindings(parseCidr('10.0.0.0/16')).load(file), 'none', 'another network');
  fs.writeFileSync(file, JSON.stringify({ network: c.text, maxId: 4, maxAddr: 1677787140 }));
  const legacy = new Bindings(c);
  t.is(legacy.load(file), 'legacy');
  t.is(legacy.maxId, 4);
  fs.writeFileSync(file, '{not json');
  t.is(new Bindings(c).load(file), 'none');
});
