// In memory: where a peer link and a program connection are decided (traversal/paths.ts, vnet/routes.ts),
// homes by rendezvous hashing (traversal/homes.ts), and the one relay hop (traversal/relayed-link.ts).
import test from 'ava';
import { planPaths } from '../../src/traversal/paths';
import { assignHomes, homeOf } from '../../src/traversal/homes';
import { relayHop } from '../../src/traversal/relayed-link';
import { decideRoute } from '../../src/vnet/routes';
import type { MemberInfo, Message, NatKind } from '../../src/wire/messages';
import type { NatMapping } from '../../src/traversal/discovery';

function member(id: number, nat: NatKind, ext: string | null, extra: Partial<MemberInfo> = {}): MemberInfo {
  return { id, name: `m${id}`, addr: `100.96.0.${id}`, services: [], ext: ext ? { ip: ext, port: 40000 + id } : null, priv: [], nat, key: new Uint8Array(32), lport: 0, ...extra };
}
const mapping = (kind: NatKind, ip: string | null): NatMapping => ({ kind, ip, xor: kind === 'translating' ? 0x8000 : null, offset: null });

test('planPaths: an open member is dialled; an open self asks to be dialled', (t) => {
  const open = member(2, 'open', '198.51.100.2', { lport: 7000 });
  t.deepEqual(planPaths(mapping('preserving', '203.0.113.1'), 5000, open), [{ path: 'direct', how: 'dial', ep: { ip: '198.51.100.2', port: 7000 }, timeoutMs: 2_500 }]);
  const natted = member(3, 'random', '203.0.113.3');
  t.deepEqual(planPaths(mapping('open', '198.51.100.1'), 5000, natted), [{ path: 'direct', how: 'ask', ep: { ip: '198.51.100.1', port: 5000 } }]);
  // A seed on 0.0.0.0 does not know its address: the peer dials the one it knows.
  t.deepEqual(planPaths(mapping('open', null), 5000, natted), [{ path: 'direct', how: 'ask', ep: null }]);
  // An open member without a listener cannot be dialled: it falls to the NAT rules.
  t.deepEqual(planPaths(mapping('random', '203.0.113.1'), 5000, member(4, 'open', '198.51.100.4')).map((s) => s.path), ['relay']);
});

test('planPaths: behind one gateway LAN candidates, then hairpin, then relay; across NATs punched then relay', (t) => {
  const me = mapping('preserving', '203.0.113.1');
  const neighbour = member(2, 'translating', '203.0.113.1', { priv: [{ ip: '10.0.0.2', port: 6000 }, { ip: '10.1.0.2', port: 6000 }] });
  t.deepEqual(planPaths(me, 5000, neighbour).map((s) => s.path), ['lan', 'lan', 'hairpin', 'relay']);
  t.deepEqual(planPaths(me, 5000, { ...neighbour, nat: 'random' }).map((s) => s.path), ['lan', 'lan', 'relay']);
  t.deepEqual(planPaths(me, 5000, member(3, 'translating', '198.51.100.3')).map((s) => s.path), ['punched', 'relay']);
  t.deepEqual(planPaths(me, 5000, member(3, 'random', '198.51.100.3')).map((s) => s.path), ['relay']);
  t.deepEqual(planPaths(mapping('unknown', null), 0, member(3, 'preserving', '198.51.100.3')).map((s) => s.path), ['relay']);
});

test('homeOf: an open member with a listener, the same from every member, spread over the open members', (t) => {
  const members = [member(1, 'open', '198.51.100.1', { lport: 7001 }), member(2, 'open', '198.51.100.2', { lport: 7002 }), member(3, 'open', '198.51.100.3'), ...Array.from({ length: 60 }, (_, i) => member(10 + i, 'random', '203.0.113.9'))];
  const homes = new Map<number, number>();
  for (const m of members.slice(3)) {
    const h = homeOf(members, m.id);
    t.true(h === 1 || h === 2, 'only open members with a listener are homes');
    t.is(homeOf([...members].reverse(), m.id), h, 'independent of the list order');
    homes.set(h!, (homes.get(h!) ?? 0) + 1);
  }
  t.true((homes.get(1) ?? 0) > 10 && (homes.get(2) ?? 0) > 10, `both homes used: ${[...homes.entries()].join(' ')}`);
  t.not(homeOf(members, 1), 1, 'an open member is not its own home');
  t.is(homeOf(members.slice(2), 20), null, 'no open member with a listener: no home');
});

test('assignHomes: an open member is the home of at most the cap; the rest have none; the same whatever the order', (t) => {
  const members = [member(1, 'open', '198.51.100.1', { lport: 7001 }), member(2, 'open', '198.51.100.2', { lport: 7002 }), ...Array.from({ length: 100 }, (_, i) => member(10 + i, 'random', '203.0.113.9'))];
  const homes = assignHomes(members, 32);
  const load = new Map<number | null, number>();
  for (const h of homes.values()) load.set(h, (load.get(h) ?? 0) + 1);
  t.is(load.get(1), 32);
  t.is(load.get(2), 32);
  t.is(load.get(null), members.length - 64, 'members beyond the capacity have no home');
  t.deepEqual([...assignHomes([...members].reverse(), 32)].sort((a, b) => a[0] - b[0]), [...homes].sort((a, b) => a[0] - b[0]));
  t.is(homeOf(members, 1, 32), 2, 'an open member is homed on another');
});

test('relayHop: carried to the named member as from the sender; an unreachable one ends the stream back', (t) => {
  const sent: Array<[number, Message]> = [];
  const reachable = new Set([2, 3]);
  const sendTo = (id: number, x: Extract<Message, { t: 'relay' }>) => (reachable.has(id) ? (sent.push([id, x]), true) : false);
  const data = new Uint8Array([1, 2, 3]);
  t.true(relayHop({ t: 'relay', peer: 3, sid: 9, data, end: false, hop: true }, 2, sendTo));
  t.deepEqual(sent.splice(0), [[3, { t: 'relay', peer: 2, sid: 9, data, end: false, hop: false }]]);
  t.false(relayHop({ t: 'relay', peer: 4, sid: 9, data, end: false, hop: true }, 2, sendTo));
  t.deepEqual(sent.splice(0), [[2, { t: 'relay', peer: 4, sid: 9, data: new Uint8Array(0), end: true, hop: false }]]);
  t.false(relayHop({ t: 'relay', peer: 4, sid: 9, data, end: true, hop: true }, 2, sendTo), 'an end to nobody is not answered');
  t.false(relayHop({ t: 'relay', peer: 2, sid: 9, data, end: false, hop: true }, 2, sendTo), 'not back to the sender itself');
  t.deepEqual(sent.splice(0), [[2, { t: 'relay', peer: 2, sid: 9, data: new Uint8Array(0), end: true, hop: false }]]);
});

test('decideRoute: self, direct, LAN, punch, agent, none', (t) => {
  const map = { xor: 0, offset: 0, lo: 50000, hi: 50063 };
  const me = member(1, 'preserving', '203.0.113.1', { map });
  t.deepEqual(decideRoute(undefined, me, undefined), { kind: 'none' });
  t.deepEqual(decideRoute(me, me, undefined), { kind: 'self' });
  t.deepEqual(decideRoute(me, member(2, 'open', '198.51.100.2'), undefined), { kind: 'direct', ip: '198.51.100.2' });
  t.deepEqual(decideRoute(me, member(2, 'unknown', '127.0.0.1'), undefined), { kind: 'direct', ip: '127.0.0.1' }, 'no discovery (one host): direct');
  t.deepEqual(decideRoute(me, member(2, 'open', null), undefined), { kind: 'none' });
  const neighbour = member(3, 'preserving', '203.0.113.1', { priv: [{ ip: '10.0.0.3', port: 1 }], map });
  t.deepEqual(decideRoute(me, neighbour, 'lan'), { kind: 'direct', ip: '10.0.0.3' });
  t.deepEqual(decideRoute(me, neighbour, 'hairpin'), { kind: 'agent' }, 'same NAT without a LAN: relayed');
  t.deepEqual(decideRoute(me, neighbour, undefined), { kind: 'agent' });
  const far = member(4, 'translating', '198.51.100.4', { map: { xor: 0x8000, offset: 0, lo: 40000, hi: 40063 } });
  t.deepEqual(decideRoute(me, far, undefined), { kind: 'punch', ip: '198.51.100.4', xor: 0x8000, offset: 0, lo: 40000, hi: 40063 });
  t.deepEqual(decideRoute(me, { ...far, map: undefined }, undefined), { kind: 'agent' }, 'no port map: nothing to aim at');
  t.deepEqual(decideRoute(me, { ...far, nat: 'random' }, undefined), { kind: 'agent' });
  t.deepEqual(decideRoute({ ...me, nat: 'random' }, far, undefined), { kind: 'agent' });
});
