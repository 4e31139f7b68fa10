/** The benchmark harness's pure parts (no lab): statistics, the SVG writer, --compare, argument parsing. */
import test from 'ava';
import { ecdf, median, percentile, ratio, summarize } from '../../bench/stats';
import { escapeXml, lineChart, niceTicks } from '../../bench/svg';
import { checkGuards, compareResults, flattenFigures, formatComparison, formatGuards, type CaseResult, type Guard } from '../../bench/results';
import { parseArgs } from '../../bench/index';
import { parseIperf } from '../../bench/network';
import { markdown, ratios } from '../../bench/report';
import { paperFor } from '../../bench/paper';

test('percentiles interpolate between closest ranks', (t) => {
  const xs = [5, 1, 4, 2, 3];
  t.is(median(xs), 3);
  t.is(median([1, 2, 3, 4]), 2.5);
  t.is(percentile(xs, 0), 1);
  t.is(percentile(xs, 100), 5);
  t.is(percentile(xs, 25), 2);
  t.is(percentile([10, 20], 99), 19.9);
  t.true(Number.isNaN(percentile([], 50)));
  t.throws(() => percentile(xs, 101));
});

test('summary: median, spread, p99; input left unsorted', (t) => {
  const xs = [10, 30, 20];
  const s = summarize(xs);
  t.deepEqual(xs, [10, 30, 20]);
  t.is(s.n, 3);
  t.is(s.median, 20);
  t.is(s.mean, 20);
  t.is(s.min, 10);
  t.is(s.max, 30);
  t.is(s.spreadPct, 100);
  t.true(s.p99 > 29 && s.p99 <= 30);
  t.throws(() => summarize([]));
  t.is(ratio(2, 4), 0.5);
  t.is(ratio(1, 0), undefined);
  t.is(ratio(undefined, 1), undefined);
});

test('eCDF points are increasing, end at 1, and are capped', (t) => {
  t.deepEqual(ecdf([3, 1, 2]), [
    [1, 1 / 3],
    [2, 2 / 3],
    [3, 1],
  ]);
  const big = Array.from({ length: 1000 }, (_, i) => 1000 - i);
  const pts = ecdf(big, 50);
  t.is(pts.length, 50);
  t.deepEqual(pts[0], [1, 1 / 1000]);
  t.deepEqual(pts[49], [1000, 1]);
  for (let i = 1; i < pts.length; i++) t.true(pts[i][0] >= pts[i - 1][0] && pts[i][1] > pts[i - 1][1]);
  t.deepEqual(ecdf([]), []);
});

/** A minimal well-formedness check: every tag closed in order, attributes quoted, one root <svg>. */
function wellFormed(svg: string): boolean {
  const stack: string[] = [];
  const tags = svg.match(/<[^>]+>/g) ?? [];
  for (const tag of tags) {
    if (tag.startsWith('<?') || tag.startsWith('<!--')) continue;
    const close = /^<\/([\w:-]+)\s*>$/.exec(tag);
    if (close) {
      if (stack.pop() !== close[1]) return false;
      continue;
    }
    const open = /^<([\w:-]+)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>$/.exec(tag);
    if (!open) return false;
    if (!open[3]) stack.push(open[1]);
    if (stack.length === 0 && open[1] !== 'svg' && !open[3]) return false;
  }
  const text = svg.replace(/<[^>]+>/g, '');
  return stack.length === 0 && !/&(?!(amp|lt|gt|quot|apos);)/.test(text) && svg.trimStart().startsWith('<svg');
}

test('SVG writer: well-formed, one polyline per series, names escaped', (t) => {
  const series = [
    { name: 'vm-to-vm native', points: ecdf([100, 200, 300, 250]) },
    { name: 'a <b> & "c"', points: ecdf([150, 400]) },
    { name: 'empty', points: [] as [number, number][] },
  ];
  const svg = lineChart(series, { title: 'RTT & <more>', xLabel: 'us', yLabel: 'fraction', logX: true, step: true, yRange: [0, 1] });
  t.true(wellFormed(svg), svg.slice(0, 400));
  t.is((svg.match(/<polyline class="series"/g) ?? []).length, 3);
  t.true(svg.includes('a &lt;b&gt; &amp; &quot;c&quot;'));
  t.true(svg.includes('xmlns="http://www.w3.org/2000/svg"'));
  t.false(/NaN|Infinity/.test(svg));
  const none = lineChart([], { title: 't', xLabel: 'x', yLabel: 'y' });
  t.true(wellFormed(none));
  t.is((none.match(/class="series"/g) ?? []).length, 0);
  const flat = lineChart([{ name: 'one', points: [[1, 5]] }], { title: 't', xLabel: 'x', yLabel: 'y', markers: true });
  t.true(wellFormed(flat));
  t.false(/NaN|Infinity/.test(flat));
  // Vertical marks widen the x range to include them (the paper's 39 s beside a 25 s run) and are labelled.
  const marked = lineChart([{ name: 'rps', points: [[0, 10], [25, 50]] }], { title: 't', xLabel: 's', yLabel: 'r', vlines: [{ x: 5, label: 'start' }, { x: 44, label: 'paper <39 s>' }, { x: NaN, label: 'none' }] });
  t.true(wellFormed(marked));
  t.is((marked.match(/class="vline"/g) ?? []).length, 2);
  t.true(marked.includes('paper &lt;39 s&gt;'));
  t.true(marked.includes('>40<'), 'the x axis reaches the last mark');
  t.false(/NaN|Infinity/.test(marked));
  t.is(escapeXml(`'&`), '&apos;&amp;');
  t.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
});

function measured(median: number, ecdfPts = false) {
  return { status: 'measured' as const, summary: summarize([median * 0.9, median, median * 1.1]), over: '3 runs', ...(ecdfPts ? { ecdf: ecdf([median]) } : {}) };
}

const OLD: CaseResult[] = [
  { id: 'throughput/vm-to-vm/forward', group: 'throughput', title: 'x', unit: 'Mbit/s', better: 'higher', native: measured(1000), boxer: { status: 'not measured', reason: 'no data path' } },
  { id: 'rtt/vm-to-vm', group: 'rtt', title: 'x', unit: 'us', better: 'lower', native: measured(100, true) },
  { id: 'cost/package', group: 'cost', title: 'x', unit: 'MB', better: 'lower', boxer: measured(1.2) },
];
const NEW: CaseResult[] = [
  { ...OLD[0], native: measured(1200), boxer: measured(1100) },
  { ...OLD[1], native: measured(102, true) },
];

test('--compare: per-figure change with better/worse by direction, added and removed figures', (t) => {
  const figs = flattenFigures({ cases: OLD });
  t.deepEqual([...figs.keys()], ['throughput/vm-to-vm/forward native median', 'rtt/vm-to-vm native median', 'rtt/vm-to-vm native p99', 'cost/package boxer median']);
  const rows = compareResults({ cases: OLD }, { cases: NEW });
  const by = new Map(rows.map((r) => [r.key, r]));
  t.is(by.get('throughput/vm-to-vm/forward native median')!.verdict, 'better');
  t.is(Math.round(by.get('throughput/vm-to-vm/forward native median')!.changePct!), 20);
  t.is(by.get('rtt/vm-to-vm native median')!.verdict, 'same');
  t.is(by.get('throughput/vm-to-vm/forward boxer median')!.verdict, 'added');
  t.is(by.get('cost/package boxer median')!.verdict, 'removed');
  const worse = compareResults({ cases: [OLD[1]] }, { cases: [{ ...OLD[1], native: measured(150, true) }] });
  t.is(worse[0].verdict, 'worse');
  const text = formatComparison(rows);
  t.regex(text, /throughput\/vm-to-vm\/forward native median\s+1000\s+1200\s+Mbit\/s\s+\+20\.0% better/);
  t.regex(text, /figures: 1 better, 0 worse/);
});

test('--compare guards: an absolute bound, a bound over the native variant, and figures not measured', (t) => {
  const guards: Guard[] = [
    { id: 'ttfb/a', stat: 'median', max: 800, target: 't' },
    { id: 'ttfb/b', stat: 'median', max: 100, overNative: true, target: 't' },
    { id: 'ttfb/c', stat: 'median', max: 1, target: 't' },
  ];
  const ttfb = (id: string, boxer: number, native?: number): CaseResult => ({ id, group: 'ttfb', title: 'x', unit: 'us', better: 'lower', boxer: measured(boxer), ...(native ? { native: measured(native) } : {}) });
  const ok = checkGuards({ cases: [ttfb('ttfb/a', 700), ttfb('ttfb/b', 240, 150)] }, guards);
  t.deepEqual(
    ok.map((x) => x.ok),
    [true, true, undefined],
  );
  t.is(ok[1].limit, 250);
  const bad = checkGuards({ cases: [ttfb('ttfb/a', 900), ttfb('ttfb/b', 260, 150), ttfb('ttfb/c', 5)] }, guards);
  t.deepEqual(
    bad.map((x) => x.ok),
    [false, false, false],
  );
  t.regex(formatGuards(bad), /3 guard\(s\) broken/);
  t.regex(formatGuards(ok), /ttfb\/c boxer median\s+not measured/);
});

test('ratios: against the own native variant, else each baseline; never from an unmeasured figure', (t) => {
  const cases: CaseResult[] = [
    { ...NEW[0] },
    { id: 'throughput/fn-to-vm/forward', group: 'throughput', title: 'y', unit: 'Mbit/s', better: 'higher', native: measured(500) },
    { id: 'throughput/fn-to-fn/forward', group: 'throughput', title: 'z', unit: 'Mbit/s', better: 'higher', boxer: measured(250), baselines: ['throughput/fn-to-vm/forward', 'throughput/vm-to-vm/forward'] },
    { ...OLD[0] },
  ];
  const byId = new Map(cases.map((c) => [c.id, c]));
  t.is(ratios(cases[0], byId), '0.92×');
  t.is(ratios(cases[2], byId), '0.50× vs fn-to-vm native; 0.25× vs vm-to-vm native');
  t.is(ratios(cases[3], byId), '–');
  const md = markdown({ version: 1, date: 'd', quick: true, durationS: 1, machine: { cpu: 'c', cores: 2, kernel: 'k', node: 'v20', memGiB: 1, hostname: 'h' }, boxerDataPath: { available: false, reason: 'r' }, cases: OLD }, []);
  t.regex(md, /not measured \[1\][\s\S]*- \[1\] 1 figure\(s\): no data path/);
  t.regex(md, /mean 4770, median|mean 4770/);
  t.is(paperFor('ttfb/vm-to-vm')?.native?.mean, 407.81);
  t.is(paperFor('ttfb/vm-to-vm')?.boxer?.mean, 1067.24);
  t.is(paperFor('rtt/vm-to-vm')?.native?.mean, 197.62);
});

test('arguments and iperf3 output', (t) => {
  t.deepEqual({ ...parseArgs(['--quick', '--compare', 'old.json', '--no-docs']), out: '' }, { quick: true, compare: 'old.json', out: '', docs: false, only: [] });
  t.true(parseArgs(['--out=/tmp/x.json']).out.endsWith('/tmp/x.json'));
  t.throws(() => parseArgs(['--bogus']));
  t.throws(() => parseArgs(['--compare']));
  t.is(parseIperf('noise\n{"end":{"sum_received":{"bits_per_second":2.5e9}}}'), 2500);
  t.throws(() => parseIperf('{"error":"unable to connect"}'), { message: /unable to connect/ });
});
