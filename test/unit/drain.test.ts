// Draining (src/vnet/drain.ts) in memory: the services are left first; the drain waits while the program has
// established connections on its listening ports or the punch block (from /proc/net/tcp's text), ends once
// they are gone (not before the settle time), and never outlasts the grace period.
import test from 'ava';
import { countEstablished, drain, type DrainIo } from '../../src/vnet/drain';
import { DRAIN_SETTLE_MS } from '../../src/constants';

const HEAD = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const row = (lport: number, st: string) => `   0: 0100007F:${lport.toString(16).toUpperCase().padStart(4, '0')} 0100007F:C350 ${st} 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 20 4 30 10 -1\n`;

test('countEstablished: established sockets on our ports only', (t) => {
  const text = HEAD + row(8080, '01') + row(8080, '0A') + row(40010, '01') + row(9999, '01') + row(8080, '06');
  t.is(countEstablished(text, (p) => p === 8080 || (p >= 40000 && p <= 40063)), 2);
  t.is(countEstablished('', () => true), 0);
});

function fakeIo(openUntil: number): DrainIo & { calls: string[]; clock: number } {
  const io = {
    calls: [] as string[],
    clock: 0,
    leaveServices: () => io.calls.push(`leave@${io.clock}`),
    ports: () => ({ listening: [8080], punch: [40000, 40063] as [number, number] }),
    procNetTcp: () => HEAD + (io.clock < openUntil ? row(8080, '01') + row(40001, '01') : row(8080, '0A')),
    sleep: async (ms: number) => {
      io.clock += ms;
    },
    now: () => io.clock,
  };
  return io;
}

test('the services are left first; the drain ends when the last connection closed', async (t) => {
  const io = fakeIo(1_300);
  const r = await drain(io, 5_000);
  t.deepEqual(io.calls, ['leave@0']);
  t.is(r.open, 0);
  t.true(r.ms >= 1_300 && r.ms < 1_500, `${r.ms}`);
});

test('no connection: the drain still waits the settle time; the grace period bounds everything', async (t) => {
  t.is((await drain(fakeIo(0), 5_000)).ms, DRAIN_SETTLE_MS);
  const r = await drain(fakeIo(1e9), 2_000);
  t.is(r.ms, 2_000);
  t.is(r.open, 2);
  t.is((await drain(fakeIo(1e9), 100)).ms, 100, 'a grace period below the settle time');
});
