/**
 * The application experiments' cases in `npm run bench` (group `apps`; the measurements are bench/apps.ts):
 *  - apps/static/W/D/rps and /p90, W read or write, D `vm` (all under Boxer on VMs) or `fn` (the logic tier in
 *    a function): the Boxer variant is deployment D, the native one the same chain without Boxer (measured once
 *    per repetition and workload, shared by both D). Goal: Boxer >= 0.97x native throughput, p90 <= 1.1x.
 *    A new nginx -> logic tier connection per request (nginx's default); apps/static-ka/...: the same with
 *    nginx's upstream keep-alive (native and Boxer alike).
 *  - apps/burst/*: the burst (Boxer only): first request served after a function's start, burst absorbed,
 *    throughput before and scaled out, failed requests during scale-out and scale-in; its throughput over time
 *    is kept as series for the chart.
 */
import type { Acc, Bench } from './cases';
import { BURST_FUNCTIONS, BURST_SERVICE_MS, STATIC_KEEPALIVE, burstRun, staticRun, type Deployment, type Workload } from './apps';

export function planApps(b: Bench): void {
  planStatic(b, false);
  planStatic(b, true);
  planBurst(b);
}

/**
 * The static cases of one connection mode: a new nginx -> logic connection per request (ids apps/static/W/D/*),
 * or nginx's upstream keep-alive (apps/static-ka/W/D/*; natively too).
 */
function planStatic(b: Bench, keepalive: boolean): void {
  const cfg = b.cfg;
  const conn = keepalive ? `nginx keeps its upstream connections (keepalive ${STATIC_KEEPALIVE})` : 'a new upstream connection per request';
  const over = `${cfg.appsReps} wrk runs of ${cfg.appsSeconds} s (32 connections), after a 1 s warm-up; ${conn}`;
  const kind = keepalive ? 'static-ka' : 'static';
  const label = keepalive ? 'static keepalive' : 'static';
  const workloads: Workload[] = ['read', 'write'];
  const deployments: Array<{ d: Deployment; label: string }> = [
    { d: 'vm', label: 'all under Boxer on VMs' },
    { d: 'fn', label: 'logic tier in a function (fp)' },
  ];
  for (const w of workloads) {
    const cases = deployments.map(({ d, label: where }) => ({
      d,
      rps: b.define({ id: `apps/${kind}/${w}/${d}/rps`, group: 'apps', title: `${w} workload, ${where}${keepalive ? ', upstream keep-alive' : ''}: saturation throughput`, unit: 'requests/s', better: 'higher' }, ['native', 'boxer'], { native: over, boxer: over }),
      p90: b.define({ id: `apps/${kind}/${w}/${d}/p90`, group: 'apps', title: `${w} workload, ${where}${keepalive ? ', upstream keep-alive' : ''}: p90 latency at saturation`, unit: 'us', better: 'lower' }, ['native', 'boxer'], { native: over, boxer: over }),
    }));
    for (let rep = 1; rep <= cfg.appsReps; rep++) {
      const run = (accs: Array<{ rps: Acc; p90: Acc }>, mode: 'native' | 'boxer', d: Deployment) => async () => {
        try {
          const r = await staticRun(b.runner, d, w, cfg.appsSeconds, keepalive);
          for (const a of accs) {
            a.rps.modes[mode]!.values.push(r.rps);
            a.p90.modes[mode]!.values.push(r.p90Us);
          }
        } catch (e) {
          for (const a of accs) for (const x of [a.rps, a.p90]) x.modes[mode]!.errors.push((e as Error).message.replace(/\s+/g, ' ').slice(0, 300));
        }
      };
      b.tasks.push({ label: `apps ${label} ${w} native, rep ${rep}/${cfg.appsReps}`, group: 'apps', ids: cases.flatMap((c) => [c.rps.c.id, c.p90.c.id]), run: run(cases, 'native', 'native') });
      if (!b.boxer.available) continue;
      for (const c of cases) b.tasks.push({ label: `apps ${label} ${w} ${c.d}, rep ${rep}/${cfg.appsReps}`, group: 'apps', ids: [c.rps.c.id, c.p90.c.id], run: run([c], 'boxer', c.d) });
    }
  }
}

function planBurst(b: Bench): void {
  const cfg = b.cfg;
  const ph = cfg.burst;
  const bover = `${ph.reps} run${ph.reps > 1 ? 's' : ''}: ${ph.before} s on one VM member (capacity ${1000 / BURST_SERVICE_MS} requests/s), ${ph.during} s with ${BURST_FUNCTIONS.length} functions joined, ${ph.after} s after they drained and left`;
  const reasonB = b.boxer.available ? '' : `needs the Boxer data path, not available: ${b.boxer.reason}`;
  const def = (id: string, title: string, unit: string, better: 'higher' | 'lower') => b.define({ id: `apps/burst/${id}`, group: 'apps', title: `burst: ${title}`, unit, better }, ['boxer'], { boxer: bover }, false, reasonB);
  const first = def('first-served', "a function's start to its first request served (each function)", 'ms', 'lower');
  const joined = def('joined', "a function's start to its agent joined and running the program", 'ms', 'lower');
  const program = def('program-ready', "a function's program started to listening (Node.js, Redis and PostgreSQL connections)", 'ms', 'lower');
  const programNode = def('program-node', "inside the program's start: Node.js and loading the Redis and PostgreSQL client libraries", 'ms', 'lower');
  const programConnect = def('program-connect', "inside the program's start: its Redis and PostgreSQL connections (through Boxer)", 'ms', 'lower');
  const afterReady = def('first-after-ready', "a function's program listening (it joins the service) to its first request served", 'ms', 'lower');
  const absorbed = def('absorbed', "functions' start to the burst absorbed (a 1 s window with 90% of the rise to the scaled-out throughput)", 'ms', 'lower');
  const before = def('rps-before', 'throughput on the one VM member', 'requests/s', 'higher');
  const plateau = def('rps-plateau', `throughput with the ${BURST_FUNCTIONS.length} functions`, 'requests/s', 'higher');
  const failOut = def('failed-out', 'failed requests while the functions joined and served', 'requests', 'lower');
  const failIn = def('failed-in', 'failed requests while the functions drained and left', 'requests', 'lower');
  if (!b.boxer.available) return;
  for (let rep = 1; rep <= ph.reps; rep++) {
    b.tasks.push({
      label: `apps burst, rep ${rep}/${ph.reps}`,
      group: 'apps',
      ids: [first, joined, program, programNode, programConnect, afterReady, absorbed, before, plateau, failOut, failIn].map((a) => a.c.id),
      run: async () => {
        try {
          const r = await burstRun(b.runner, ph);
          first.modes.boxer!.values.push(...r.firstServedMs.filter(Number.isFinite));
          const missing = r.firstServedMs.filter((x) => !Number.isFinite(x)).length;
          if (missing) first.modes.boxer!.errors.push(`${missing} function(s) served no request`);
          afterReady.modes.boxer!.values.push(...r.firstAfterReadyMs.filter(Number.isFinite));
          joined.modes.boxer!.values.push(...r.joinedMs.filter(Number.isFinite));
          program.modes.boxer!.values.push(...r.programMs.filter(Number.isFinite));
          programNode.modes.boxer!.values.push(...r.programNodeMs.filter(Number.isFinite));
          programConnect.modes.boxer!.values.push(...r.programConnectMs.filter(Number.isFinite));
          if (Number.isFinite(r.absorbedMs)) absorbed.modes.boxer!.values.push(r.absorbedMs);
          else absorbed.modes.boxer!.errors.push(`the throughput did not rise to absorb the burst (${r.rpsBefore.toFixed(0)} -> ${r.rpsPlateau.toFixed(0)} requests/s)`);
          before.modes.boxer!.values.push(r.rpsBefore);
          plateau.modes.boxer!.values.push(r.rpsPlateau);
          failOut.modes.boxer!.values.push(r.failedOut);
          failIn.modes.boxer!.values.push(r.failedIn);
          plateau.modes.boxer!.series = [
            { name: 'all members', points: r.timeline },
            ...[...r.perMember].sort(([a], [c]) => a.localeCompare(c)).map(([name, points]) => ({ name, points })),
          ];
          plateau.modes.boxer!.note = `functions started at ${r.joinAt.toFixed(1)} s and were stopped (drained) at ${r.leaveAt.toFixed(1)} s of the load`;
        } catch (e) {
          for (const a of [first, joined, program, programNode, programConnect, afterReady, absorbed, before, plateau, failOut, failIn]) a.modes.boxer!.errors.push((e as Error).message.replace(/\s+/g, ' ').slice(0, 300));
        }
      },
    });
  }
}
