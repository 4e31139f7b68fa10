/**
 * The paper's application experiments (sections 6-7, Fig. 8), rebuilt from off-the-shelf parts in the lab:
 * nginx (front end, on vm1) -> the logic tier (bench/apps/logic.js: Node.js with the `redis` and `pg`
 * clients) -> Redis and PostgreSQL (bench/apps/pg.sh; both on vm2), loaded by `wrk` from the lab's `seed`
 * host, a client outside the network.
 *
 *  - static: saturation throughput and p90 latency of a read and a write workload in three deployments:
 *    native (no Boxer; the logic tier on vm2), all under Boxer on VMs (the same places), and the logic tier in
 *    a function (fp, behind a NAT) under Boxer. Under Boxer nginx reaches the logic tier by its service name,
 *    the logic tier Redis and PostgreSQL by their member names.
 *  - burst: under Boxer, the logic tier on one VM member whose capacity is bounded (SERVICE_MS per request,
 *    one at a time), loaded past it; then BURST_FUNCTIONS functions join the service; later they leave (each
 *    drains first). From nginx's access log (one line per request: time, status, which member served it):
 *    each function's time from its start to its first request served, the time until the burst is absorbed,
 *    the throughput over time, and the requests that failed while functions joined and while they left.
 *
 * Every process is bounded in time and stopped at the end (Runner); names are unique per repetition.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, sleep, type Group, type Mode, type Runner } from './runner';

export type Deployment = 'native' | 'vm' | 'fn';
export type Workload = 'read' | 'write';

const LOGIC = path.join(ROOT, 'bench', 'apps', 'logic.js');
const FRONT = path.join(ROOT, 'bench', 'apps', 'front.sh');
const PG = path.join(ROOT, 'bench', 'apps', 'pg.sh');
const FRONT_PORT = 8000;
const LOGIC_PORT = 8080;
const REDIS_PORT = 6379;
const PG_PORT = 5432;
/** Keys the workloads spread over (wrk's Lua script draws one per request). */
const KEYS = 1000;
/** wrk's threads and connections for the static workloads: enough to saturate the chain on two cores. */
const STATIC_THREADS = 2;
const STATIC_CONNECTIONS = 32;
/** Bound on one deployment's start (agents join, Redis, the logic tier and nginx listen). */
const DEPLOY_MAX_MS = 60_000;
/** Extra life of every process beyond the measurement, so that nothing outlives a run by much. */
const LIFE_MARGIN_S = 60;

/** Burst: the logic tier's work per request (one at a time: 1000 / SERVICE_MS requests/s per instance). */
export const BURST_SERVICE_MS = 100;
/** Burst: PostgreSQL connections of each logic instance (it serves one request at a time: one is used). */
const BURST_PG_POOL = 2;
/** Burst: the functions that join the service (behind four different NATs). */
export const BURST_FUNCTIONS = ['fp', 'fsa', 'fta', 'fla'];
/**
 * Burst: wrk's connections: past one instance's capacity, enough for five. The capacity is kept low (10
 * requests/s an instance) because nginx opens a new upstream connection per request, and a connection into a
 * function is punched (both agents take part, ~2 ms of CPU each on this shared machine): the lab's two cores
 * set up about a hundred of those a second, which must not be what limits the tier.
 */
const BURST_CONNECTIONS = 40;
/** nginx's status for a request whose client closed the connection before the answer. */
const CLIENT_CLOSED = 499;
/** Seconds a draining function may take beyond its grace period to exit (stop, leave). */
const DRAIN_EXIT_MARGIN_S = 8;
/** Share of the rise to the scaled-out plateau at which the burst counts as absorbed. */
export const ABSORBED_SHARE = 0.9;
/** Step of the 1 s window in which the absorption is looked for (finer than whole seconds of the load). */
const ABSORBED_STEP_MS = 100;

let serial = 0;

export interface Deployed {
  url: string;
  groups: Group[];
  service: string;
  stop(): Promise<void>;
}

function logicNode(d: Deployment): string {
  return d === 'fn' ? 'fp' : 'vm2';
}

/** Starts Redis, PostgreSQL, the logic tier (one instance) and nginx for deployment `d`; resolves once nginx listens. */
export async function deploy(r: Runner, d: Deployment, maxS: number, logicEnv: Record<string, string> = {}, frontEnv: Record<string, string> = {}): Promise<Deployed> {
  const mode: Mode = d === 'native' ? 'native' : 'boxer';
  if (mode === 'boxer') await r.ensureSeed();
  const n = ++serial;
  const redisName = `redis${n}`;
  const service = `logic${n}`;
  const lab = r.lab;
  const life = maxS + LIFE_MARGIN_S;
  const groups: Group[] = [];
  const stop = async () => {
    await Promise.all(groups.map((g) => g.stop()));
  };
  try {
    const redis = r.group(mode, 'vm2', `exec redis-server --port ${REDIS_PORT} --save '' --appendonly no --protected-mode no --bind 0.0.0.0`, life, 'redis', { name: redisName });
    groups.push(redis);
    const pg = r.group(mode, 'vm2', `exec sh ${PG}`, life, 'pg', { name: `pg${n}`, env: { PORT: String(PG_PORT), KEYS: String(KEYS) } });
    groups.push(pg);
    await r.waitListening('vm2', REDIS_PORT, DEPLOY_MAX_MS);
    await pg.waitLine((l) => l === 'PG_READY', DEPLOY_MAX_MS);
    const vm2 = lab.node('vm2').address;
    const logic = r.group(mode, logicNode(d), `exec ${process.execPath} ${LOGIC}`, life, 'logic', {
      name: `${service}a`,
      args: ['--service', service],
      env: { PORT: String(LOGIC_PORT), ...storeEnv(mode === 'native' ? { redis: vm2, pg: vm2 } : { redis: redisName, pg: `pg${n}` }), MAX_S: String(life), ...logicEnv },
    });
    groups.push(logic);
    await logic.waitLine((l) => l.startsWith('LOGIC_READY'), DEPLOY_MAX_MS);
    const front = r.group(mode, 'vm1', `exec sh ${FRONT}`, life, 'front', {
      name: `front${n}`,
      env: { LISTEN: String(FRONT_PORT), UPSTREAM: mode === 'native' ? `${vm2}:${LOGIC_PORT}` : `${service}:${LOGIC_PORT}`, ...frontEnv },
    });
    groups.push(front);
    await front.waitLine((l) => l === 'FRONT_READY', DEPLOY_MAX_MS);
    return { url: `http://${lab.node('vm1').address}:${FRONT_PORT}`, groups, service, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** wrk's Lua script: each request reads or writes a random key. */
function wrkScript(w: Workload): string {
  const file = path.join(os.tmpdir(), `boxer-bench-wrk-${process.pid}-${w}.lua`);
  fs.writeFileSync(file, `request = function() return wrk.format(nil, "/${w}?k=" .. math.random(1, ${KEYS})) end\n`);
  fs.chmodSync(file, 0o644);
  return file;
}

export interface WrkResult {
  rps: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  requests: number;
  /** Non-2xx answers plus socket errors (connect, read, write, timeout). */
  errors: number;
}

const UNIT_US: Record<string, number> = { us: 1, ms: 1000, s: 1e6, m: 6e7 };

/** Parses `wrk --latency` output. */
export function parseWrk(out: string): WrkResult {
  const num = (re: RegExp) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : NaN;
  };
  const pct = (p: number) => {
    const m = new RegExp(`^\\s*${p}%\\s+([0-9.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m ? Number(m[1]) * UNIT_US[m[2]] : NaN;
  };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = (sock ? sock.slice(1, 5).reduce((a, b) => a + Number(b), 0) : 0) + (num(/Non-2xx or 3xx responses: (\d+)/) || 0);
  const r = { rps: num(/Requests\/sec:\s+([0-9.]+)/), p50Us: pct(50), p90Us: pct(90), p99Us: pct(99), requests: num(/(\d+) requests in/), errors };
  if (!Number.isFinite(r.rps) || !Number.isFinite(r.p90Us)) throw new Error(`cannot read wrk's output: ${out.slice(-400)}`);
  return r;
}

/** Runs wrk from the `seed` host (outside the network) against url for `seconds`. */
export async function runWrk(r: Runner, url: string, w: Workload, seconds: number, connections = STATIC_CONNECTIONS, threads = STATIC_THREADS): Promise<WrkResult> {
  const x = await r.lab.exec('seed', 'wrk', [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '--latency', '-s', wrkScript(w), url], { timeoutMs: (seconds + 30) * 1000 });
  if (x.code !== 0) throw new Error(`wrk exited ${x.code ?? x.signal}: ${(x.stderr || x.stdout).slice(-400)}`);
  return parseWrk(x.stdout);
}

/** nginx's idle upstream connections per worker in the keep-alive variant (front.sh's KEEPALIVE). */
export const STATIC_KEEPALIVE = STATIC_CONNECTIONS;

/**
 * One static measurement: deploy, warm up, load for `seconds`, stop. keepalive: nginx reuses its upstream
 * connections (front.sh's KEEPALIVE); else a new one per request.
 */
export async function staticRun(r: Runner, d: Deployment, w: Workload, seconds: number, keepalive = false): Promise<WrkResult> {
  const dep = await deploy(r, d, seconds + 10, {}, keepalive ? { KEEPALIVE: String(STATIC_KEEPALIVE) } : {});
  try {
    await runWrk(r, dep.url, w, 1); // warm-up: connections, Redis keys, nginx workers
    const res = await runWrk(r, dep.url, w, seconds);
    if (res.errors) throw new Error(`${res.errors} of ${res.requests} requests failed`);
    return res;
  } finally {
    await dep.stop();
  }
}

export interface BurstResult {
  /** Per function: ms from its start (`boxer run` spawned) to its first request served. */
  firstServedMs: number[];
  /** Per function: ms from its program listening (it joins the service then) to its first request served. */
  firstAfterReadyMs: number[];
  /** Per function: ms from its start to its agent running the program (joined), and from then to listening. */
  joinedMs: number[];
  programMs: number[];
  /** Per function, inside programMs (logic.js's LOGIC_READY line): Node.js start and loading the client libraries; the Redis and PostgreSQL connections. */
  programNodeMs: number[];
  programConnectMs: number[];
  /** ms from the functions' start until the throughput over the last 1 s first reached ABSORBED_SHARE of the rise to the plateau. */
  absorbedMs: number;
  /** Requests per second, per second of the run: [t (s from load start), total]; and per member. */
  timeline: Array<[number, number]>;
  perMember: Map<string, Array<[number, number]>>;
  rpsBefore: number;
  rpsPlateau: number;
  failedOut: number;
  failedIn: number;
  /** When the functions started and when they were told to leave (s from load start). */
  joinAt: number;
  leaveAt: number;
}

/**
 * The burst (see the top): the logic tier on vm2 with capacity 1000 / BURST_SERVICE_MS, loaded by wrk for
 * before + during + after seconds; the functions start `before` s in and are stopped (drained) `during` s
 * later.
 */
export async function burstRun(r: Runner, phases: { before: number; during: number; after: number }, drainGraceS = 3): Promise<BurstResult> {
  const total = phases.before + phases.during + phases.after;
  // In vm1's own directory (nginx, as the lab's unprivileged user, creates it).
  const logFile = path.join(r.lab.node('vm1').tmpdir ?? os.tmpdir(), `burst-${process.pid}-${++serial}.log`);
  const life = total + 30;
  const dep = await deploy(r, 'vm', life, { SERVICE_MS: String(BURST_SERVICE_MS), PG_POOL: String(BURST_PG_POOL) }, { ACCESS_LOG: logFile });
  const fns: Array<{ g: Group; startedAt: number; name: string; readyAt: number; runAt: number; nodeMs: number; connectMs: number }> = [];
  try {
    const loadStart = Date.now();
    const wrk = runWrk(r, dep.url, 'read', total, BURST_CONNECTIONS, 2);
    await sleep(phases.before * 1000);
    const joinAt = Date.now();
    for (const [i, node] of BURST_FUNCTIONS.entries()) {
      const name = `${dep.service}f${i}`;
      const startedAt = Date.now();
      // PROGRAM_START: the agent joined and started the command (`boxer run` runs it once joined).
      const g = r.group('boxer', node, `echo PROGRAM_START; exec ${process.execPath} ${LOGIC}`, life, 'burst', {
        name,
        args: ['--service', dep.service, '--drain-grace', String(drainGraceS)],
        env: { PORT: String(LOGIC_PORT), ...storeEnv(storesOf(dep)), PG_POOL: String(BURST_PG_POOL), MAX_S: String(life), SERVICE_MS: String(BURST_SERVICE_MS) },
      });
      const f = { g, startedAt, name, readyAt: NaN, runAt: NaN, nodeMs: NaN, connectMs: NaN };
      g.waitLine((l) => l === 'PROGRAM_START', life * 1000).then(
        () => (f.runAt = Date.now()),
        () => undefined,
      );
      g.waitLine((l) => l.startsWith('LOGIC_READY'), life * 1000).then(
        (line) => {
          f.readyAt = Date.now();
          const t = readyTimes(line);
          f.nodeMs = t.start + t.load;
          f.connectMs = t.connect;
        },
        () => undefined,
      );
      fns.push(f);
    }
    await sleep(phases.during * 1000);
    const leaveAt = Date.now();
    // SIGTERM: each drains (out of the service, open requests finish) before its program stops; Runner's
    // stop() would SIGKILL after 2 s, inside the drain.
    for (const f of fns) f.g.child.kill('SIGTERM');
    await Promise.race([Promise.all(fns.map((f) => f.g.exited)), sleep((drainGraceS + DRAIN_EXIT_MARGIN_S) * 1000)]);
    const w = await wrk;
    await sleep(500); // nginx flushes its log every 200 ms
    const res = analyseBurst(fs.readFileSync(logFile, 'utf8'), { loadStart, joinAt, leaveAt, fns: fns.map((f) => ({ name: f.name, startedAt: f.startedAt, readyAt: f.readyAt })), wrkErrors: w.errors, end: loadStart + total * 1000 });
    res.joinedMs = fns.map((f) => f.runAt - f.startedAt);
    res.programMs = fns.map((f) => f.readyAt - f.runAt);
    res.programNodeMs = fns.map((f) => f.nodeMs);
    res.programConnectMs = fns.map((f) => f.connectMs);
    return res;
  } finally {
    await Promise.all(fns.map((f) => f.g.stop()));
    await dep.stop();
    fs.rmSync(logFile, { force: true });
  }
}

/** The times logic.js reports on its LOGIC_READY line ("start=A load=B connect=C", ms; NaN when absent). */
export function readyTimes(line: string): { start: number; load: number; connect: number } {
  const get = (k: string) => Number(new RegExp(`\\b${k}=(\\d+)\\b`).exec(line)?.[1] ?? NaN);
  return { start: get('start'), load: get('load'), connect: get('connect') };
}

/** The Boxer member names of a deployment's Redis and PostgreSQL (deploy() numbers them as its service). */
function storesOf(dep: Deployed): { redis: string; pg: string } {
  const n = dep.service.slice('logic'.length);
  return { redis: `redis${n}`, pg: `pg${n}` };
}

/** The logic tier's environment that names its stores (host names or addresses). */
export function storeEnv(at: { redis: string; pg: string }): Record<string, string> {
  return { REDIS_URL: `redis://${at.redis}:${REDIS_PORT}`, PG_URL: `postgres://app@${at.pg}:${PG_PORT}/app` };
}

/**
 * The burst's figures from nginx's access log (front.sh: "epoch_s.ms status upstream_addr served_by" per
 * line, served_by being the X-Served-By of the answer: the member's name).
 */
/**
 * Absorbed: the end of the first 1 s window (sliding in ABSORBED_STEP_MS steps from the functions' start) whose
 * throughput covers ABSORBED_SHARE of the rise from `before` to the plateau, in ms after `joinAt` (NaN when the
 * throughput did not rise by half at least, or never got there before `leaveAt`).
 */
function absorbedAfter(servedAt: number[], joinAt: number, leaveAt: number, before: number, plateau: number): number {
  const served = [...servedAt].sort((a, b) => a - b);
  for (let end = joinAt, lo = 0, hi = 0; plateau > 1.5 * before && end <= leaveAt; end += ABSORBED_STEP_MS) {
    while (hi < served.length && served[hi] <= end) hi++;
    while (lo < hi && served[lo] <= end - 1000) lo++;
    if (hi - lo >= before + ABSORBED_SHARE * (plateau - before)) return end - joinAt;
  }
  return NaN;
}

export function analyseBurst(
  log: string,
  t: { loadStart: number; joinAt: number; leaveAt: number; end: number; fns: Array<{ name: string; startedAt: number; readyAt: number }>; wrkErrors: number },
): BurstResult {
  const lines = log
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4)
    .map((f) => ({ at: Math.round(Number(f[0]) * 1000), status: Number(f[1]), by: f[3] }));
  const sec = (ms: number) => Math.floor((ms - t.loadStart) / 1000);
  const seconds = Math.max(1, Math.ceil((t.end - t.loadStart) / 1000));
  const totals = new Array<number>(seconds).fill(0);
  const perMember = new Map<string, number[]>();
  let failedOut = 0;
  let failedIn = 0;
  for (const l of lines) {
    const s = sec(l.at);
    // 499: wrk closed the connection (its run ended with requests in flight): not a failure of the service.
    if (l.status >= 500 || (l.status !== 200 && l.status !== CLIENT_CLOSED)) {
      if (l.at >= t.leaveAt) failedIn++;
      else failedOut++;
      continue;
    }
    if (l.status !== 200) continue;
    if (s < 0 || s >= seconds) continue;
    totals[s]++;
    const row = perMember.get(l.by) ?? new Array<number>(seconds).fill(0);
    row[s]++;
    perMember.set(l.by, row);
  }
  const firstAt = t.fns.map((f) => lines.find((l) => l.status === 200 && l.by === f.name)?.at ?? NaN);
  const firstServedMs = firstAt.map((at, i) => at - t.fns[i].startedAt);
  const firstAfterReadyMs = firstAt.map((at, i) => at - t.fns[i].readyAt);
  const mean = (a: number[]) => (a.length ? a.reduce((x, y) => x + y, 0) / a.length : 0);
  const joinS = sec(t.joinAt);
  const leaveS = sec(t.leaveAt);
  // The plateau: the last half of the scaled-out phase; before: the seconds before the functions started.
  const plateau = mean(totals.slice(Math.floor((joinS + leaveS) / 2), leaveS));
  const before = mean(totals.slice(1, Math.max(2, joinS)));
  const absorbedMs = absorbedAfter(lines.filter((l) => l.status === 200).map((l) => l.at), t.joinAt, t.leaveAt, before, plateau);
  return {
    firstServedMs,
    firstAfterReadyMs,
    joinedMs: [],
    programMs: [],
    programNodeMs: [],
    programConnectMs: [],
    absorbedMs,
    timeline: totals.map((v, i) => [i, v]),
    perMember: new Map([...perMember].map(([k, v]) => [k, v.map((x, i) => [i, x] as [number, number])])),
    rpsBefore: before,
    rpsPlateau: plateau,
    // wrk's own count (non-2xx, socket errors) covers what nginx did not log; its excess has no phase: counted here.
    failedOut: failedOut + Math.max(0, t.wrkErrors - failedOut - failedIn),
    failedIn,
    joinAt: (t.joinAt - t.loadStart) / 1000,
    leaveAt: (t.leaveAt - t.loadStart) / 1000,
  };
}
