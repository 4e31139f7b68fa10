/**
 * Running the benchmark programs inside the lab: natively (server on a node's own address), or as Boxer
 * applications (`boxer run` on both ends, the client connecting to the server's virtual address); one program
 * at a time (server(), client()) or a process group running an sh script (group(): under Boxer, one member
 * for all the script's programs). Every process is bounded in time (`timeout` around servers and groups,
 * timeoutMs on clients) and tracked so that it can be stopped; the lab's teardown kills whatever is left in
 * its namespaces.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Lab } from '../overlay';

export const ROOT = path.resolve(__dirname, '../..');
export const NETBENCH = path.join(ROOT, 'bench', 'netbench.py');
export const BOXER = path.join(ROOT, 'bin', 'boxer');
export const SHIM = path.join(ROOT, 'native', 'out', 'libboxer-shim.so');
export const PY = '/usr/bin/python3';
const SECRET = 'boxer benchmark secret, long enough';
const SEED_PORT = 7070;
/** Ports the benchmark servers listen on are drawn from this range, in turn (a port is not reused soon after). */
const PORT_LOW = 20000;
const PORT_HIGH = 60000;
/** Lines of a group's stdout kept for waitLine() (a group prints a few markers and one JSON line). */
const GROUP_MAX_LINES = 200;
/** Characters of a group's stderr kept for error messages. */
const GROUP_STDERR_TAIL = 4000;
/** Pause after the server's name resolved, before a Boxer client connects (client(), hostPrelude()). */
const RESOLVED_PAUSE_S = 0.3;

export type Mode = 'native' | 'boxer';

/** Single-quote for sh. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Marks the argument to replace by the server's address (its own, or its virtual one under Boxer). */
export const HOST = '\0HOST';

export class Runner {
  private readonly live = new Set<ChildProcess>();
  private seed?: ChildProcess;
  private names = 0;
  private port = PORT_LOW;

  constructor(readonly lab: Lab) {}

  nextPort(): number {
    this.port = this.port >= PORT_HIGH ? PORT_LOW : this.port + 1;
    return this.port;
  }

  /** k consecutive ports (one `ss` port range covers them), not yet handed out by nextPort(). */
  nextPorts(k: number): number[] {
    if (!(Number.isInteger(k) && k >= 1 && k <= PORT_HIGH - PORT_LOW)) throw new Error(`nextPorts: bad count ${k}`);
    if (this.port + k > PORT_HIGH) this.port = PORT_LOW - 1;
    const first = this.port + 1;
    this.port += k;
    return Array.from({ length: k }, (_, i) => first + i);
  }

  private env(): Record<string, string> {
    return { BOXER_SECRET: SECRET };
  }

  private seedAddr(): string {
    return `${this.lab.node('seed').address}:${SEED_PORT}`;
  }

  /** Starts the seed once (for Boxer variants and the agent's cost). */
  async ensureSeed(): Promise<void> {
    if (this.seed && this.seed.exitCode === null) return;
    this.seed = this.track(this.lab.spawn('seed', process.execPath, [BOXER, 'seed', '--listen', this.seedAddr()], { env: this.env(), stdio: ['ignore', 'ignore', 'pipe'] }));
    await this.waitListening('seed', SEED_PORT, 10_000);
  }

  private track(c: ChildProcess): ChildProcess {
    this.live.add(c);
    c.once('exit', () => this.live.delete(c));
    c.once('error', () => this.live.delete(c));
    return c;
  }

  /** Polls `ss` in the node until something listens on the TCP port (bounded). */
  async waitListening(node: string, port: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const r = await this.lab.exec(node, 'ss', ['-ltnH', `sport = :${port}`], { timeoutMs: 2000 });
      if (r.stdout.trim()) return;
      await sleep(50);
    }
    throw new Error(`nothing listens on ${node}:${port} after ${timeoutMs} ms`);
  }

  /**
   * Starts a server (argv) on node, killed after maxS seconds at the latest. Native: resolves once it
   * listens on port. Boxer: a member named `name`; the client waits for it (see client()).
   */
  async server(mode: Mode, node: string, argv: string[], port: number, maxS: number): Promise<{ name: string; stop: () => Promise<void> }> {
    const name = `bsrv${++this.names}`;
    const bounded = ['timeout', '-k', '2', String(Math.ceil(maxS)), ...argv];
    const child =
      mode === 'native'
        ? this.lab.spawn(node, bounded[0], bounded.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] })
        : this.lab.spawn(node, process.execPath, [BOXER, 'run', '--seed', this.seedAddr(), '--name', name, '--', ...bounded], { env: this.env(), stdio: ['ignore', 'ignore', 'pipe'] });
    this.track(child);
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2000)));
    if (mode === 'native') {
      try {
        await this.waitListening(node, port);
      } catch (e) {
        await stop(child);
        throw new Error(`${(e as Error).message}: ${stderr.trim()}`);
      }
    }
    return { name, stop: () => stop(child) };
  }

  /** Runs a client to completion (killed after timeoutMs); HOST in argv is the server's address. */
  async client(mode: Mode, node: string, argv: string[], server: { node: string; name: string }, timeoutMs: number): Promise<string> {
    let r;
    if (mode === 'native') {
      const host = this.lab.node(server.node).address;
      r = await this.lab.exec(node, argv[0], argv.slice(1).map((a) => (a === HOST ? host : a)), { timeoutMs });
    } else {
      const cmd = argv.map((a) => (a === HOST ? '"$H"' : shq(a))).join(' ');
      const script = `H=$(${PY} ${shq(NETBENCH)} resolve ${server.name} 15) || exit 99; sleep ${RESOLVED_PAUSE_S}; exec ${cmd}`;
      r = await this.lab.exec(node, process.execPath, [BOXER, 'run', '--seed', this.seedAddr(), '--name', `bcli${++this.names}`, '--', 'sh', '-c', script], {
        timeoutMs,
        env: this.env(),
      });
    }
    if (r.timedOut) throw new Error(`${argv.join(' ')} on ${node} timed out after ${timeoutMs} ms`);
    if (r.code !== 0) throw new Error(`${path.basename(argv[0])} on ${node} exited ${r.code ?? r.signal}: ${(r.stderr || r.stdout).trim().slice(-500)}`);
    return r.stdout;
  }

  /**
   * The sh code that puts the server's address into $H: its own address natively; under Boxer the virtual
   * address of member `server.name`, resolved from the member file (at most maxS seconds), or exit 99.
   */
  hostPrelude(mode: Mode, server: { node: string; name: string }, maxS: number): string {
    if (mode === 'native') return `H=${shq(this.lab.node(server.node).address)}`;
    return `H=$(${PY} ${shq(NETBENCH)} resolve ${shq(server.name)} ${Math.ceil(maxS)}) || exit 99; sleep ${RESOLVED_PAUSE_S}`;
  }

  /**
   * Starts `sh -c script` on node as one process group, killed after maxS seconds at the latest (`timeout`
   * kills its whole group, background jobs included, and passes SIGTERM on to it as well). Under Boxer the
   * group runs inside one member (`boxer run --name NAME`), so every program of the script is a Boxer
   * application of the same agent. `pid` is the process the lab started (ip netns exec and setpriv exec in
   * place): `timeout` natively, the agent's node process under Boxer (see agentPid()).
   */
  group(mode: Mode, node: string, script: string, maxS: number, prefix = 'bgrp', opts: { name?: string; args?: string[]; env?: Record<string, string> } = {}): Group {
    const name = opts.name ?? `${prefix}${++this.names}`;
    const bounded = ['timeout', '-k', '2', String(Math.ceil(maxS)), 'sh', '-c', script];
    const env = { ...this.env(), ...opts.env };
    const child =
      mode === 'native'
        ? this.lab.spawn(node, bounded[0], bounded.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] })
        : this.lab.spawn(node, process.execPath, [BOXER, 'run', '--seed', this.seedAddr(), '--name', name, ...(opts.args ?? []), '--', ...bounded], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.track(child);
    const out = watchOutput(child, `${name} on ${node}`);
    return {
      name,
      node,
      child,
      get pid() {
        return child.pid;
      },
      get running() {
        return running(child);
      },
      stderr: out.stderr,
      exited: out.exited,
      stop: () => stop(child),
      waitLine: out.waitLine,
    };
  }

  /** The pid of a Boxer group's agent (`boxer run --name NAME`), checked against its command line. */
  agentPid(g: Group): number {
    const pid = g.pid;
    if (!pid) throw new Error(`${g.name} on ${g.node} did not start`);
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      throw new Error(`${g.name} on ${g.node} (pid ${pid}) is gone: ${g.stderr().slice(-300)}`);
    }
    const i = argv.indexOf('--name');
    if (!argv.includes('run') || i < 0 || argv[i + 1] !== g.name) throw new Error(`pid ${pid} is not the agent of ${g.name}: ${argv.join(' ').slice(0, 200)}`);
    return pid;
  }

  /** Spawns a long-lived process (the idle agent) tracked for cleanup. */
  spawnTracked(node: string, argv: string[]): ChildProcess {
    return this.track(this.lab.spawn(node, argv[0], argv.slice(1), { env: this.env(), stdio: ['ignore', 'ignore', 'ignore'] }));
  }

  seedAddress(): string {
    return this.seedAddr();
  }

  /** Stops every process this runner started (SIGTERM, then SIGKILL). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.live].map((c) => stop(c)));
  }
}

/** A process group started by Runner.group(). */
export interface Group {
  /** Its member name under Boxer (unused natively). */
  readonly name: string;
  readonly node: string;
  readonly child: ChildProcess;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** The last GROUP_STDERR_TAIL characters of its stderr (the agent's and the script's). */
  stderr(): string;
  /** Resolves once it exited. */
  readonly exited: Promise<void>;
  /** The first stdout line (counting lines already printed) that pred accepts; rejects on exit or timeout. */
  waitLine(pred: (line: string) => boolean, timeoutMs: number): Promise<string>;
  stop(): Promise<void>;
}

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * A group's output: its stdout lines (the last GROUP_MAX_LINES), the tail of its stderr, waitLine() for a line
 * that `pred` accepts (failing when the process exits first or at the timeout), and its exit.
 */
function watchOutput(child: ChildProcess, what: string): Pick<Group, 'stderr' | 'exited' | 'waitLine'> {
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    if (lines.length > GROUP_MAX_LINES) lines.splice(0, lines.length - GROUP_MAX_LINES);
    for (const w of [...waiters]) w();
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-GROUP_STDERR_TAIL)));
  const exited = new Promise<void>((resolve) => {
    const done = () => {
      for (const w of [...waiters]) w();
      resolve();
    };
    child.once('exit', done);
    child.once('error', done);
  });
  const waitLine = (pred: (line: string) => boolean, timeoutMs: number) =>
    new Promise<string>((resolve, reject) => {
      let seen = 0;
      const check = () => {
        for (; seen < lines.length; seen++) {
          if (pred(lines[seen])) {
            finish();
            resolve(lines[seen]);
            return;
          }
        }
        if (!running(child)) {
          finish();
          reject(new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before the expected line: ${stderr.trim().slice(-500)}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${what}: no expected line within ${timeoutMs} ms: ${stderr.trim().slice(-500)}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  return { stderr: () => stderr.trim(), exited, waitLine };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** SIGTERM (`timeout` and `boxer run` pass it on), then SIGKILL after 2 s; resolves once it exited. */
export function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => c.kill('SIGKILL'), 2000);
    c.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    c.kill('SIGTERM');
  });
}

/**
 * Whether Boxer's data path works here: the shim is built, and a Boxer application on vm1 connects to a
 * Boxer application on vm2 by its virtual address and reads a byte from it, within about 25 s.
 */
export async function boxerDataPathAvailable(runner: Runner): Promise<{ available: boolean; reason: string }> {
  if (!fs.existsSync(SHIM)) return { available: false, reason: `${path.relative(ROOT, SHIM)} is missing (npm run build:native)` };
  try {
    await runner.ensureSeed();
    const port = runner.nextPort();
    const srv = await runner.server('boxer', 'vm2', [PY, NETBENCH, 'serve-byte', String(port), '20'], port, 20);
    try {
      const out = await runner.client('boxer', 'vm1', [PY, NETBENCH, 'ttfb', HOST, String(port), '1', '5'], { node: 'vm2', name: srv.name }, 20_000);
      const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { us?: number[]; error?: string };
      if (!r.us || r.us.length !== 1) return { available: false, reason: `a Boxer application on vm1 could not connect to one on vm2 by its virtual address (${r.error ?? out.trim().slice(-200)})` };
      return { available: true, reason: `a Boxer connect vm1 → vm2 by virtual address took ${r.us[0].toFixed(0)} us` };
    } finally {
      await srv.stop();
    }
  } catch (e) {
    return { available: false, reason: `a Boxer connect vm1 → vm2 by virtual address failed: ${(e as Error).message.replace(/\s+/g, ' ').slice(0, 300)}` };
  }
}
