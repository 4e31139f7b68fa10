/** docs/benchmarks.md and docs/bench/*.svg from a Results. */
import type { CaseResult, Measured, Results, Variant } from './results';
import { PAPER_AGGREGATE, PAPER_BURST, PAPER_STATIC, PAPER_FN_TO_FN_TTFB_P999_US, paperFor, type PaperFigure } from './paper';
import { ratio } from './stats';
import { lineChart, type Series } from './svg';

export function num(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

const measured = (v?: Variant): v is Measured => v?.status === 'measured';

/** Reasons for "not measured", numbered in order of appearance and listed under "Not measured yet". */
let REASONS = new Map<string, number>();

function cell(v: Variant | undefined, withP99 = false): string {
  if (!v) return 'n/a';
  if (!measured(v)) {
    if (!REASONS.has(v.reason)) REASONS.set(v.reason, REASONS.size + 1);
    return `not measured [${REASONS.get(v.reason)}]`;
  }
  const s = v.summary;
  const spread = Number.isFinite(s.min) && Number.isFinite(s.max) ? ` (${num(s.min)}–${num(s.max)})` : '';
  return withP99 ? `${num(s.median)} / ${num(s.p99)}` : `${num(s.median)}${spread}`;
}

function paperCell(f?: PaperFigure): string {
  if (!f) return '–';
  return [f.mean !== undefined ? `mean ${num(f.mean)}` : '', f.median !== undefined ? `median ${num(f.median)}` : ''].filter(Boolean).join(', ');
}

/** Ratios Boxer/native: against the case's own native variant, else against each baseline case. */
export function ratios(c: CaseResult, byId: Map<string, CaseResult>): string {
  if (!measured(c.boxer)) return '–';
  const b = c.boxer.summary.median;
  if (c.native) return measured(c.native) ? `${num(ratio(b, c.native.summary.median))}×` : '–';
  const parts = (c.baselines ?? []).map((id) => {
    const n = byId.get(id)?.native;
    return measured(n) ? `${num(ratio(b, n.summary.median))}× vs ${id.split('/')[1]} native` : undefined;
  });
  return parts.filter(Boolean).join('; ') || '–';
}

function paperRatio(id: string): string {
  const p = paperFor(id);
  const b = p?.boxer?.mean ?? p?.boxer?.median;
  const n = p?.native?.mean ?? p?.native?.median;
  return b !== undefined && n !== undefined ? `${num(b / n)}×` : '–';
}

export interface Chart {
  file: string;
  svg: string;
}

export function charts(r: Results): Chart[] {
  const out: Chart[] = [];
  for (const g of ['rtt', 'ttfb'] as const) {
    const series: Series[] = [];
    for (const c of r.cases.filter((x) => x.group === g)) {
      for (const m of ['native', 'boxer'] as const) {
        const v = c[m];
        if (measured(v) && v.ecdf) series.push({ name: `${c.id.split('/')[1]} ${m}`, points: v.ecdf });
      }
    }
    out.push({
      file: `${g}-ecdf.svg`,
      svg: lineChart(series, {
        title: g === 'rtt' ? 'Round-trip time of 1 KiB messages (eCDF; paper Fig. 7)' : 'Time to first byte of a new connection (eCDF; paper Fig. 6)',
        xLabel: 'microseconds',
        yLabel: 'fraction of samples',
        logX: true,
        step: true,
        yRange: [0, 1],
      }),
    });
  }
  const agg = r.cases.filter((c) => c.group === 'aggregate');
  const series: Series[] = [];
  for (const m of ['native', 'boxer'] as const) {
    const pts = agg.flatMap((c): [number, number][] => {
      const v = c[m];
      return measured(v) ? [[Number(c.id.split('/')[1]), v.summary.median]] : [];
    });
    if (pts.length) series.push({ name: m === 'native' ? 'native: functions → vm1' : 'Boxer: functions → fp', points: pts });
  }
  const burst = r.cases.find((c) => c.id === 'apps/burst/rps-plateau')?.boxer;
  if (measured(burst) && burst.series?.length) {
    out.push({
      file: 'burst.svg',
      svg: lineChart(burst.series, {
        title: `Burst: requests/s served per second, per member (paper Fig. 8 right: first request ${PAPER_BURST.firstServedS} s, absorbed ${PAPER_BURST.absorbedS} s)`,
        xLabel: 'seconds of load',
        yLabel: 'requests/s',
        vlines: burstMarks(r, burst.note),
      }),
    });
  }
  out.push({ file: 'aggregate.svg', svg: lineChart(series, { title: 'Aggregate throughput into one node (paper Fig. 5)', xLabel: 'senders (iperf3 clients)', yLabel: 'Mbit/s', logX: true, markers: true }) });
  return out;
}

/**
 * The burst chart's marks: the functions' start (from the plateau case's note, "functions started at T s"),
 * and from there Boxer's medians and the paper's figures for the first request served and the burst absorbed.
 */
function burstMarks(r: Results, note: string | undefined): Array<{ x: number; label: string }> {
  const start = Number(/functions started at ([0-9.]+) s/.exec(note ?? '')?.[1]);
  if (!Number.isFinite(start)) return [];
  const med = (id: string) => {
    const v = r.cases.find((c) => c.id === id)?.boxer;
    return measured(v) ? v.summary.median / 1000 : NaN;
  };
  const first = med('apps/burst/first-served');
  const absorbed = med('apps/burst/absorbed');
  return [
    { x: start, label: 'functions start' },
    { x: start + first, label: `Boxer: first request (${first.toFixed(1)} s)` },
    { x: start + absorbed, label: `Boxer: absorbed (${absorbed.toFixed(1)} s)` },
    { x: start + PAPER_BURST.firstServedS, label: `paper: first request (${PAPER_BURST.firstServedS} s)` },
    { x: start + PAPER_BURST.absorbedS, label: `paper: absorbed (${PAPER_BURST.absorbedS} s)` },
  ];
}

/** What a new connection costs on each path (docs/virtual-network.md), to read the TTFB figures by. */
const TTFB_PATHS = [
  'Where the time goes, by path (docs/virtual-network.md):',
  '- **VM to VM** (`direct-quiet` route): the shim connects from its route table and names the peer on accept from it;',
  '  neither agent hears of the connection. What is left over native is the shim\'s own system calls (bind, keepalive',
  '  options, a stat of the route table) on both ends.',
  '- **function to VM** (direct): the VM\'s accept() waits for the client\'s announcement, one message between the',
  '  agents, because a NAT\'s address is shared and is not trusted to name a member.',
  '- **VM to function, function to function** (punched): the far agent binds the port the client chose and connects',
  '  back (simultaneous open), then hands the socket into the program\'s accept() through a loopback wake-up',
  '  connection and SCM_RIGHTS: a few turns of two agents\' event loops, on the same two cores as the programs.',
];

/**
 * The page. `resultsLink`: the results file relative to docs/ (the full run's bench/results.json unless the
 * page was asked for from a quick run's file).
 */
export function markdown(r: Results, chartFiles: string[], resultsLink = '../bench/results.json'): string {
  REASONS = new Map();
  const byId = new Map(r.cases.map((c) => [c.id, c]));
  const group = (g: string) => r.cases.filter((c) => c.group === g);
  const L: string[] = [];
  const page: Page = { r, L, byId, group, chartFiles, resultsLink };
  intro(page);
  machineSection(page);
  throughputSection(page);
  latencySections(page);
  aggregateSection(page);
  connectSection(page);
  appsSection(page);
  membershipSection(page);
  costSection(page);
  lambdaSection(page);
  seccompSection(page);
  notMeasuredSection(page);
  rerunSection(page);
  return L.join('\n');
}

/** The page's parts, written in order into `L` (the order also numbers the not-measured reasons). */
interface Page {
  r: Results;
  L: string[];
  byId: Map<string, CaseResult>;
  group: (g: string) => CaseResult[];
  chartFiles: string[];
  resultsLink: string;
}

function intro(p: Page): void {
  const { r, L, resultsLink } = p;
  L.push('# Benchmarks');
  L.push('');
  const flags = [r.quick ? '--quick' : '', r.only?.length ? `--only ${r.only.join(',')}` : ''].filter(Boolean).join(' ');
  const shown = resultsLink.replace(/^(\.\.\/)+/, '');
  L.push('Generated by `npm run bench' + (flags ? ` -- ${flags}` : '') + `\` on ${r.date} in ${r.durationS.toFixed(0)} s; the same figures are in`);
  L.push(`[${shown}](${resultsLink}). The paper\'s evaluation (section 5), reproduced in the lab (network`);
  L.push('namespaces, veth pairs and nftables NATs on one machine; see overlay/), each Boxer figure beside its native baseline');
  L.push('measured in the same run. Absolute numbers on a shared 2-core machine are noisy and far from AWS\'s: **the ratios');
  L.push('are the result**, not the Mbit/s or microseconds. A Boxer figure is only shown when it was measured.');
  L.push('');
  L.push(`**Boxer data path**: ${r.boxerDataPath.available ? 'available' : 'not available'} — ${r.boxerDataPath.reason}.`);
  if (!r.boxerDataPath.available) L.push('Every Boxer variant of a connection is therefore "not measured"; the native baselines are.');
  L.push('');
}

function machineSection(p: Page): void {
  const { r, L } = p;
  const m = r.machine;
  L.push('## Machine');
  L.push('');
  L.push('| cpu | cores | memory | kernel | node | mode |');
  L.push('|---|---|---|---|---|---|');
  L.push(`| ${m.cpu} | ${m.cores} | ${m.memGiB.toFixed(1)} GiB | ${m.kernel} | ${m.node} | ${r.quick ? 'quick' : 'full'} |`);
  L.push('');
  L.push('Nodes: VMs are the lab\'s public hosts `vm1`, `vm2`; functions are behind NAT gateways (`fp` preserving, `fsa`/`fsb`');
  L.push('sharing a preserving NAT with hairpinning, `fr` random, `fta`/`ftb` translating, `fla`/`flb` on a shared LAN).');
  L.push('');
}

function throughputSection(p: Page): void {
  const { L, byId, group } = p;
  L.push('## Throughput (paper Tables 1 and 2)');
  L.push('');
  L.push('Unmodified iperf3; median of the runs with (min–max). Forward: the client sends; reverse (`-R`): the server sends.');
  L.push('The paper\'s figures are AWS eu-west-3 (Table 2, m5.large), means of 32 pairs × 60 s.');
  L.push('');
  L.push('| connection | native Mbit/s | Boxer Mbit/s | Boxer/native | paper native | paper Boxer | paper ratio |');
  L.push('|---|---|---|---|---|---|---|');
  for (const c of group('throughput')) {
    const p = paperFor(c.id);
    L.push(`| ${c.title} | ${cell(c.native)} | ${cell(c.boxer)} | ${ratios(c, byId)} | ${paperCell(p?.native)} | ${paperCell(p?.boxer)} | ${paperRatio(c.id)} |`);
  }
  L.push('');
}

function latencySections(p: Page): void {
  const { L, byId, group, chartFiles } = p;
  for (const [g, title, what] of [
    ['rtt', 'Round-trip time of 1 KiB messages (paper Table 3, Figure 7)', 'TCP_NODELAY on both ends, one connection per repetition (bench/netbench.py, Python, so a few tens of microseconds of interpreter time are in every figure, native and Boxer alike).'],
    ['ttfb', 'Time to first byte of a new connection (paper Table 3, Figure 6)', 'Client: start a timer, connect, read the 1 byte the server sends on accept, stop, close (bench/netbench.py).'],
  ] as const) {
    L.push(`## ${title}`);
    L.push('');
    L.push(`${what} Microseconds: median / p99 of all samples.`);
    L.push('');
    L.push('| connection | samples | native p50 / p99 | Boxer p50 / p99 | Boxer/native (p50) | paper native | paper Boxer | paper ratio (mean) |');
    L.push('|---|---|---|---|---|---|---|---|');
    for (const c of group(g)) {
      const p = paperFor(c.id);
      const n = measured(c.native) ? c.native.summary.n : measured(c.boxer) ? c.boxer.summary.n : 0;
      L.push(`| ${c.title} | ${n || '–'} | ${cell(c.native, true)} | ${cell(c.boxer, true)} | ${ratios(c, byId)} | ${paperCell(p?.native)} | ${paperCell(p?.boxer)} | ${paperRatio(c.id)} |`);
    }
    if (g === 'ttfb') L.push('', `The paper also gives the function-to-function TTFB 99.9th percentile: ${PAPER_FN_TO_FN_TTFB_P999_US} us.`, '', ...TTFB_PATHS);
    L.push('');
    if (chartFiles.includes(`${g}-ecdf.svg`)) L.push(`![${g} eCDF](bench/${g}-ecdf.svg)`, '');
  }
}

function aggregateSection(p: Page): void {
  const { L, byId, group, chartFiles } = p;
  L.push('## Aggregate throughput into one node (paper Figure 5)');
  L.push('');
  L.push('N senders are N iperf3 clients, each with one TCP stream to its own iperf3 server on the receiving node,');
  L.push('spread round-robin over the sending functions. Native: into `vm1` from the 8 functions (nothing connects into a');
  L.push('function natively; 1 client per function up to 8 senders, 2 at 16, 4 at 32). Boxer: into the function `fp` from');
  L.push('the other 7. Both variants are shaped the same: one process group on the receiving node runs all N servers, one');
  L.push('per sending node runs its share of the clients; under Boxer each group is one `boxer run` member (at most 8');
  L.push('agents however many senders), and a client retries a refused connect (its server\'s agent may not know the');
  L.push("listener yet). The figure is what the receiving node's eth0 took in (bytes, headers included, so a few percent");
  L.push("above iperf3's goodput) during a window that opens 1 s after all N streams are established (2N iperf3 sockets");
  L.push('on the receiver, polled with `ss`); a run counts only if all of them are still established when it closes.');
  L.push(`The paper (AWS Lambda ingress): ${PAPER_AGGREGATE.maxMbps} Mbit/s at ${PAPER_AGGREGATE.atSenders} sender, ${PAPER_AGGREGATE.minMbps} at ${PAPER_AGGREGATE.minAtSenders}; ${PAPER_AGGREGATE.note}.`);
  L.push('');
  L.push('| senders | native Mbit/s | relative to 1 sender | Boxer Mbit/s | Boxer/native |');
  L.push('|---|---|---|---|---|');
  const agg = group('aggregate');
  const one = agg[0]?.native;
  for (const c of agg) {
    const rel = measured(c.native) && measured(one) ? `${num(c.native.summary.median / one.summary.median)}×` : '–';
    L.push(`| ${c.id.split('/')[1]} | ${cell(c.native)} | ${rel} | ${cell(c.boxer)} | ${ratios(c, byId)} |`);
  }
  L.push('');
  if (chartFiles.includes('aggregate.svg')) L.push('![aggregate throughput](bench/aggregate.svg)', '');
}

function connectSection(p: Page): void {
  const { L, byId, group } = p;
  L.push('## Time inside a non-blocking connect()');
  L.push('');
  L.push('native/bench/connect_latency: socket(SOCK_NONBLOCK), time the connect() call only, close; per route (direct vm1 →');
  L.push('vm2, beside native; punched; relayed). The shim must keep this close to native (issue 15: p99 < 200 us on every');
  L.push('route). Microseconds, p50 (min–max of the repetitions\' p50) and p99.');
  L.push('');
  L.push('| case | native p50 | native p99 | Boxer p50 | Boxer p99 | Boxer/native (p50) |');
  L.push('|---|---|---|---|---|---|');
  for (const c of group('connect')) {
    const p99 = (v?: Variant) => (measured(v) ? num(v.summary.p99) : '–');
    L.push(`| ${c.title} | ${cell(c.native)} | ${p99(c.native)} | ${cell(c.boxer)} | ${p99(c.boxer)} | ${ratios(c, byId)} |`);
  }
  L.push('');
}

function appsSection(p: Page): void {
  const { L, byId, group, chartFiles } = p;
  const apps = group('apps');
  if (apps.length) {
    L.push('## Applications: a microservice chain under load (paper section 7, Fig. 8)');
    L.push('');
    L.push('nginx (front end, vm1) → the logic tier (bench/apps/logic.js: Node.js with the `redis` and `pg` client libraries) →');
    L.push('Redis and PostgreSQL (vm2), loaded by `wrk` from the lab\'s `seed` host, a client outside the network; nginx opens a new');
    L.push('upstream connection per request (`static`), or keeps them (`static-ka`: `keepalive`). Static: saturation throughput and p90 latency (32 connections), the Boxer');
    L.push(`deployment against the same chain without Boxer; goal ≥ 0.97× throughput, p90 ≤ 1.1× (the paper: ${PAPER_STATIC.throughputRatio}×, ${PAPER_STATIC.p90Ratio}×).`);
    L.push(`Burst: the logic tier on one VM member with a bounded capacity, loaded past it; then functions join its service`);
    L.push(`and later drain and leave (the paper: first request ${PAPER_BURST.firstServedS} s after a function's start, burst absorbed after`);
    L.push(`${PAPER_BURST.absorbedS} s; goals here: under 1 s and under 5 s, no failed request).`);
    L.push('');
    L.push('| case | native | Boxer | Boxer/native |');
    L.push('|---|---|---|---|');
    for (const c of apps) L.push(`| ${c.title} (${c.unit}) | ${cell(c.native)} | ${cell(c.boxer)} | ${ratios(c, byId)} |`);
    const notes = apps.flatMap((c) => (measured(c.boxer) && c.boxer.note ? [`${c.title}: ${c.boxer.note}.`] : []));
    if (notes.length) L.push('', ...notes);
    L.push('');
    if (chartFiles.includes('burst.svg')) L.push('![burst](bench/burst.svg)', '');
  }
}

function membershipSection(p: Page): void {
  const { L, group } = p;
  L.push('## Membership (control plane)');
  L.push('');
  L.push('bench/join.ts: N agents in one process join one seed on loopback; median (min–max) over the runs.');
  L.push('');
  L.push('| figure | value | unit |');
  L.push('|---|---|---|');
  for (const c of group('membership')) L.push(`| ${c.title} | ${cell(c.boxer)} | ${c.unit} |`);
  L.push('');
}

function costSection(p: Page): void {
  const { L, group } = p;
  L.push('## Cost of the agent');
  L.push('');
  L.push('| figure | value | unit | paper | notes |');
  L.push('|---|---|---|---|---|');
  for (const c of group('cost')) {
    const p = paperFor(c.id);
    const note = measured(c.boxer) ? (c.boxer.note ?? '') : '';
    L.push(`| ${c.title} | ${cell(c.boxer)} | ${c.unit} | ${p ? `${paperCell(p.boxer).replace('median ', '')} (${p.source})` : '–'} | ${note} |`);
  }
  L.push('');
  L.push('Package: tar+gzip of what a function needs (compiled agent without source maps, shim, addon, the production');
  L.push('dependencies from `npm ls --omit=dev`); MB = 10^6 bytes. The paper\'s 1.4 MB was a Go binary and its C shim.');
  L.push('');
  L.push('Agent CPU per 1000 connection setups: a Boxer client (`bench/netbench.py ttfb`: connect, read 1 byte, close)');
  L.push('and a Boxer server (`serve-byte`), each under its own `boxer run`; the user+system CPU time of each agent\'s');
  L.push('process (/proc/PID/stat, 10 ms ticks) from just before the first connection to just after the last. VM-to-VM');
  L.push('connections take the `direct-quiet` route: the shim connects from its route table and names the client on');
  L.push('accept from it, so neither agent hears of them (0 is the figure to expect). Function-to-function ones are');
  L.push('punched through both NATs: the client\'s agent asks the server\'s, which binds the port, connects back and hands');
  L.push('the socket to the program through a loopback wake-up connection; most of that CPU is the kernel\'s work on');
  L.push('those sockets, charged to the agents (a CPU profile of the server\'s agent shows little JavaScript). See');
  L.push('docs/virtual-network.md. The figures include the agents\' idle CPU over the same time (see the idle CPU).');
  L.push('');
}

function lambdaSection(p: Page): void {
  const { L, group } = p;
  L.push('## Boxer on Lambda (in the lab)');
  L.push('');
  L.push('bench/lambda.ts: `boxer lambda package`, `deploy` and `run --nodes 5 -- true` (on vm2, the AWS SDK against the');
  L.push('local AWS endpoint), whose Invoke runs the real handler through the Lambda Runtime API on five function nodes,');
  L.push('one behind each NAT kind. Invoke → joined: from the endpoint accepting the asynchronous Invoke to the seed');
  L.push('admitting that member; cold: a new execution environment (runtime start, handler load, the secret read from');
  L.push('Secrets Manager through the NAT, NAT discovery, join); warm: the same environments reused by a second run.');
  L.push('Milliseconds, median (min–max) over the functions; the notes give each function\'s figure and, in brackets, the');
  L.push('part until an execution environment took the event: for a cold start, the lab\'s environment start (the Runtime');
  L.push('Interface Emulator and the runtime, five at once on this shared machine), which is not Lambda\'s own cold start.');
  L.push('');
  L.push('| figure | value | unit | notes |');
  L.push('|---|---|---|---|');
  for (const c of group('lambda')) L.push(`| ${c.title} | ${cell(c.boxer)} | ${c.unit} | ${measured(c.boxer) ? (c.boxer.note ?? '') : ''} |`);
  L.push('');
}

function seccompSection(p: Page): void {
  const { L } = p;
  L.push('## Programs under the seccomp supervisor');
  L.push('');
  L.push('Go and statically linked programs get the virtual network through the seccomp supervisor (docs/seccomp.md).');
  L.push('Its cost beside the shim and native (a Go program\'s dial, a C program\'s time inside connect(), a Go stream\'s');
  L.push('throughput; on loopback, so only the interception is measured) is measured by `npm run bench:seccomp`, which');
  L.push('writes [bench/seccomp.md](bench/seccomp.md).');
  L.push('');
}

function notMeasuredSection(p: Page): void {
  const { r, L } = p;
  L.push('## Not measured yet');
  L.push('');
  const nm = r.cases.flatMap((c) => (['native', 'boxer'] as const).filter((k) => c[k] && !measured(c[k])).map((k) => `${c.id} ${k}`));
  if (nm.length) {
    const reasons = new Map<string, string[]>();
    for (const c of r.cases)
      for (const k of ['native', 'boxer'] as const) {
        const v = c[k];
        if (v && v.status === 'not measured') reasons.set(v.reason, [...(reasons.get(v.reason) ?? []), `${c.id} ${k}`]);
      }
    for (const [reason, ids] of reasons) L.push(`- [${REASONS.get(reason) ?? '-'}] ${ids.length} figure(s): ${reason}\n  (${ids.join(', ')})`);
  } else L.push('Everything above was measured.');
  L.push('');
}

function rerunSection(p: Page): void {
  const { L } = p;
  L.push('## How to rerun');
  L.push('');
  L.push('As root (the lab needs network namespaces), with iperf3 and python3 installed (`apt-get install iperf3`):');
  L.push('');
  L.push('```sh');
  L.push('npm run build            # the agent, the shim, the addon and native/out/connect_latency');
  L.push('npm run bench            # the full run (~13 min here): writes bench/results.json, docs/benchmarks.md, docs/bench/*.svg');
  L.push('npm run bench -- --quick # smoke test of every group in under two minutes: writes bench/results-quick.json only');
  L.push('npm run bench -- --only aggregate      # only the cases whose group, id or label starts so (repeatable;');
  L.push('npm run bench -- --only cost/setup-cpu # comma-separated too): writes bench/results-partial.json only');
  L.push('cp bench/results.json /tmp/old.json; npm run bench -- --compare /tmp/old.json   # per-figure change');
  L.push('npm run bench -- --out /tmp/new.json --no-docs                                  # results elsewhere, docs untouched');
  L.push('```');
  L.push('');
}
