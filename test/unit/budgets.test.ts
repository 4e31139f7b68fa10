// Every shim request is answered inside the shim's bound for it: the bounds are read from the shim's headers
// (native/shim/common/ipc.h, sockutil.h), the agent's budgets are src/constants/'s, and the broker is made
// to meet its worst case in memory (a member that never links, relays that never answer).
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as C from '../../src/constants';
import { Broker } from '../../src/vnet/broker';
import type { SocketOps, VnetNetwork } from '../../src/vnet/network';
import type { MemberInfo, NatKind } from '../../src/wire/messages';
import { setSink } from '../../src/util/log';

const E = os.constants.errno;
test.before(() => void setSink(() => {}));

function cDefine(file: string, name: string): number {
  const text = fs.readFileSync(path.resolve(__dirname, '../../../native/shim/common', file), 'utf8');
  const m = new RegExp(`#define ${name}\\s+(\\d+)`).exec(text);
  if (!m) throw new Error(`#define ${name} not found in ${file}`);
  return Number(m[1]);
}

test("the agent's copies of the shim's bounds are the shim's", (t) => {
  t.is(C.SHIM_IPC_TIMEOUT_MS, cDefine('ipc.h', 'SHIM_IPC_TIMEOUT_MS'));
  t.is(C.SHIM_CONNECT_TIMEOUT_MS, cDefine('ipc.h', 'SHIM_CONNECT_TIMEOUT_MS'));
  t.is(C.SHIM_CONNECT_RESULT_WAIT_MS, cDefine('sockutil.h', 'SHIM_CONNECT_RESULT_WAIT_MS'));
});

test('each request fits: CONNECT (blocking, non-blocking), CONNECT_RESULT, ACCEPTED', (t) => {
  const fits = (what: string, worst: number, bound: number) => t.true(worst + C.SHIM_REPLY_MARGIN_MS <= bound, `${what}: ${worst} ms + ${C.SHIM_REPLY_MARGIN_MS} ms margin within ${bound} ms`);
  // Unbounded, a blocking CONNECT could take a whole first link, then every relay and the far side's answer:
  const unbounded = C.PING_TOTAL_MS + (C.RELAYS_TRIED + 1) * C.RELAY_REQUEST_TIMEOUT_MS + C.RELAY_REQUEST_TIMEOUT_MS;
  t.true(unbounded > C.SHIM_CONNECT_TIMEOUT_MS, `without the budget: ${unbounded} ms`);
  t.log(`CONNECT unbounded ${unbounded} ms; budget ${C.CONNECT_BUDGET_MS} ms (blocking), ${C.CONNECT_NONBLOCK_BUDGET_MS} ms (non-blocking)`);
  fits('CONNECT, blocking', C.CONNECT_BUDGET_MS, C.SHIM_CONNECT_TIMEOUT_MS);
  fits('CONNECT, non-blocking', C.CONNECT_NONBLOCK_BUDGET_MS, C.SHIM_IPC_TIMEOUT_MS);
  fits('CONNECT_RESULT', C.MAX_RESULT_WAIT_MS, C.SHIM_IPC_TIMEOUT_MS);
  t.true(C.SHIM_CONNECT_RESULT_WAIT_MS <= C.MAX_RESULT_WAIT_MS, 'the wait the shim asks for is granted whole');
  fits('ACCEPTED', Math.max(C.ANNOUNCE_WAIT_MS, C.LOOPBACK_ANNOUNCE_WAIT_MS), C.SHIM_IPC_TIMEOUT_MS);
});

function member(id: number, nat: NatKind, ext: string, extra: Partial<MemberInfo> = {}): MemberInfo {
  return { id, name: `m${id}`, addr: `100.96.0.${id}`, services: [], ext: { ip: ext, port: 1 }, priv: [], nat, key: new Uint8Array(32), lport: 0, ...extra };
}

/** A broker whose network never answers: links never open, relays never reply. */
function silentBroker(members: MemberInfo[]) {
  const netw: VnetNetwork = {
    self: () => ({ id: 1, addr: members[0].addr }),
    members: () => members,
    predictOwn: () => null,
    linkPath: () => undefined,
    ensureLink: () => new Promise(() => {}),
    send: () => {},
    seedIp: () => '192.0.2.1',
  };
  return new Broker(netw, {} as SocketOps);
}

async function timed<T>(p: Promise<T>): Promise<[T, number]> {
  const t0 = Date.now();
  const v = await p;
  return [v, Date.now() - t0];
}

/** Timers fire late on a loaded machine: generous, and still far below the unbounded worst case (seconds more). */
const SLACK_MS = 1_000;

test('a non-blocking CONNECT whose first link never opens is answered within its budget', async (t) => {
  const me = member(1, 'random', '203.0.113.1');
  const neighbour = member(2, 'random', '203.0.113.1');
  const b = silentBroker([me, neighbour]);
  const [a, ms] = await timed(b.connect(neighbour.addr, 80, 40000, C.CONNECT_NONBLOCK_BUDGET_MS));
  t.is(a.errno, E.ETIMEDOUT);
  t.true(ms <= C.CONNECT_NONBLOCK_BUDGET_MS + SLACK_MS, `${ms} ms`);
  b.close();
});

test('a non-blocking CONNECT whose relays never answer is answered within its budget', async (t) => {
  const me = member(1, 'random', '203.0.113.1');
  const far = member(2, 'random', '198.51.100.2');
  const b = silentBroker([me, far, member(5, 'open', '198.51.100.5'), member(6, 'open', '198.51.100.6')]);
  const [a, ms] = await timed(b.connect(far.addr, 80, 40000, C.CONNECT_NONBLOCK_BUDGET_MS));
  t.is(a.errno, E.ETIMEDOUT);
  t.true(ms <= C.CONNECT_NONBLOCK_BUDGET_MS + SLACK_MS, `${ms} ms`);
  b.close();
});

test('CONNECT_RESULT and ACCEPTED with no answer from the network come back within their bounds', async (t) => {
  const me = member(1, 'open', '198.51.100.1');
  const b = silentBroker([me, member(2, 'preserving', '203.0.113.2')]);
  const [e, ms] = await timed(b.result(12345n, C.MAX_RESULT_WAIT_MS));
  t.is(e, E.EINPROGRESS, 'an unknown connection: not known');
  t.true(ms < SLACK_MS, `${ms} ms`);
  const [acc, ms2] = await timed(b.accepted(80, { ip: '203.0.113.2', port: 50000 }));
  t.is(acc.errno, E.ENOENT);
  t.true(ms2 <= C.ANNOUNCE_WAIT_MS + SLACK_MS, `${ms2} ms: the announcement wait, no more`);
  b.close();
});
