/**
 * The connection set-up cases of `npm run bench` (issue 15): the first connection to a member never contacted
 * before, and the time inside a non-blocking connect() on the punched and relayed routes (the direct route is
 * `connect/vm-to-vm`, network.ts). Their bounds are the regression guards of `--compare` (results.ts, GUARDS).
 */
import type { Bench } from './cases';
import { connectLatencyBinary } from './network';
import { HOST, NETBENCH, PY, type Group, type Runner } from './runner';
import { median } from './stats';

/** A pair of functions behind two NATs: no home link or earlier connection joins them before the first connect. */
const FIRST_PAIR = { id: 'fn-to-fn', label: 'function-to-function, punched', client: 'fp', server: 'fsa' } as const;
/** Connections per repetition of the first-connection case: the first is the figure, the others its note. */
const FIRST_N = 5;
/** Repetitions (each with two fresh members): quick and full. */
const FIRST_REPS = { quick: 2, full: 5 };
/** The client member waits this long after resolving the server (its join traffic done; no link opened). */
const FIRST_QUIET_S = 1;
/** Bound on a member's start (join, resolve) and on the connections. */
const FIRST_MAX_S = 30;

/** The routes of the connect() cases beside connect/vm-to-vm: client, server, and what the route is there. */
const CONNECT_ROUTES = [
  { id: 'vm-to-fn', client: 'vm1', server: 'fp', label: 'punched, vm1 → fp' },
  { id: 'fn-to-fn-relay', client: 'fr', server: 'fp', label: 'relayed (random NAT), fr → fp' },
] as const;

/** Concurrent non-blocking connects of the burst case (issue 14's load item: 1000), quick and full. */
const BURST_N = { quick: 200, full: 1000 };
/** Bound on the burst's connects (connect_latency --burst MAX_S). */
const BURST_MAX_S = 30;

export function planSetup(b: Bench): void {
  planFirst(b);
  planConnectRoutes(b);
  planBurst(b);
}

/**
 * N non-blocking connects at once, then getsockopt(SO_ERROR) on each: the figure is the time of those N calls
 * (under Boxer each punched socket's outcome comes from the agent). Native vm1 → vm2, Boxer vm1 → fp (punched).
 */
function planBurst(b: Bench): void {
  const cfg = b.cfg;
  const n = cfg.quick ? BURST_N.quick : BURST_N.full;
  const bin = connectLatencyBinary();
  const a = b.define(
    { id: 'connect/burst', group: 'connect', title: `${n} concurrent non-blocking connects: the ${n} getsockopt(SO_ERROR) calls once all ended, ms (native vm1 → vm2; Boxer vm1 → fp, punched)`, unit: 'ms', better: 'lower' },
    ['native', 'boxer'],
    { native: `${cfg.connectReps} runs (connect_latency --burst)`, boxer: `${cfg.connectReps} runs (connect_latency --burst)` },
  );
  if (!bin) {
    for (const m of ['native', 'boxer'] as const) a.modes[m]!.notMeasured = 'native/out/connect_latency is not built (npm run build:native)';
    return;
  }
  const ups: Record<string, number[]> = { native: [], boxer: [] };
  b.addTasks(a, cfg.connectReps, (m, rep) => `connect() burst of ${n} ${m}, rep ${rep}/${cfg.connectReps}`, async (m) => {
    const server = m === 'native' ? 'vm2' : 'fp';
    const port = b.runner.nextPort();
    const srv = await b.runner.server(m, server, [PY, NETBENCH, 'serve-byte', String(port), String(BURST_MAX_S * 3)], port, BURST_MAX_S * 3);
    try {
      const out = await b.runner.client(m, 'vm1', [bin, '--burst', HOST, String(port), String(n), String(BURST_MAX_S)], { node: server, name: srv.name }, (BURST_MAX_S + 30) * 1000);
      const x = /n=(\d+) connected=(\d+) errors=(\d+) up_ms=([\d.]+) soerror_ms=([\d.]+)/.exec(out);
      if (!x) throw new Error(`unexpected connect_latency output: ${out.trim().slice(0, 200)}`);
      if (Number(x[2]) !== n) throw new Error(`connect_latency --burst: ${x[2]} of ${n} connected, ${x[3]} errors`);
      ups[m].push(Number(x[4]));
      a.modes[m]!.note = `all ${n} connected ${median(ups[m]).toFixed(0)} ms after the first connect() (median of the runs)`;
      return Number(x[5]);
    } finally {
      await srv.stop();
    }
  });
}

function planFirst(b: Bench): void {
  const reps = b.cfg.quick ? FIRST_REPS.quick : FIRST_REPS.full;
  const p = FIRST_PAIR;
  const a = b.define(
    { id: `ttfb/first/${p.id}`, group: 'ttfb', title: `first connection to a member never contacted before, ${p.label} (${p.client} → ${p.server}): connect to first byte`, unit: 'us', better: 'lower' },
    ['boxer'],
    { boxer: `${reps} runs, each with two fresh members (the first of ${FIRST_N} connections)` },
  );
  const later: number[] = [];
  b.addTasks(a, reps, (_m, rep) => `ttfb first connection ${p.id}, rep ${rep}/${reps}`, async () => {
    const us = await firstConnections(b.runner, p.client, p.server, FIRST_N);
    later.push(median(us.slice(1)));
    a.modes.boxer!.note = `the connections after the first: median ${median(later).toFixed(0)} us (median of the runs)`;
    return us[0];
  });
}

/** n connections (connect, 1 byte back, close) from a fresh member on `client` to a fresh member on `server`, in us. */
async function firstConnections(r: Runner, client: string, server: string, n: number): Promise<number[]> {
  await r.ensureSeed();
  const port = r.nextPort();
  const groups: Group[] = [];
  try {
    const srv = r.group('boxer', server, `exec ${PY} ${NETBENCH} serve-byte ${port} ${FIRST_MAX_S * 2}`, FIRST_MAX_S * 3, 'firstsrv');
    groups.push(srv);
    await srv.waitLine((l) => l === 'ready', FIRST_MAX_S * 1000);
    const script = [r.hostPrelude('boxer', { node: server, name: srv.name }, FIRST_MAX_S), `sleep ${FIRST_QUIET_S}`, `exec ${PY} ${NETBENCH} ttfb "$H" ${port} ${n} ${FIRST_MAX_S}`].join('\n');
    const cli = r.group('boxer', client, script, FIRST_MAX_S * 3, 'firstcli');
    groups.push(cli);
    const line = await cli.waitLine((l) => l.startsWith('{'), FIRST_MAX_S * 2 * 1000);
    const res = JSON.parse(line) as { us: number[]; errors: number; truncated: boolean; error?: string };
    if (res.errors || res.truncated || res.us.length !== n) throw new Error(`ttfb: ${res.us.length} of ${n} connections, ${res.errors} errors${res.error ? ` (${res.error})` : ''}`);
    return res.us;
  } finally {
    await Promise.all(groups.map((g) => g.stop()));
  }
}

function planConnectRoutes(b: Bench): void {
  const cfg = b.cfg;
  const bin = connectLatencyBinary();
  for (const x of CONNECT_ROUTES) {
    const a = b.define(
      { id: `connect/${x.id}`, group: 'connect', title: `time inside a non-blocking connect() (p50; ${x.label})`, unit: 'us', better: 'lower' },
      ['boxer'],
      { boxer: `${cfg.connectReps}×${cfg.connectN} calls under the shim (connect_latency)` },
    );
    if (!bin) {
      a.modes.boxer!.notMeasured = 'native/out/connect_latency is not built (npm run build:native)';
      continue;
    }
    b.addTasks(a, cfg.connectReps, (_m, rep) => `connect() latency ${x.id}, rep ${rep}/${cfg.connectReps}`, async () => {
      const port = b.runner.nextPort();
      const srv = await b.runner.server('boxer', x.server, [PY, NETBENCH, 'serve-byte', String(port), '90'], port, 90);
      try {
        const out = await b.runner.client('boxer', x.client, [bin, HOST, String(port), String(cfg.connectN)], { node: x.server, name: srv.name }, 80_000);
        const m = /p50_us=([\d.]+) p99_us=([\d.]+) max_us=([\d.]+) errors=(\d+)/.exec(out);
        if (!m) throw new Error(`unexpected connect_latency output: ${out.trim().slice(0, 200)}`);
        if (Number(m[4]) > 0) throw new Error(`connect_latency: ${m[4]} connect() errors`);
        const slot = a.modes.boxer as { p99s?: number[] };
        slot.p99s = [...(slot.p99s ?? []), Number(m[2])];
        return Number(m[1]);
      } finally {
        await srv.stop();
      }
    });
  }
}
