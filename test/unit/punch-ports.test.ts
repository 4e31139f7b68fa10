// The punch-port block (src/vnet/ports.ts), with in-memory sockets: a block of consecutive free ports is found
// past ports that cannot be shared (TIME_WAIT of sockets without SO_REUSEADDR), wrapping around the range; a
// range with no such block gives null within the bind budget, with every socket closed.
import test from 'ava';
import { PunchPorts } from '../../src/vnet/ports';
import { PUNCH_BLOCK_SIZE, PUNCH_SCAN_BINDS } from '../../src/constants';

function fakeOps(busy: (port: number) => boolean) {
  let next = 1;
  const open = new Set<number>();
  const bound = new Map<number, number>();
  let binds = 0;
  return {
    open,
    bound,
    get binds() {
      return binds;
    },
    tcpSocket: () => {
      open.add(next);
      return next++;
    },
    bind: (fd: number, _ip: string, port: number) => {
      binds++;
      if (busy(port)) throw Object.assign(new Error(`bind ${port}: EADDRINUSE`), { code: 'EADDRINUSE' });
      bound.set(fd, port);
    },
    close: (fd: number) => {
      open.delete(fd);
      bound.delete(fd);
    },
  };
}

test('finds a free block past busy ports; holds exactly its sockets, released on close()', (t) => {
  // Every 50th port busy: no run of 64 anywhere ... except one gap made at 20000-20199.
  const busy = (p: number) => p % 50 === 0 && !(p >= 20000 && p < 20200);
  const ops = fakeOps(busy);
  for (let i = 0; i < 20; i++) {
    const pp = PunchPorts.reserve(ops, [18000, 21000]); // the scan wraps around to reach the gap
    t.truthy(pp);
    const [a, b] = pp!.range;
    t.is(b - a + 1, PUNCH_BLOCK_SIZE);
    t.true(a > 19950 && b < 20250, `block ${a}-${b}`);
    for (let p = a; p <= b; p++) t.false(busy(p));
    t.is(ops.open.size, PUNCH_BLOCK_SIZE, 'only the block is held');
    t.deepEqual([...ops.bound.values()].sort((x, y) => x - y), Array.from({ length: PUNCH_BLOCK_SIZE }, (_, k) => a + k));
    pp!.close();
    t.is(ops.open.size, 0);
  }
});

test('a range smaller than a block is taken whole; no block at all gives null, bounded, nothing left open', (t) => {
  const small = fakeOps(() => false);
  t.deepEqual(PunchPorts.reserve(small, [5000, 5009])!.range, [5000, 5009]);
  const none = fakeOps((p) => p % 10 === 0);
  t.is(PunchPorts.reserve(none, [1000, 60000]), null);
  t.true(none.binds <= PUNCH_SCAN_BINDS);
  t.is(none.open.size, 0);
});
