/**
 * The cost cases of `npm run bench`: the agents' CPU during connection setups, an idle agent's memory and CPU,
 * and the size of the deployable package.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dependencyClosure } from '../src/lambda/package';
import { NETBENCH, PY, ROOT, BOXER, sleep, type Group, type Runner } from './runner';
import { median } from './stats';
import type { Bench } from './cases';

/**
 * Agent CPU during connection setups: a pair whose connections the agents set up directly (two VMs), and a
 * punched function-to-function pair (both agents take part in every connection). Figures are per SETUP_PER
 * connections; each repetition runs cfg.setupN of them.
 */
const SETUP_PAIRS = [
  { id: 'vm-to-vm', label: 'VM-to-VM, direct', client: 'vm1', server: 'vm2' },
  { id: 'fn-to-fn', label: 'function-to-function, punched', client: 'fp', server: 'fsa' },
] as const;
const SETUP_PER = 1000;
/** The client member waits this long after resolving the server before the first reading (join traffic done). */
const SETUP_QUIET_S = 1;
/** Bound on the n connections (netbench's MAX_S) and on the server's life. */
const SETUP_MAX_S = 90;
/** Bound on a member's start: join, resolve, the server's "ready", the client's "start". */
const SETUP_START_MAX_S = 30;
/** The client member idles this long after its connections, so that it is alive at the second reading. */
const SETUP_HOLD_S = 10;

/** The deployable package's size. */
export function planPackage(b: Bench): void {
  const pkg = b.define({ id: 'cost/package', group: 'cost', title: 'deployable package (agent, shim, addon, production node_modules; tar+gzip)', unit: 'MB', better: 'lower' }, ['boxer'], { boxer: 'one measurement' }, false, '');
  b.tasks.push({
    label: 'agent package size',
    group: 'cost',
    ids: [pkg.c.id],
    run: async () => {
      try {
        const p = packageSize();
        pkg.modes.boxer!.values.push(p.totalBytes / 1e6);
        pkg.modes.boxer!.note = p.parts.map((x) => `${x.name} ${(x.gz / 1e6).toFixed(2)} MB (${(x.raw / 1e6).toFixed(1)} MB unpacked)`).join('; ');
      } catch (e) {
        pkg.modes.boxer!.errors.push((e as Error).message.slice(0, 300));
      }
    },
  });
}

/** An idle agent's memory and CPU. */
export function planIdle(b: Bench): void {
  const cfg = b.cfg;
  const rss = b.define({ id: 'cost/idle-rss', group: 'cost', title: 'resident memory of an idle agent (`boxer run -- sleep`, on vm1)', unit: 'MB', better: 'lower' }, ['boxer'], { boxer: 'one agent' }, false, '');
  const cpu = b.define({ id: 'cost/idle-cpu', group: 'cost', title: `CPU of an idle agent over ${cfg.idleSeconds} s`, unit: '% of a core', better: 'lower' }, ['boxer'], { boxer: 'one agent' }, false, '');
  b.tasks.push({
    label: `idle agent (${cfg.idleSeconds} s)`,
    group: 'cost',
    ids: [rss.c.id, cpu.c.id],
    run: async () => {
      try {
        const v = await idleAgent(b.runner, cfg.idleSeconds);
        rss.modes.boxer!.values.push(v.rssMb);
        cpu.modes.boxer!.values.push(v.cpuPct);
      } catch (e) {
        for (const a of [rss, cpu]) a.modes.boxer!.errors.push((e as Error).message.slice(0, 300));
      }
    },
  });
}

/** The agents' CPU per connection setup (SETUP_PAIRS). */
export function planSetupCpu(b: Bench): void {
  const cfg = b.cfg;
  for (const p of SETUP_PAIRS) {
    const over = `${cfg.setupReps}×${cfg.setupN} connections (netbench ttfb), utime+stime of the agent's process${cfg.setupN !== SETUP_PER ? `, scaled to ${SETUP_PER}` : ''}`;
    const reason = b.boxer.available ? '' : `needs the Boxer data path, not available: ${b.boxer.reason}`;
    const side = (s: 'client' | 'server') =>
      b.define(
        { id: `cost/setup-cpu/${p.id}/${s}`, group: 'cost', title: `agent CPU per ${SETUP_PER} connection setups, ${p.label}: the ${s === 'client' ? `client's (${p.client})` : `server's (${p.server})`} agent`, unit: 'ms', better: 'lower' },
        ['boxer'],
        { boxer: over },
        false,
        reason,
      );
    const cs = side('client');
    const ss = side('server');
    if (!b.boxer.available) continue;
    const took: number[] = [];
    const p50s: number[] = [];
    for (let rep = 1; rep <= cfg.setupReps; rep++) {
      b.tasks.push({
        label: `setup CPU ${p.id} (${cfg.setupN} connections), rep ${rep}/${cfg.setupReps}`,
        group: 'cost',
        ids: [cs.c.id, ss.c.id],
        run: async () => {
          try {
            const v = await setupCpu(b.runner, p.client, p.server, cfg.setupN);
            cs.modes.boxer!.values.push(v.clientMs * (SETUP_PER / cfg.setupN));
            ss.modes.boxer!.values.push(v.serverMs * (SETUP_PER / cfg.setupN));
            took.push(v.seconds);
            p50s.push(v.p50Us);
            const note = `the ${cfg.setupN} connections took ${num3(median(took))} s (TTFB p50 ${num3(median(p50s))} us; median of the runs), the agent's idle CPU over that time included`;
            cs.modes.boxer!.note = ss.modes.boxer!.note = note;
          } catch (e) {
            for (const a of [cs, ss]) a.modes.boxer!.errors.push((e as Error).message.replace(/\s+/g, ' ').slice(0, 300));
          }
        },
      });
    }
  }
}

/**
 * CPU time of both agents while a Boxer client on `client` makes n connections (connect, 1 byte back,
 * close) to a Boxer server on `server`. The client member resolves the server, stays quiet for
 * SETUP_QUIET_S (both agents have finished with its join), prints `start`, runs netbench ttfb (its JSON
 * line ends the measurement) and then idles until stopped, so that both agents are alive at both readings.
 */
export async function setupCpu(r: Runner, client: string, server: string, n: number): Promise<{ clientMs: number; serverMs: number; seconds: number; p50Us: number }> {
  await r.ensureSeed();
  const port = r.nextPort();
  const groups: Group[] = [];
  try {
    const srv = r.group('boxer', server, `exec ${PY} ${NETBENCH} serve-byte ${port} ${SETUP_MAX_S}`, SETUP_MAX_S + SETUP_HOLD_S + SETUP_START_MAX_S, 'cpusrv');
    groups.push(srv);
    await srv.waitLine((l) => l === 'ready', SETUP_START_MAX_S * 1000);
    const script = [
      r.hostPrelude('boxer', { node: server, name: srv.name }, SETUP_START_MAX_S),
      `sleep ${SETUP_QUIET_S}`,
      'echo start',
      `${PY} ${NETBENCH} ttfb "$H" ${port} ${n} ${SETUP_MAX_S} || exit $?`,
      `sleep ${SETUP_HOLD_S}`,
    ].join('\n');
    const cli = r.group('boxer', client, script, SETUP_MAX_S + SETUP_HOLD_S + SETUP_START_MAX_S, 'cpucli');
    groups.push(cli);
    await cli.waitLine((l) => l === 'start', SETUP_START_MAX_S * 1000);
    const pc = r.agentPid(cli);
    const ps = r.agentPid(srv);
    const c0 = cpuTicks(pc);
    const s0 = cpuTicks(ps);
    const t0 = performance.now();
    const line = await cli.waitLine((l) => l.startsWith('{'), (SETUP_MAX_S + SETUP_START_MAX_S) * 1000);
    const c1 = cpuTicks(pc);
    const s1 = cpuTicks(ps);
    const t1 = performance.now();
    const res = JSON.parse(line) as { us: number[]; errors: number; truncated: boolean; error?: string };
    if (res.errors || res.truncated || res.us.length !== n) throw new Error(`ttfb: ${res.us.length} of ${n} connections, ${res.errors} errors${res.truncated ? ', stopped at the time limit' : ''}${res.error ? ` (${res.error})` : ''}`);
    const ms = (ticks: number) => (ticks / clockTicks()) * 1000;
    return { clientMs: ms(c1 - c0), serverMs: ms(s1 - s0), seconds: (t1 - t0) / 1000, p50Us: median(res.us) };
  } finally {
    await Promise.all(groups.map((g) => g.stop()));
  }
}

/** Resident memory and CPU of an idle agent (`boxer run -- sleep` on vm1) over `seconds`. */
export async function idleAgent(r: Runner, seconds: number): Promise<{ rssMb: number; cpuPct: number }> {
  await r.ensureSeed();
  const child = r.spawnTracked('vm1', [process.execPath, BOXER, 'run', '--seed', r.seedAddress(), '--name', 'idle-agent', '--', 'sleep', String(seconds + 30)]);
  try {
    const pid = child.pid;
    if (!pid) throw new Error('the agent did not start');
    // joined: the agent has started its command (sleep) as a child
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && !childrenOf(pid).length) await sleep(100);
    if (!childrenOf(pid).length) throw new Error('the agent did not join within 15 s');
    await sleep(1000);
    const t0 = cpuTicks(pid);
    const w0 = Date.now();
    await sleep(seconds * 1000);
    const ticks = cpuTicks(pid) - t0;
    const wall = (Date.now() - w0) / 1000;
    const rss = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (!rss) throw new Error('no VmRSS');
    return { rssMb: Number(rss[1]) / 1024, cpuPct: (ticks / clockTicks() / wall) * 100 };
  } finally {
    child.kill('SIGTERM');
  }
}

function childrenOf(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Clock ticks per second of /proc/PID/stat's times (getconf CLK_TCK; 100 where it cannot say). */
let CLK_TCK: number | undefined;
function clockTicks(): number {
  CLK_TCK ??= Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  return CLK_TCK;
}

/** Three significant digits for notes. */
function num3(v: number): string {
  return Number.isFinite(v) ? String(Number(v.toPrecision(3))) : '–';
}

function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
}

/**
 * Production dependencies' directories, without ones inside another, and without the AWS SDK clients: those are
 * for `boxer lambda deploy/run/destroy` on the user's machine; a function gets the SDK from its runtime
 * (nodejs22.x), as `boxer lambda package` assumes.
 */
function productionModules(): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const names = Object.keys(pkg.dependencies ?? {}).filter((d) => !d.startsWith('@aws-sdk/'));
  const dirs = [...new Set(dependencyClosure(ROOT, names).values())].sort();
  return dirs.filter((d) => !dirs.some((o) => o !== d && d.startsWith(o + path.sep)));
}

function gzSize(files: string[]): { raw: number; gz: number } {
  const rel = files.map((f) => path.relative(ROOT, f));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-pkg-'));
  try {
    const list = path.join(tmp, 'files');
    fs.writeFileSync(list, rel.join('\n') + '\n');
    const tgz = path.join(tmp, 'p.tgz');
    execFileSync('tar', ['-czf', tgz, '-C', ROOT, '--exclude=*.map', '--exclude=*.ts', '-T', list], { timeout: 120_000 });
    const tar = path.join(tmp, 'p.tar');
    execFileSync('tar', ['-cf', tar, '-C', ROOT, '--exclude=*.map', '--exclude=*.ts', '-T', list], { timeout: 120_000 });
    return { raw: fs.statSync(tar).size, gz: fs.statSync(tgz).size };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export function packageSize(): { totalBytes: number; parts: { name: string; raw: number; gz: number }[] } {
  const glob = (dir: string, re: RegExp) => (fs.existsSync(path.join(ROOT, dir)) ? fs.readdirSync(path.join(ROOT, dir)).filter((f) => re.test(f)).map((f) => path.join(ROOT, dir, f)) : []);
  const groups: { name: string; files: string[] }[] = [
    { name: 'agent (dist/src, bin/boxer)', files: [path.join(ROOT, 'dist/src'), path.join(ROOT, 'bin/boxer')].filter((f) => fs.existsSync(f)) },
    { name: 'shim (native/out/*.so)', files: glob('native/out', /\.so$/) },
    { name: 'addon (native/build/Release/*.node, native/index.js)', files: [...glob('native/build/Release', /\.node$/), ...glob('native', /^index\.js$/)] },
    { name: 'production node_modules', files: productionModules() },
  ];
  const parts = groups.filter((g) => g.files.length).map((g) => ({ name: g.name, ...gzSize(g.files) }));
  const all = gzSize(groups.flatMap((g) => g.files));
  return { totalBytes: all.gz, parts };
}

/**
 * A member's join in the lab: `boxer run -- sh -c 'echo joined'` started on a node, timed from the spawn to
 * the command's first line (the agent's start, NAT discovery against the seed through the node's NAT, the
 * join, the files written). The nodes: a function behind a port-preserving NAT, one behind a translating NAT,
 * and a VM (open: the seed's connect-back reaches it).
 */
export const JOIN_NODES = [
  { node: 'fp', label: 'function behind a port-preserving NAT (fp)' },
  { node: 'fta', label: 'function behind a translating NAT (fta)' },
  { node: 'vm1', label: 'VM, no NAT (vm1)' },
] as const;
/** Bound on one member's start to joined (a hang, not a figure). */
const JOIN_MAX_S = 20;

export function planJoinLab(b: Bench): void {
  const cfg = b.cfg;
  const reps = cfg.quick ? 3 : 10;
  for (const j of JOIN_NODES) {
    const a = b.define({ id: `membership/join/${j.node}`, group: 'membership', title: `process start → joined in the lab: ${j.label}`, unit: 'ms', better: 'lower' }, ['boxer'], { boxer: `${reps} members started one after another` }, true, '');
    b.tasks.push({
      label: `join in the lab from ${j.node} (${reps} members)`,
      group: 'membership',
      ids: [a.c.id],
      run: async () => {
        try {
          await b.runner.ensureSeed();
          for (let i = 0; i < reps; i++) a.modes.boxer!.values.push(await joinOnce(b.runner, j.node));
        } catch (e) {
          a.modes.boxer!.errors.push((e as Error).message.replace(/\s+/g, ' ').slice(0, 300));
        }
      },
    });
  }
}

async function joinOnce(r: Runner, node: string): Promise<number> {
  const t0 = performance.now();
  const g = r.group('boxer', node, 'echo joined', JOIN_MAX_S, 'join');
  try {
    await g.waitLine((l) => l === 'joined', JOIN_MAX_S * 1000);
    const ms = performance.now() - t0;
    await g.exited;
    return ms;
  } catch (e) {
    throw new Error(`${(e as Error).message}: ${g.stderr().slice(-300)}`);
  } finally {
    await g.stop();
  }
}

/** Members known when the agent's CPU per membership change is measured (bench/member-change.ts). */
const CHANGE_N = 1000;

/** The agent's CPU per membership change at CHANGE_N members, in a child process (bench/member-change.ts). */
export function planMemberChange(b: Bench): void {
  const reps = b.cfg.quick ? 1 : 3;
  const over = `${reps} runs of bench/member-change.ts`;
  const burst = b.define({ id: `cost/member-change-cpu/${CHANGE_N}`, group: 'cost', title: `agent CPU per membership change at ${CHANGE_N} members (a join wave: files written once per interval)`, unit: 'ms', better: 'lower' }, ['boxer'], { boxer: over }, false, '');
  const spaced = b.define({ id: `cost/member-change-cpu/${CHANGE_N}/alone`, group: 'cost', title: `agent CPU per membership change at ${CHANGE_N} members, one at a time (each writes the member file and the route table)`, unit: 'ms', better: 'lower' }, ['boxer'], { boxer: over }, false, '');
  b.tasks.push({
    label: `agent CPU per membership change at ${CHANGE_N} members (${reps} runs)`,
    group: 'cost',
    ids: [burst.c.id, spaced.c.id],
    run: async () => {
      try {
        for (let i = 0; i < reps; i++) {
          const out = execFileSync(process.execPath, [path.join(__dirname, 'member-change.js'), String(CHANGE_N)], { encoding: 'utf8', timeout: 120_000 });
          const r = JSON.parse(out.trim().split('\n').pop()!) as { burstMs: number; spacedMs: number };
          burst.modes.boxer!.values.push(r.burstMs);
          spaced.modes.boxer!.values.push(r.spacedMs);
        }
        burst.modes.boxer!.note = spaced.modes.boxer!.note = `load average ${os.loadavg()[0].toFixed(1)}`;
      } catch (e) {
        for (const a of [burst, spaced]) a.modes.boxer!.errors.push((e as Error).message.slice(0, 300));
      }
    },
  });
}
