// The broker under what a hostile program or a dying member does, in memory: a connection pending toward a
// member that dies fails at once with EHOSTUNREACH (it hung until the far side answered: 134 s), and every
// table the shim's socket feeds stays bounded (HELLO names, ACCEPTED for unknown peers, pending outcomes).
import test from 'ava';
import os from 'node:os';
import { Broker, type SocketOps, type VnetMessage, type VnetNetwork } from '../../src/vnet/broker';
import { MAX_ACCEPT_WAITERS, MAX_PENDING_OUTCOMES, MAX_PROGRAM_NAME, MAX_SHIM_PROGRAMS } from '../../src/constants';
import type { MemberInfo } from '../../src/wire/messages';

const E = os.constants.errno;

function info(id: number, nat: MemberInfo['nat'], ip: string): MemberInfo {
  return { id, name: `m${id}`, addr: `100.96.0.${id}`, services: [], ext: { ip, port: 7000 + id }, priv: [], lport: 0, nat, key: new Uint8Array(32) } as MemberInfo;
}

function world(selfNat: MemberInfo['nat'] = 'preserving') {
  const members = [info(1, selfNat, '198.51.100.1'), info(2, 'preserving', '203.0.113.2')];
  const sent: Array<[number, VnetMessage]> = [];
  const netw: VnetNetwork = {
    self: () => ({ id: 1, addr: '100.96.0.1' }),
    members: () => members,
    predictOwn: (p) => ({ ip: '198.51.100.1', port: p }),
    linkPath: () => 'punched',
    ensureLink: async () => 'punched',
    seedIp: () => null,
    send: (to, msg) => sent.push([to, msg]),
  };
  const ops = new Proxy({}, { get: () => () => 0 }) as unknown as SocketOps;
  const broker = new Broker(netw, ops);
  return { members, sent, broker };
}

test.serial('a pending connection to a member that dies fails at once with EHOSTUNREACH', async (t) => {
  const { members, broker } = world();
  broker.connecting(members[1], 80, 40000, { ip: '203.0.113.2', port: 80 }, 41000, 7n);
  const waiting = broker.result(7n, 1_500);
  const start = Date.now();
  members.splice(1, 1); // member 2 is declared dead
  t.is(broker.membersChanged(), 1);
  t.is(await waiting, E.EHOSTUNREACH);
  t.true(Date.now() - start < 100, `took ${Date.now() - start} ms`);
  t.is(await broker.result(7n, 1_500), E.EHOSTUNREACH, 'asked again: the same answer, at once');
  broker.close();
});

test.serial('HELLO: programs and their names are bounded', (t) => {
  const { broker } = world();
  for (let pid = 1; pid <= MAX_SHIM_PROGRAMS * 20; pid++) broker.hello(pid, 'x'.repeat(4000));
  t.is(broker.shims.size, MAX_SHIM_PROGRAMS);
  t.true([...broker.shims.values()].every((n) => n.length === MAX_PROGRAM_NAME));
  t.true(broker.shims.has(MAX_SHIM_PROGRAMS * 20), 'the newest is kept');
  broker.close();
});

test.serial('ACCEPTED for peers nobody announced: no waiter stays behind, and at most MAX_ACCEPT_WAITERS wait at once', async (t) => {
  const { broker } = world('open');
  // From member 2's address (a possible source of a direct connection to us, an open member), so each one
  // waits for an announcement that never comes.
  const start = Date.now();
  const asks = Array.from({ length: MAX_ACCEPT_WAITERS + 500 }, (_, i) =>
    broker.accepted(80, { ip: '203.0.113.2', port: 1024 + i }).then((a) => ({ ...a, ms: Date.now() - start })),
  );
  const answers = await Promise.all(asks);
  t.true(answers.every((a) => a.errno === E.ENOENT));
  t.true(answers.slice(0, MAX_ACCEPT_WAITERS).every((a) => a.ms >= 900), 'the first ones waited for an announcement');
  t.true(answers.slice(MAX_ACCEPT_WAITERS).every((a) => a.ms < 900), 'those beyond the bound were answered at once');
  t.deepEqual(broker.acceptWaiting, { waiting: 0, keys: 0 }, 'no waiter left in the table');
  broker.close();
});

test.serial('pending outcomes are bounded: the oldest is settled ETIMEDOUT', async (t) => {
  const { members, broker } = world();
  broker.connecting(members[1], 80, 40000, { ip: '203.0.113.2', port: 80 }, 41000, 1n);
  const first = broker.result(1n, 1_500);
  for (let i = 2; i <= MAX_PENDING_OUTCOMES + 10; i++) broker.connecting(members[1], 80, 40000, { ip: '203.0.113.2', port: 80 }, 41000, BigInt(i));
  t.is(await first, E.ETIMEDOUT, 'the oldest waiter is told ETIMEDOUT');
  t.is(await broker.result(1n, 10), E.EINPROGRESS, 'then forgotten');
  const b = broker as unknown as { client: { outcomes: Map<bigint, unknown> } };
  t.is(b.client.outcomes.size, MAX_PENDING_OUTCOMES);
  broker.close();
});
