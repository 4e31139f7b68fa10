/**
 * The benchmark plan's pure parts (no lab): where quick and --only runs write, --only selection, the
 * aggregate case's port spreading, sh scripts and socket counting, the quick config's coverage.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { FULL_RESULTS, parseArgs, PARTIAL_RESULTS, QUICK_RESULTS, USAGE } from '../../bench/index';
import { Bench, config, selected } from '../../bench/cases';
import { AGG_CONNECT_TRIES, aggClientScript, aggServerScript, countIperfSockets, spreadPorts } from '../../bench/aggregate';
import { markdown } from '../../bench/report';
import { Runner } from '../../bench/runner';
import type { Lab } from '../../overlay';

test('a full run writes the committed results and docs; quick and --only runs write elsewhere, docs only if asked', (t) => {
  t.deepEqual(parseArgs([]), { quick: false, out: FULL_RESULTS, docs: true, only: [] });
  t.deepEqual(parseArgs(['--', '--quick']), { quick: true, out: QUICK_RESULTS, docs: false, only: [] });
  t.true(parseArgs(['--quick', '--docs']).docs);
  t.false(parseArgs(['--no-docs']).docs);
  t.deepEqual(parseArgs(['--only', 'aggregate']), { quick: false, out: PARTIAL_RESULTS, docs: false, only: ['aggregate'] });
  t.is(parseArgs(['--quick', '--only', 'cost']).out, QUICK_RESULTS);
  t.is(parseArgs(['--quick', '--out', '/tmp/q.json']).out, '/tmp/q.json');
  t.throws(() => parseArgs(['--quick', '--out', FULL_RESULTS]), { message: /full run's results/ });
  t.throws(() => parseArgs(['--only=rtt', `--out=${path.relative(process.cwd(), FULL_RESULTS)}`]), { message: /full run's results/ });
  t.throws(() => parseArgs(['--only', 'rtt', '--docs']), { message: /without the other cases/ });
  for (const f of [QUICK_RESULTS, PARTIAL_RESULTS]) t.is(path.dirname(f), path.dirname(FULL_RESULTS));
});

test('--only: repeatable, comma-separated, never empty; documented in the usage', (t) => {
  t.deepEqual(parseArgs(['--only', 'aggregate,cost/setup-cpu', '--only=rtt']).only, ['aggregate', 'cost/setup-cpu', 'rtt']);
  t.deepEqual(parseArgs(['--only', ' throughput vm-to-vm ']).only, ['throughput vm-to-vm']);
  t.throws(() => parseArgs(['--only']), { message: /needs a value/ });
  t.throws(() => parseArgs(['--only', ',']), { message: /needs a prefix/ });
  t.throws(() => parseArgs(['--help']), { message: /--only PREFIX/ });
  for (const flag of ['--quick', '--only', '--out', '--docs', '--no-docs', '--compare']) t.true(USAGE.includes(flag), flag);
});

test('selected: a prefix of any key; nothing given selects everything', (t) => {
  const keys = ['aggregate', 'aggregate/32', 'aggregate 32 senders boxer, rep 1/1'];
  t.true(selected(undefined, keys));
  t.true(selected([], keys));
  t.true(selected(['aggregate'], keys));
  t.true(selected(['aggregate/3'], keys));
  t.true(selected(['rtt', 'aggregate 32'], keys));
  t.false(selected(['aggregate/1'], keys));
  t.false(selected(['cost'], keys));
});

/** A runner that must not be used to run anything: plan() only builds closures. */
function planOnly(quick: boolean, only: string[] = [], available = true): Bench {
  const b = new Bench(config(quick), new Runner({} as Lab), { available, reason: available ? 'probe ok' : 'no shim' }, only);
  b.plan();
  return b;
}

test('quick mode keeps at least one task of every group, and is smaller than the full run', (t) => {
  const quick = planOnly(true);
  const full = planOnly(false);
  const groups = new Set(quick.tasks.map((x) => x.group));
  for (const g of ['throughput', 'rtt', 'ttfb', 'aggregate', 'membership', 'cost']) t.true(groups.has(g), g);
  // connect() latency needs native/out/connect_latency: when built, quick mode runs it too.
  if (full.tasks.some((x) => x.group === 'connect')) t.true(groups.has('connect'));
  t.true(quick.tasks.length < full.tasks.length);
  t.true(quick.tasks.some((x) => x.ids.includes('cost/setup-cpu/fn-to-fn/server')));
  t.true(quick.tasks.some((x) => x.ids.some((id) => id.endsWith('/reverse'))), 'one reverse throughput case');
  const labels = new Set(full.tasks.map((x) => x.label));
  t.is(labels.size, full.tasks.length, 'progress labels are unique');
  t.deepEqual(config(false).joinSizes.slice(-3), [64, 256, 1000], "the barrier figures of issue 15");
});

test('--only keeps the selected tasks and reports only their cases', (t) => {
  const b = planOnly(true, ['aggregate']);
  t.true(b.tasks.length > 0);
  t.true(b.tasks.every((x) => x.group === 'aggregate'));
  t.true(b.finish().every((c) => c.group === 'aggregate'));
  const s = planOnly(false, ['cost/setup-cpu']);
  t.deepEqual([...new Set(s.tasks.flatMap((x) => x.ids))].sort(), ['cost/setup-cpu/fn-to-fn/client', 'cost/setup-cpu/fn-to-fn/server', 'cost/setup-cpu/vm-to-vm/client', 'cost/setup-cpu/vm-to-vm/server']);
  t.is(planOnly(true, ['nothing-like-this']).tasks.length, 0);
  // Without the Boxer data path the setup-CPU cases are placeholders: no task, but a reason in the results.
  const off = planOnly(true, ['cost/setup-cpu'], false);
  t.is(off.tasks.length, 0);
  t.true(off.finish().every((c) => c.boxer?.status === 'not measured' && /no shim/.test(c.boxer.reason)));
});

test('spreadPorts: round-robin over the senders, only senders with ports', (t) => {
  t.deepEqual([...spreadPorts([1], ['a', 'b'])], [['a', [1]]]);
  t.deepEqual([...spreadPorts([1, 2, 3, 4, 5], ['a', 'b'])], [
    ['a', [1, 3, 5]],
    ['b', [2, 4]],
  ]);
  const big = spreadPorts(Array.from({ length: 32 }, (_, i) => i), ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
  t.is(big.size, 7);
  t.is([...big.values()].flat().length, 32);
  t.true([...big.values()].every((ps) => ps.length === 4 || ps.length === 5));
  t.throws(() => spreadPorts([1], []));
});

test('aggregate scripts: valid sh, one server/client per port, bounded retries', (t) => {
  const srv = aggServerScript([20001, 20002, 20003]);
  t.is((srv.match(/iperf3 -s -1 -p \d+/g) ?? []).length, 3);
  t.regex(srv, /\nwait$/);
  const cli = aggClientScript([20001, 20002], 9.2);
  t.is((cli.match(/^c \d+ &/gm) ?? []).length, 2);
  t.true(cli.includes(`-lt ${AGG_CONNECT_TRIES}`));
  t.true(cli.includes('-t 10 '), 'whole seconds, rounded up');
  for (const s of [srv, `H=198.18.0.3\n${cli}`]) t.notThrows(() => execFileSync('sh', ['-n', '-c', s]));
});

test('aggregate client script: retries a refused connect, reports other failures, exits non-zero', (t) => {
  // A fake iperf3 first in PATH: refused twice, then succeeds (a counter file); "other" fails at once.
  const dir = execFileSync('mktemp', ['-d']).toString().trim();
  try {
    execFileSync('sh', ['-c', `cat > ${dir}/iperf3 <<'X'
#!/bin/sh
case "$*" in *"-p 1 "*) n=$(cat ${dir}/n 2>/dev/null || echo 0); echo $((n + 1)) > ${dir}/n
  [ "$n" -ge 2 ] && exit 0; echo "iperf3: error - unable to connect to server: Connection refused" >&2; exit 1 ;; esac
echo "iperf3: error - something else" >&2; exit 1
X
chmod +x ${dir}/iperf3`]);
    const env = { ...process.env, PATH: `${dir}:${process.env.PATH}`, H: 'h' };
    const script = aggClientScript([1], 1).replace(/sleep [\d.]+/, 'sleep 0');
    t.notThrows(() => execFileSync('sh', ['-c', script], { env, stdio: 'pipe' }));
    t.is(execFileSync('cat', [`${dir}/n`]).toString().trim(), '3');
    const err = t.throws(() => execFileSync('sh', ['-c', aggClientScript([2], 1)], { env, stdio: 'pipe' }));
    t.regex(String((err as { stderr?: Buffer }).stderr), /-p 2: iperf3: error - something else/);
  } finally {
    execFileSync('rm', ['-rf', dir]);
  }
});

test('countIperfSockets counts sockets an iperf3 process holds, alone or shared', (t) => {
  const ss = [
    'ESTAB 0 0 198.18.0.3:20001 10.1.0.2:40000 users:(("iperf3",pid=10,fd=4))',
    'ESTAB 0 0 198.18.0.3:20001 10.1.0.2:40002 users:(("iperf3",pid=10,fd=5))',
    'ESTAB 0 0 100.96.0.2:41000 198.18.1.2:41000 users:(("node",pid=7,fd=30),("iperf3",pid=11,fd=5))',
    'ESTAB 0 0 198.18.1.1:7070 198.18.0.2:7070 users:(("node",pid=7,fd=21))',
    'ESTAB 0 0 198.18.1.1:7071 198.18.0.2:7071 users:(("iperf3x",pid=9,fd=3))',
    '',
  ].join('\n');
  t.is(countIperfSockets(ss), 3);
  t.is(countIperfSockets(''), 0);
});

test('nextPorts: consecutive, disjoint from nextPort, wraps before the top of the range', (t) => {
  const r = new Runner({} as Lab);
  const a = r.nextPorts(3);
  t.deepEqual(a, [a[0], a[0] + 1, a[0] + 2]);
  t.is(r.nextPort(), a[2] + 1);
  for (let i = 0; i < 2000; i++) {
    const ps = r.nextPorts(32);
    t.true(ps[0] >= 20000 && ps[31] <= 60000 && ps[31] - ps[0] === 31);
  }
  t.throws(() => r.nextPorts(0));
});

test('the page links the results file it was made from and says how a partial run was asked for', (t) => {
  const r = { version: 1 as const, date: 'd', quick: true, only: ['aggregate'], durationS: 1, machine: { cpu: 'c', cores: 2, kernel: 'k', node: 'v20', memGiB: 1, hostname: 'h' }, boxerDataPath: { available: true, reason: 'r' }, cases: [] };
  const md = markdown(r, [], '../bench/results-quick.json');
  t.true(md.includes('`npm run bench -- --quick --only aggregate`'));
  t.true(md.includes('[bench/results-quick.json](../bench/results-quick.json)'));
  t.true(markdown({ ...r, quick: false, only: undefined }, []).includes('[bench/results.json](../bench/results.json)'));
  t.regex(md, /--only aggregate .*results-partial\.json/s);
});
