/**
 * `boxer demo --scenario burst`: the paper's burst (section 7) on this machine, with a live view. In the lab
 * (overlay/default-topology.json): nginx (bench/apps/front.sh) on the public VM vm1, the logic tier
 * (bench/apps/logic.js: Node.js with the Redis and PostgreSQL clients) as service `api` on vm2 with a capacity
 * of 1000 / SERVICE_MS requests/s, Redis and PostgreSQL on vm2, all under `boxer run`; `wrk` on the seed host
 * (a client outside the network) loads nginx past that capacity. After `before` seconds four functions behind
 * four kinds of NAT start the same logic tier with `--service api`; nginx, which resolved `api` once at its
 * start, spreads its new connections over them as they join; `during` seconds later they are sent SIGTERM and
 * drain (`--drain-grace`) while the load goes on for `after` seconds. Every second the view shows each
 * member's state and requests served per second (from nginx's access log: which member answered each request).
 *
 * Bounded: every process has a `timeout` of the run's length plus a margin, and the lab (namespaces, processes)
 * is removed at the end, on failure, and on SIGINT/SIGTERM (the caller's handler: see demo.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Lab } from './lab';

const ROOT = path.resolve(__dirname, '../..');
const BOXER = path.join(ROOT, 'bin', 'boxer');
const APPS = path.join(ROOT, 'bench', 'apps');
const SECRET = 'boxer demo secret: not for real networks';
const SEED_PORT = 7000;
const FRONT_PORT = 8000;
const LOGIC_PORT = 8080;
const SERVICE = 'api';
/** The logic tier's work per request, one at a time: 10 requests/s per instance (bench/apps.ts, the burst). */
const SERVICE_MS = 100;
/** wrk's connections: past one instance's capacity, enough for five (each waits its turn in one instance). */
const CONNECTIONS = 40;
/** The functions that join: one behind each NAT kind that a direct path crosses (docs/lab.md). */
const FUNCTIONS = ['fp', 'fsa', 'fta', 'fla'];
/** Seconds a function's drain lasts (`boxer run --drain-grace`). */
const DRAIN_GRACE_S = 3;
/** Bound on each start-up step (an agent joins, a server listens), on a loaded machine. */
const START_MAX_MS = 60_000;
/** Every process's life beyond the run (`timeout`), so that nothing outlives the demo by much. */
const LIFE_MARGIN_S = 60;
/** Lines of a process's stderr kept for error messages. */
const STDERR_TAIL = 2000;
/** nginx's status for a request whose client closed the connection first (wrk's end): not a failure. */
const CLIENT_CLOSED = 499;

export interface BurstPhases {
  before: number;
  during: number;
  after: number;
}

export interface BurstSummary {
  /** Requests served per member. */
  served: Map<string, number>;
  /** Per function: ms from its start to its first request served (NaN: none). */
  firstServedMs: Map<string, number>;
  /** Answers other than 200 (and 499), plus wrk's socket errors beyond them. */
  failed: number;
  rpsBefore: number;
  rpsDuring: number;
}

interface Proc {
  name: string;
  child: ChildProcess;
  lines: string[];
  stderr: () => string;
  waitLine(re: RegExp, ms: number): Promise<void>;
}

function track(name: string, child: ChildProcess): Proc {
  const lines: string[] = [];
  let err = '';
  let partial = '';
  const waiters = new Set<() => void>();
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const w of [...waiters]) w();
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-STDERR_TAIL)));
  child.once('exit', () => [...waiters].forEach((w) => w()));
  const waitLine = (re: RegExp, ms: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`${name}: not ready within ${ms} ms: ${err.trim().slice(-400)}`)), ms);
      const check = () => {
        if (lines.some((l) => re.test(l))) done();
        else if (child.exitCode !== null || child.signalCode !== null) done(new Error(`${name} exited (${child.exitCode ?? child.signalCode}): ${err.trim().slice(-400)}`));
      };
      const done = (e?: Error) => {
        clearTimeout(timer);
        waiters.delete(check);
        if (e) reject(e);
        else resolve();
      };
      waiters.add(check);
      check();
    });
  return { name, child, lines, stderr: () => err, waitLine };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `ss` in the node until something listens on the TCP port (bounded). */
async function waitListening(lab: Lab, node: string, port: number): Promise<void> {
  const deadline = Date.now() + START_MAX_MS;
  while (Date.now() < deadline) {
    const r = await lab.exec(node, 'ss', ['-ltnH', `sport = :${port}`], { timeoutMs: 5000 });
    if (r.stdout.trim()) return;
    await sleep(100);
  }
  throw new Error(`nothing listens on ${node}:${port} after ${START_MAX_MS} ms`);
}

/** One member's view: its state and requests per second. */
interface Row {
  name: string;
  where: string;
  state: string;
  startedAt: number;
  firstAt: number;
  proc?: Proc;
}

class View {
  private drawn = 0;
  private readonly events: string[] = [];
  constructor(
    private readonly out: (s: string) => void,
    private readonly tty: boolean,
  ) {}

  event(t: number, text: string): void {
    this.events.push(`${t.toFixed(1).padStart(5)} s  ${text}`);
    if (!this.tty) this.out(`${t.toFixed(1).padStart(5)} s  ${text}\n`);
  }

  /** Redraws the table in place on a terminal; otherwise one line per second. */
  draw(t: number, rows: Row[], last: Map<string, number>, total: number, failed: number): void {
    if (!this.tty) {
      const per = rows.map((r) => `${r.name} ${last.get(r.name) ?? 0}`).join('  ');
      this.out(`${t.toFixed(0).padStart(3)} s  ${String(total).padStart(4)} req/s  [${per}]  failed ${failed}\n`);
      return;
    }
    const bar = (n: number) => '#'.repeat(Math.min(40, n));
    const lines = [
      `burst demo: nginx on vm1 -> service \`${SERVICE}\` (capacity ${1000 / SERVICE_MS} req/s a member); wrk from outside; t = ${t.toFixed(0)} s`,
      `total ${total} req/s   failed so far ${failed}`,
      '',
      `${'member'.padEnd(10)} ${'where'.padEnd(34)} ${'state'.padEnd(22)} req/s`,
      ...rows.map((r) => `${r.name.padEnd(10)} ${r.where.padEnd(34)} ${r.state.padEnd(22)} ${String(last.get(r.name) ?? 0).padStart(4)} ${bar(last.get(r.name) ?? 0)}`),
      '',
      ...this.events.slice(-8),
    ];
    this.out((this.drawn ? `\x1b[${this.drawn}F\x1b[J` : '') + lines.join('\n') + '\n');
    this.drawn = lines.length;
  }
}

/** Reads what nginx appended to its access log since the last call ("msec status upstream served_by"). */
function logReader(file: string): () => Array<{ at: number; status: number; by: string }> {
  let offset = 0;
  let partial = '';
  return () => {
    let text = '';
    try {
      const fd = fs.openSync(file, 'r');
      try {
        const size = fs.fstatSync(fd).size;
        if (size > offset) {
          const buf = Buffer.alloc(size - offset);
          fs.readSync(fd, buf, 0, buf.length, offset);
          offset = size;
          text = buf.toString('utf8');
        }
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return []; // not written yet
    }
    const parts = (partial + text).split('\n');
    partial = parts.pop() ?? '';
    return parts
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length >= 4)
      .map((f) => ({ at: Math.round(Number(f[0]) * 1000), status: Number(f[1]), by: f[3] }));
  };
}

export interface BurstRun {
  lab: Lab;
  phases: BurstPhases;
  out: (s: string) => void;
  tty: boolean;
}

/** Runs the burst in `lab` (already up); resolves with its summary. The caller removes the lab. */
export async function burstDemo(run: BurstRun): Promise<BurstSummary> {
  const { lab, phases } = run;
  const total = phases.before + phases.during + phases.after;
  const life = String(total + LIFE_MARGIN_S);
  const seedAddr = `${lab.node('seed').address}:${SEED_PORT}`;
  const env = { BOXER_SECRET: SECRET };
  const procs: Proc[] = [];
  const where = (n: string) => {
    const i = lab.node(n);
    return i.nat ? `${n}, behind a ${i.nat} NAT` : `${n} (public VM)`;
  };
  const member = (node: string, name: string, script: string, extra: string[] = [], menv: Record<string, string> = {}) => {
    const args = [BOXER, 'run', '--seed', seedAddr, '--name', name, ...extra, '--', 'timeout', '-k', '2', life, 'sh', '-c', script];
    const p = track(name, lab.spawn(node, process.execPath, args, { env: { ...env, ...menv }, stdio: ['ignore', 'pipe', 'pipe'] }));
    procs.push(p);
    return p;
  };
  const stores = { REDIS_URL: 'redis://redis:6379', PG_URL: 'postgres://app@pg:5432/app', PG_POOL: '2', PORT: String(LOGIC_PORT), SERVICE_MS: String(SERVICE_MS), MAX_S: life };
  const logFile = path.join(lab.node('vm1').tmpdir ?? '/tmp', 'burst-access.log');
  const view = new View(run.out, run.tty);
  const t0 = Date.now();
  const at = () => (Date.now() - t0) / 1000;

  procs.push(track('seed', lab.spawn('seed', process.execPath, [BOXER, 'seed', '--listen', seedAddr], { env, stdio: ['ignore', 'pipe', 'pipe'] })));
  await waitListening(lab, 'seed', SEED_PORT);
  view.event(at(), `seed listening on ${seedAddr}`);
  const redis = member('vm2', 'redis', `exec redis-server --port 6379 --save '' --appendonly no --protected-mode no`);
  const pg = member('vm2', 'pg', `exec sh ${APPS}/pg.sh`, [], { PORT: '5432' });
  await waitListening(lab, 'vm2', 6379).then(() => pg.waitLine(/^PG_READY$/, START_MAX_MS));
  void redis;
  view.event(at(), 'redis and pg (PostgreSQL) serve on vm2');
  const rows: Row[] = [{ name: 'api-vm', where: where('vm2'), state: 'starting', startedAt: Date.now(), firstAt: NaN }];
  rows[0].proc = member('vm2', 'api-vm', `exec ${process.execPath} ${APPS}/logic.js`, ['--service', SERVICE], stores);
  await rows[0].proc.waitLine(/^LOGIC_READY/, START_MAX_MS);
  rows[0].state = `in \`${SERVICE}\``;
  const front = member('vm1', 'front', `exec sh ${APPS}/front.sh`, [], { LISTEN: String(FRONT_PORT), UPSTREAM: `${SERVICE}:${LOGIC_PORT}`, ACCESS_LOG: logFile });
  await front.waitLine(/^FRONT_READY$/, START_MAX_MS);
  view.event(at(), `api-vm serves \`${SERVICE}\`; nginx (front) listens on vm1:${FRONT_PORT}`);
  return load(run, { rows, member, stores, logFile, view, at, where, procs });
}

interface LoadCtx {
  rows: Row[];
  member: (node: string, name: string, script: string, extra?: string[], env?: Record<string, string>) => Proc;
  stores: Record<string, string>;
  logFile: string;
  view: View;
  at: () => number;
  where: (n: string) => string;
  procs: Proc[];
}

/**
 * The load and the live view: wrk for the whole run; the functions start after `before` s and are drained
 * `during` s later; each second, the requests per member of the last complete second. Over 60 lines: the
 * run's one timeline, read top to bottom.
 */
async function load(run: BurstRun, c: LoadCtx): Promise<BurstSummary> {
  const { lab, phases } = run;
  const total = phases.before + phases.during + phases.after;
  const script = path.join(lab.node('seed').tmpdir ?? '/tmp', 'burst.lua');
  fs.writeFileSync(script, 'request = function() return wrk.format(nil, "/read?k=" .. math.random(1, 1000)) end\n');
  fs.chmodSync(script, 0o644);
  const url = `http://${lab.node('vm1').address}:${FRONT_PORT}/`;
  const wrk = track('wrk', lab.spawn('seed', 'wrk', ['-t2', `-c${CONNECTIONS}`, `-d${total}s`, '--timeout', '10s', '-s', script, url], { stdio: ['ignore', 'pipe', 'pipe'] }));
  c.procs.push(wrk);
  const wrkDone = new Promise<void>((r) => wrk.child.once('exit', () => r()));
  const loadStart = Date.now();
  c.view.event(c.at(), `wrk: ${CONNECTIONS} connections from the seed host (outside the network) to ${url}`);
  const read = logReader(c.logFile);
  const perSec = new Map<number, Map<string, number>>();
  const served = new Map<string, number>();
  let failed = 0;
  let joined = false;
  let left = false;
  for (let s = 1; s <= total + 1; s++) {
    await sleep(Math.max(0, loadStart + s * 1000 - Date.now()));
    if (!joined && s > phases.before) {
      joined = true;
      for (const node of FUNCTIONS) {
        const name = `api-${node}`;
        const row: Row = { name, where: c.where(node), state: 'starting', startedAt: Date.now(), firstAt: NaN };
        row.proc = c.member(node, name, `exec ${process.execPath} ${APPS}/logic.js`, ['--service', SERVICE, '--drain-grace', String(DRAIN_GRACE_S)], c.stores);
        row.proc.waitLine(/^LOGIC_READY/, START_MAX_MS).then(
          () => {
            row.state = `in \`${SERVICE}\``;
            c.view.event(c.at(), `${name} listens: joined \`${SERVICE}\` ${((Date.now() - row.startedAt) / 1000).toFixed(1)} s after its start`);
          },
          (e: Error) => ((row.state = 'failed'), c.view.event(c.at(), e.message.slice(0, 200))),
        );
        c.rows.push(row);
      }
      c.view.event(c.at(), `${FUNCTIONS.length} functions start the logic tier with --service ${SERVICE}`);
    }
    if (!left && s > phases.before + phases.during) {
      left = true;
      for (const r of c.rows.slice(1)) {
        r.proc?.child.kill('SIGTERM');
        if (r.state !== 'failed') r.state = 'draining, leaving';
      }
      c.view.event(c.at(), `functions told to stop: each leaves \`${SERVICE}\`, finishes its requests (${DRAIN_GRACE_S} s), exits`);
    }
    for (const l of read()) {
      if (l.status !== 200) {
        if (l.status !== CLIENT_CLOSED) failed++;
        continue;
      }
      const sec = Math.floor((l.at - loadStart) / 1000);
      const m = perSec.get(sec) ?? new Map<string, number>();
      m.set(l.by, (m.get(l.by) ?? 0) + 1);
      perSec.set(sec, m);
      served.set(l.by, (served.get(l.by) ?? 0) + 1);
      const row = c.rows.find((r) => r.name === l.by);
      if (row && !Number.isFinite(row.firstAt)) {
        row.firstAt = l.at;
        if (row !== c.rows[0]) c.view.event(c.at(), `${row.name} served its first request ${((l.at - row.startedAt) / 1000).toFixed(1)} s after its start`);
      }
    }
    for (const r of c.rows) if (r.proc && r.state.startsWith('draining') && r.proc.child.exitCode !== null) r.state = 'left';
    const last = perSec.get(s - 2) ?? new Map<string, number>();
    c.view.draw(c.at(), c.rows, last, [...last.values()].reduce((a, b) => a + b, 0), failed);
  }
  await Promise.race([wrkDone, sleep(10_000)]);
  await Promise.race([Promise.all(c.rows.slice(1).map((r) => (r.proc && r.proc.child.exitCode === null ? new Promise((x) => r.proc!.child.once('exit', x)) : null))), sleep((DRAIN_GRACE_S + 10) * 1000)]);
  await sleep(500); // nginx flushes its log every 200 ms
  for (const l of read()) if (l.status !== 200 && l.status !== CLIENT_CLOSED) failed++;
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(wrk.lines.join('\n'));
  const wrkErrors = sock ? sock.slice(1, 5).reduce((a, b) => a + Number(b), 0) : 0;
  const rate = (from: number, to: number) => {
    let n = 0;
    for (let s = from; s < to; s++) n += [...(perSec.get(s)?.values() ?? [])].reduce((a, b) => a + b, 0);
    return to > from ? n / (to - from) : 0;
  };
  const mid = phases.before + Math.floor(phases.during / 2);
  return {
    served,
    firstServedMs: new Map(c.rows.slice(1).map((r) => [r.name, r.firstAt - r.startedAt])),
    failed: failed + wrkErrors,
    rpsBefore: rate(1, phases.before),
    rpsDuring: rate(mid, phases.before + phases.during),
  };
}
