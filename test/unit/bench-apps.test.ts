// The application experiments' parsing and figures in memory (bench/apps.ts): wrk's --latency output, and the
// burst's figures from an nginx access log (first request per function, absorbed, failures by phase, 499s
// from wrk's own end not counted).
import test from 'ava';
import { analyseBurst, parseWrk, readyTimes } from '../../bench/apps';

const WRK = `Running 2s test @ http://198.18.0.3:8000
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    10.12ms    2.10ms  40.00ms   90.00%
  Latency Distribution
     50%    9.50ms
     75%   11.00ms
     90%   13.20ms
     99%    1.20s
  3000 requests in 2.00s, 500.00KB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:   1500.50
Transfer/sec:    250.00KB
`;

test('parseWrk: throughput, percentiles in us, errors', (t) => {
  const r = parseWrk(WRK);
  t.is(r.rps, 1500.5);
  t.is(r.p50Us, 9500);
  t.is(r.p90Us, 13200);
  t.is(r.p99Us, 1.2e6);
  t.is(r.requests, 3000);
  t.is(r.errors, 7);
  t.throws(() => parseWrk('garbage'), { message: /cannot read wrk/ });
});

test('analyseBurst: first request per function, absorbed, failures by phase', (t) => {
  const t0 = 1_000_000;
  const lines: string[] = [];
  const at = (ms: number, status: number, by: string) => lines.push(`${((t0 + ms) / 1000).toFixed(3)} ${status} 100.96.255.254:8080 ${by}`);
  for (let s = 0; s < 10; s++) for (let i = 0; i < 10; i++) at(s * 1000 + i * 100, 200, 'a');
  // f0 starts at 3 s, is ready at 3.5 s, first served at 3.7 s; from 4 s the total is 20/s.
  at(3700, 200, 'f0');
  for (let s = 4; s < 8; s++) for (let i = 0; i < 10; i++) at(s * 1000 + i * 100 + 50, 200, 'f0');
  at(5000, 502, '-');
  at(8500, 502, '-');
  at(9990, 499, '-');
  const r = analyseBurst(lines.join('\n'), { loadStart: t0, joinAt: t0 + 3000, leaveAt: t0 + 8000, end: t0 + 10_000, fns: [{ name: 'f0', startedAt: t0 + 3000, readyAt: t0 + 3500 }], wrkErrors: 2 });
  t.deepEqual(r.firstServedMs, [700]);
  t.deepEqual(r.firstAfterReadyMs, [200]);
  t.is(r.rpsBefore, 10);
  t.is(r.rpsPlateau, 20);
  // The threshold is 19 requests in 1 s (10 + 0.9 x 10): the window (3.9 s, 4.9 s] holds 10 of a and 9 of f0
  // (4.05 ... 4.85 s), the window ending at 4.8 s only 8 of f0.
  t.is(r.absorbedMs, 1900, 'the 1 s window ending 1.9 s after the start reached 90% of the rise');
  t.is(r.failedOut, 1);
  t.is(r.failedIn, 1, 'a 499 at the end of the run is not counted');
  t.deepEqual(r.timeline.slice(2, 6), [[2, 10], [3, 11], [4, 20], [5, 20]]);
});

test("readyTimes: the logic tier's start-up times from its LOGIC_READY line", (t) => {
  t.deepEqual(readyTimes('LOGIC_READY 8080 start=180 load=312 connect=95'), { start: 180, load: 312, connect: 95 });
  const none = readyTimes('LOGIC_READY 8080');
  t.true(Number.isNaN(none.start) && Number.isNaN(none.connect));
});
