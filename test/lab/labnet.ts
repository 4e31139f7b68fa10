/**
 * A Boxer network inside the lab for the data-path tests: a seed on the public host `seed` and members
 * (`boxer run`, as the function user) on the lab's nodes, each running a command; their output is collected,
 * and everything is stopped at the end (a stop file first, then SIGKILL), even when a test fails.
 */
import path from 'node:path';
import fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import type { Lab } from '../../overlay';

export const ROOT = path.resolve(__dirname, '../../..');
export const BOXER = path.join(ROOT, 'bin/boxer');
export const PROGRAMS = path.join(ROOT, 'test/programs');
export const SECRET = 'lab secret for the data path tests';
/** Bound on waiting for a member's output (against hangs only; the machine is shared and slow). */
export const OUTPUT_WAIT_MS = 120_000;

let nextPort = 7100;

export interface Member {
  node: string;
  name: string;
  child: ChildProcess;
  out: () => string;
  err: () => string;
}

export class LabNet {
  readonly port = nextPort++;
  readonly seedAddr: string;
  readonly stopFile: string;
  private readonly children: ChildProcess[] = [];
  readonly members: Member[] = [];
  private seedErr = '';
  /** The seed's process (for fault injection: kill -9 of the seed). */
  seedProc: ChildProcess | null = null;

  constructor(private readonly lab: Lab) {
    this.seedAddr = `${lab.node('seed').address}:${this.port * 2}`;
    this.stopFile = path.join('/tmp', `${lab.prefix}-stop-${this.port}`);
  }

  async startSeed(): Promise<void> {
    const seed = this.lab.spawn('seed', process.execPath, [BOXER, 'seed', '--listen', this.seedAddr], { env: { BOXER_SECRET: SECRET } });
    this.children.push(seed);
    this.seedProc = seed;
    seed.stderr!.on('data', (d: Buffer) => (this.seedErr += d.toString()));
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the seed did not start: ${this.seedErr}`)), 20_000);
      seed.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('listening on')) {
          clearTimeout(t);
          resolve();
        }
      });
    });
  }

  /** Starts `boxer run --name NAME [--service S] --nodes N [ARGS] -- CMD` on lab node `node`. */
  member(node: string, name: string, nodes: number, cmd: string[], opts: { services?: string[]; env?: Record<string, string>; args?: string[] } = {}): Member {
    const args = ['run', '--seed', this.seedAddr, '--name', name, '--nodes', String(nodes), ...(opts.services ?? []).flatMap((s) => ['--service', s]), ...(opts.args ?? []), '--', ...cmd];
    const child = this.lab.spawn(node, process.execPath, [BOXER, ...args], { env: { BOXER_SECRET: SECRET, STOP: this.stopFile, ...opts.env } });
    this.children.push(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const m = { node, name, child, out: () => out, err: () => err };
    this.members.push(m);
    return m;
  }

  /** Waits until `re` appears in the member's stdout. */
  async waitFor(m: Member, re: RegExp, ms = OUTPUT_WAIT_MS): Promise<RegExpExecArray> {
    const start = Date.now();
    for (;;) {
      const hit = re.exec(m.out());
      if (hit) return hit;
      if (m.child.exitCode !== null && !re.exec(m.out())) throw new Error(`${m.name} exited (${m.child.exitCode}) before ${re}:\n${m.out()}\n${m.err()}`);
      if (Date.now() - start > ms) throw new Error(`timed out waiting for ${re} from ${m.name}:\n${m.out()}\n--- stderr:\n${m.err()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  exited(m: Member, ms = OUTPUT_WAIT_MS): Promise<number | null> {
    return new Promise((resolve, reject) => {
      if (m.child.exitCode !== null) return resolve(m.child.exitCode);
      const t = setTimeout(() => reject(new Error(`${m.name} did not exit within ${ms} ms:\n${m.out()}\n${m.err()}`)), ms);
      m.child.once('exit', (code) => {
        clearTimeout(t);
        resolve(code);
      });
    });
  }

  /** `boxer status --json` of the member on `node` (its only agent there). */
  async status(node: string): Promise<Record<string, unknown>> {
    const r = await this.lab.exec(node, process.execPath, [BOXER, 'status', '--json'], { timeoutMs: 20_000 });
    if (r.code !== 0) throw new Error(`boxer status on ${node}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }

  async stop(): Promise<void> {
    fs.writeFileSync(this.stopFile, '');
    await new Promise((r) => setTimeout(r, 500));
    for (const c of this.children.reverse()) if (c.exitCode === null) c.kill('SIGKILL');
    // The stop file and the files tests put beside it (`${stopFile}-NAME`).
    const dir = path.dirname(this.stopFile);
    const base = path.basename(this.stopFile);
    for (const f of fs.readdirSync(dir).filter((n) => n === base || n.startsWith(`${base}-`))) fs.rmSync(path.join(dir, f), { force: true });
  }
}
