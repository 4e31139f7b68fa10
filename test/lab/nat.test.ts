/**
 * The lab's NAT kinds behave as docs/lab.md says, checked with plain sockets (no Boxer) in the default
 * topology: outbound works, unsolicited inbound is dropped, mappings are preserved / randomized / translated,
 * isolation and the lan path, hairpinning, TCP simultaneous open across two NATs, and the knobs.
 * Each test uses its own server port so that concurrent tests do not see each other's connections.
 */

import { labTest } from './helpers';
import { background, DROP_WAIT_S, peers, probe } from './probes';
import { TRANSLATE_XOR } from '../../overlay';

const lt = labTest();

const FUNCTIONS = ['fp', 'fsa', 'fsb', 'fr', 'fta', 'ftb', 'fla', 'flb'];
/** Connect timeout where the connection must succeed (veth: microseconds; the machine may be busy). */
const CONNECT_S = 5;
/** Lifetime of a server probe: longer than any test using it; stopped as soon as the test is done. */
const SERVE_S = 20;
/** Bound on a quick command (id, tc show) run with lab.exec. */
const EXEC_MS = 5000;
/** How long a hairpin probe holds its mapping open and waits for the neighbour. */
const HAIRPIN_HOLD_S = 5;
/** Delay before a server writes on a connection that must still be mapped (well under IDLE_S). */
const EARLY_WRITE_S = 0.5;
/** Connections each translated function opens at once: enough to see two blocks side by side. */
const PER_FUNCTION = 20;

lt.test('outbound works from every function, seen as its gateway address', async (t, lab) => {
  const seed = lab.node('seed');
  const srv = background(lab, 'seed', 'serve', [7001, SERVE_S]);
  await srv.ready;
  const results = await Promise.all(FUNCTIONS.map((fn) => probe(lab, fn, 'connect', [seed.address, 7001, CONNECT_S])));
  results.forEach((lines, i) => t.regex(lines[0], /^ok /, `${FUNCTIONS[i]}: ${lines.join(' | ')}`));
  const seen = peers(await srv.stop()).map((p) => p.address).sort();
  t.deepEqual(seen, FUNCTIONS.map((fn) => lab.node(fn).publicAddress).sort());
});

lt.test('unsolicited inbound to a function is dropped on every NAT kind', async (t, lab) => {
  await Promise.all(
    FUNCTIONS.map(async (fn) => {
      const n = lab.node(fn);
      const port = n.portRange!.low + 100;
      const srv = background(lab, fn, 'serve', [port, SERVE_S]);
      await srv.ready;
      const publicPort = lab.publicPort(fn, port) ?? port;
      const r = await probe(lab, 'seed', 'connect', [n.publicAddress, publicPort, DROP_WAIT_S]);
      t.deepEqual(r, ['timeout'], `${fn}: seed -> ${n.publicAddress}:${publicPort} must be dropped silently`);
      t.deepEqual(peers(await srv.stop()), [], `${fn} must not have been reached`);
    }),
  );
});

lt.test('a mapping only admits the destination it was opened to (stateful filtering)', async (t, lab) => {
  const seed = lab.node('seed');
  const srv = background(lab, 'seed', 'serve', [7002, SERVE_S]);
  await srv.ready;
  for (const fn of ['fp', 'fta']) {
    const n = lab.node(fn);
    const lport = n.portRange!.low + 150;
    const hold = background(lab, fn, 'hairpin', [lport, seed.address, 7002, HAIRPIN_HOLD_S]); // opens the mapping, listens
    await hold.ready;
    const r = await probe(lab, 'vm1', 'connect', [n.publicAddress, lab.publicPort(fn, lport)!, DROP_WAIT_S]);
    t.deepEqual(r, ['timeout'], `${fn}: vm1 must not get through a mapping opened toward seed`);
    t.deepEqual(peers(await hold.stop()), [], `${fn} must not have been reached`);
  }
  await srv.stop();
});

lt.test('preserving: the public port is the local port', async (t, lab) => {
  const seed = lab.node('seed');
  const srv = background(lab, 'seed', 'serve', [7003, SERVE_S]);
  await srv.ready;
  const fns = ['fp', 'fsa', 'fsb', 'fla', 'flb'];
  const lports = fns.map((fn) => lab.node(fn).portRange!.low + 200);
  const res = await Promise.all(fns.map((fn, i) => probe(lab, fn, 'connect', [seed.address, 7003, CONNECT_S, lports[i]])));
  res.forEach((r, i) => t.regex(r[0], /^ok /, fns[i]));
  const seen = peers(await srv.stop());
  for (const [i, fn] of fns.entries())
    t.true(seen.some((p) => p.address === lab.node(fn).publicAddress && p.port === lports[i]), `${fn} seen as ${lab.node(fn).publicAddress}:${lports[i]}: ${JSON.stringify(seen)}`);
});

lt.test('random: one local port gets a different public port per destination', async (t, lab) => {
  const [seed, vm1] = [lab.node('seed'), lab.node('vm1')];
  const s1 = background(lab, 'seed', 'serve', [7004, SERVE_S]);
  const s2 = background(lab, 'vm1', 'serve', [7004, SERVE_S]);
  await Promise.all([s1.ready, s2.ready]);
  const lport = lab.node('fr').portRange!.low + 300;
  const r = await probe(lab, 'fr', 'twin', [lport, CONNECT_S, seed.address, 7004, vm1.address, 7004]);
  t.is(r.filter((l) => l.startsWith('ok ')).length, 2, r.join(' | '));
  const [a, b] = [peers(await s1.stop()), peers(await s2.stop())];
  t.is(a.length, 1);
  t.is(b.length, 1);
  t.is(a[0].address, lab.node('rand').address);
  t.not(a[0].port, b[0].port, `both destinations saw port ${a[0].port}: the mapping is not per connection`);
  t.is(lab.publicPort('fr', lport), undefined, 'a random NAT has no predictable public port');
});

lt.test('translating: ports map by XOR 0x8000 and two functions on one address never collide', async (t, lab) => {
  const seed = lab.node('seed');
  const srv = background(lab, 'seed', 'serve', [7005, SERVE_S]);
  await srv.ready;
  const fta = lab.node('fta');
  const lport = fta.portRange!.low + 400;
  t.regex((await probe(lab, 'fta', 'connect', [seed.address, 7005, CONNECT_S, lport]))[0], /^ok /);
  const [ra, rb] = await Promise.all(['fta', 'ftb'].map((fn) => probe(lab, fn, 'multi', [seed.address, 7005, PER_FUNCTION, CONNECT_S])));
  t.is(ra.filter((l) => l.startsWith('ok ')).length, PER_FUNCTION);
  t.is(rb.filter((l) => l.startsWith('ok ')).length, PER_FUNCTION);
  const seen = peers(await srv.stop());
  t.true(seen.every((p) => p.address === fta.publicAddress), 'both functions share the gateway address');
  t.true(seen.some((p) => p.port === (lport ^ TRANSLATE_XOR)), `local ${lport} must appear as ${lport ^ TRANSLATE_XOR}`);
  t.is(lab.publicPort('fta', lport), lport ^ TRANSLATE_XOR);
  const ports = seen.map((p) => p.port);
  t.is(new Set(ports).size, ports.length, 'no two connections share a public port');
  // Each function's connections appear in the XOR image of its own block, so they can never collide.
  for (const [fn, lines] of [['fta', ra], ['ftb', rb]] as const) {
    const range = lab.node(fn).portRange!;
    for (const l of lines.filter((x) => x.startsWith('ok '))) {
      const local = Number(l.split(' ')[2]);
      t.true(local >= range.low && local <= range.high, `${fn} local port ${local} in its block`);
      t.true(ports.includes(local ^ TRANSLATE_XOR), `${fn}:${local} seen as ${local ^ TRANSLATE_XOR}`);
    }
  }
});

lt.test('functions behind one isolated gateway cannot reach each other privately; lan ones can', async (t, lab) => {
  const port = 7006;
  const b = background(lab, 'fsb', 'serve', [port, SERVE_S]);
  const lb = background(lab, 'flb', 'serve', [port, SERVE_S]);
  await Promise.all([b.ready, lb.ready]);
  const [isolated, lan] = await Promise.all([
    probe(lab, 'fsa', 'connect', [lab.node('fsb').address, port, DROP_WAIT_S]),
    probe(lab, 'fla', 'connect', [lab.node('flb').address, port, CONNECT_S]),
  ]);
  t.notRegex(isolated[0], /^ok /, `fsa reached fsb privately: ${isolated.join(' | ')}`);
  t.regex(lan[0], /^ok /, `fla could not reach flb: ${lan.join(' | ')}`);
  t.deepEqual(peers(await b.stop()), []);
  t.is(peers(await lb.stop())[0]?.address, lab.node('fla').address, 'on a lan, the peer is seen by its private address');
});

lt.test('hairpin: a function reaches a neighbour through the shared public address where enabled', async (t, lab) => {
  const seed = lab.node('seed');
  const srv = background(lab, 'seed', 'serve', [7007, SERVE_S]);
  await srv.ready;
  // share has hairpin: fsb opens a mapping from port L, fsa connects to share's address at L.
  const share = lab.node('share');
  const l = lab.node('fsb').portRange!.low + 500;
  const hp = background(lab, 'fsb', 'hairpin', [l, seed.address, 7007, HAIRPIN_HOLD_S]);
  await hp.ready;
  const r = await probe(lab, 'fsa', 'connect', [share.address, l, CONNECT_S]);
  t.regex(r[0], /^ok /, `fsa -> ${share.address}:${l}: ${r.join(' | ')}`);
  const fsaPort = Number(r[0].split(' ')[2]);
  const got = peers(await hp.done);
  t.deepEqual(got, [{ address: share.address, port: fsaPort }], 'the neighbour is seen by its public mapping');
  // lan has no hairpin: the same attempt is dropped.
  const lanGw = lab.node('lan');
  const l2 = lab.node('flb').portRange!.low + 500;
  const hp2 = background(lab, 'flb', 'hairpin', [l2, seed.address, 7007, HAIRPIN_HOLD_S]);
  await hp2.ready;
  const r2 = await probe(lab, 'fla', 'connect', [lanGw.address, l2, DROP_WAIT_S]);
  t.notRegex(r2[0], /^ok /, 'no hairpin on the lan gateway');
  await hp2.stop();
  await srv.stop();
});

lt.test('TCP simultaneous open works between functions behind two different NATs', async (t, lab) => {
  const pairs: [string, string][] = [
    ['fp', 'fta'], // preserving <-> translating
    ['fsa', 'fla'], // preserving (shared) <-> preserving (lan)
  ];
  for (const [a, b] of pairs) {
    const [na, nb] = [lab.node(a), lab.node(b)];
    const [pa, pb] = [na.portRange!.low + 600, nb.portRange!.low + 600];
    const [ra, rb] = await Promise.all([
      probe(lab, a, 'simopen', [pa, nb.publicAddress, lab.publicPort(b, pb)!, CONNECT_S, `hello-from-${a}`]),
      probe(lab, b, 'simopen', [pb, na.publicAddress, lab.publicPort(a, pa)!, CONNECT_S, `hello-from-${b}`]),
    ]);
    t.deepEqual(ra.slice(-1), [`got hello-from-${b}`], `${a}: ${ra.join(' | ')}`);
    t.deepEqual(rb.slice(-1), [`got hello-from-${a}`], `${b}: ${rb.join(' | ')}`);
  }
});

/** Idle timeout for the knob test, and how long past it the server waits before writing. */
const IDLE_S = 2;
const IDLE_WRITE_AFTER_S = IDLE_S + 2;

lt.serial('idle timeout knob: a mapping idle longer than it is gone, a busier one survives', async (t, lab) => {
  const seed = lab.node('seed');
  await lab.setIdleTimeout('pres', IDLE_S);
  try {
    t.is(lab.knobs('pres').idleTimeout, IDLE_S);
    const quick = background(lab, 'seed', 'serve', [7009, SERVE_S, EARLY_WRITE_S]);
    const late = background(lab, 'seed', 'serve', [7010, SERVE_S, IDLE_WRITE_AFTER_S]);
    await Promise.all([quick.ready, late.ready]);
    const [rq, rl] = await Promise.all([
      probe(lab, 'fp', 'connect', [seed.address, 7009, CONNECT_S, '-', CONNECT_S]),
      probe(lab, 'fp', 'connect', [seed.address, 7010, CONNECT_S, '-', IDLE_WRITE_AFTER_S + 2]),
    ]);
    t.deepEqual(rq.slice(1), ['data'], `written before the timeout: delivered: ${rq.join(' | ')}`);
    t.deepEqual(rl.slice(1), ['nodata'], 'written after the mapping expired: dropped');
    await Promise.all([quick.stop(), late.stop()]);
  } finally {
    await lab.setIdleTimeout('pres', null);
  }
  t.is(lab.knobs('pres').idleTimeout, undefined);
});

lt.serial('loss and rate knobs apply at run time', async (t, lab) => {
  const seed = lab.node('seed');
  const srv = background(lab, 'seed', 'serve', [7011, SERVE_S]);
  await srv.ready;
  try {
    await lab.setLoss('rand', 100);
    t.deepEqual(await probe(lab, 'fr', 'connect', [seed.address, 7011, DROP_WAIT_S]), ['timeout'], '100% loss');
    await lab.setLoss('rand', 0);
    t.regex((await probe(lab, 'fr', 'connect', [seed.address, 7011, CONNECT_S]))[0], /^ok /, 'loss off');
    await lab.setRate('rand', '1mbit');
    const q = await lab.exec('rand', 'tc', ['qdisc', 'show', 'dev', 'wan'], { timeoutMs: EXEC_MS });
    t.regex(q.stdout, /tbf .*rate 1Mbit/);
    await lab.setRate('rand', null);
    const q2 = await lab.exec('rand', 'tc', ['qdisc', 'show', 'dev', 'wan'], { timeoutMs: EXEC_MS });
    t.notRegex(q2.stdout, /tbf/);
  } finally {
    await lab.setLoss('rand', 0);
    await lab.setRate('rand', null);
    await srv.stop();
  }
});

lt.test('spawned processes run as boxerfn with their own HOME and TMPDIR; gateways as root', async (t, lab) => {
  const fp = lab.node('fp');
  const r = await lab.exec('fp', 'sh', ['-c', 'id -un; echo "$HOME $TMPDIR"; touch "$TMPDIR/x" && echo writable'], { timeoutMs: EXEC_MS });
  t.deepEqual(r.stdout.trim().split('\n'), ['boxerfn', `${fp.tmpdir} ${fp.tmpdir}`, 'writable']);
  const g = await lab.exec('pres', 'id', ['-un'], { timeoutMs: EXEC_MS });
  t.is(g.stdout.trim(), 'root');
  const hung = await lab.exec('seed', 'sleep', ['10'], { timeoutMs: 200 }); // killed long before it ends
  t.true(hung.timedOut);
});
