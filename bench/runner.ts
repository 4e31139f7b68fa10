/**
 * Running the benchmark programs inside the lab: natively (server on a node's own address), or as Boxer
 * applications (`boxer run` on both ends, the client connecting to the server's virtual address). Every
 * process is bounded in time (`timeout` around servers, timeoutMs on clients) and tracked so that it can be
 * stopped; the lab's teardown kills whatever is left in its namespaces.
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
  private port = 20000;

  constructor(readonly lab: Lab) {}

  nextPort(): number {
    this.port = this.port >= 60000 ? 20000 : this.port + 1;
    return this.port;
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
      const script = `H=$(${PY} ${shq(NETBENCH)} resolve ${server.name} 15) || exit 99; sleep 0.3; exec ${cmd}`;
      r = await this.lab.exec(node, process.execPath, [BOXER, 'run', '--seed', this.seedAddr(), '--name', `bcli${++this.names}`, '--', 'sh', '-c', script], {
        timeoutMs,
        env: this.env(),
      });
    }
    if (r.timedOut) throw new Error(`${argv.join(' ')} on ${node} timed out after ${timeoutMs} ms`);
    if (r.code !== 0) throw new Error(`${path.basename(argv[0])} on ${node} exited ${r.code ?? r.signal}: ${(r.stderr || r.stdout).trim().slice(-500)}`);
    return r.stdout;
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
