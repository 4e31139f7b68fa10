/**
 * A Lambda execution environment for tests, built from AWS's own parts: the Runtime Interface Emulator
 * (aws-lambda-rie, Go, built by .ci/setup into .tools/bin) serves the Runtime API
 * (GET /2018-06-01/runtime/invocation/next with Lambda-Runtime-Deadline-Ms and Lambda-Runtime-Aws-Request-Id,
 * POST .../response and .../error), and AWS's Node.js runtime interface client (npm aws-lambda-ric) runs the
 * package's `index.handler` against it. Around them, what Lambda does and the emulator does not:
 *   - the environment is frozen between invocations (a cgroup v1 freezer; SIGSTOP of the process tree where
 *     there is none) and thawed for the next one, so leftovers of an invocation really are frozen and thawed;
 *   - at the deadline every process of the environment but the emulator is killed (the emulator restarts the
 *     runtime for the next invocation, as Lambda does);
 *   - the code directory is read-only, HOME is unset, the function's only writable directory is its own
 *     /tmp (here: TMPDIR, a fresh directory), and in the lab it runs inside a function's network namespace as
 *     the unprivileged user, behind the lab's NATs;
 *   - the AWS SDK v3 comes from the "runtime" (NODE_PATH, as on nodejs22.x), not from the package.
 *
 * Used by the Lambda tests here and by `boxer lambda run`'s end-to-end lab test (lambda-aws).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Lab } from '../../overlay';
import { dependencyClosure, AWS_SDK_CLIENTS } from '../../src/lambda/package';
import { freePort } from './procs';

export const ROOT = path.resolve(__dirname, '../../..');
export const RIE = path.join(ROOT, '.tools', 'bin', 'aws-lambda-rie');
export const RIC = path.join(ROOT, 'node_modules', 'aws-lambda-ric', 'index.mjs');
const FREEZER_ROOT = '/sys/fs/cgroup/freezer';
/** Bound on the emulator coming up (against hangs only). */
const START_WAIT_MS = 20_000;
/** What the emulator answers when the function ran out of time. */
const TIMED_OUT_RE = /^Task timed out after [\d.]+ seconds/;

export type InvokeOutcome =
  | { ok: true; result: unknown; requestId: string }
  | { ok: false; error: { errorType: string; errorMessage: string }; requestId: string };

export interface EnvironmentOptions {
  /** The unpacked package (index.js at its root). It is made read-only for the function. */
  codeDir: string;
  /** The function's configured environment variables (BOXER_SECRET, AWS_ENDPOINT_URL, credentials, ...). */
  env?: Record<string, string>;
  /** Run inside this lab's function `node` (its network namespace, as the unprivileged user). */
  lab?: Lab;
  node?: string;
  /** The function's timeout (default 30 s): Lambda-Runtime-Deadline-Ms and the kill at the deadline. */
  timeoutS?: number;
  functionName?: string;
}

/** Why an official part cannot be used here (null: both are there). */
export function runtimeUnavailable(): string | null {
  if (!fs.existsSync(RIE)) return `the Runtime Interface Emulator is not built (${path.relative(ROOT, RIE)}): run .ci/setup (needs Go and the Go module proxy)`;
  if (!fs.existsSync(RIC)) return 'aws-lambda-ric is not installed: run npm ci';
  if (!fs.existsSync(path.join(path.dirname(RIC), 'rapid-client.node'))) return "aws-lambda-ric's native client was not built (its install scripts need cmake and a C++ compiler): run npm ci after .ci/setup";
  return null;
}

let counter = 0;

/** A directory like Lambda's /var/runtime/node_modules: only the AWS SDK clients the handler uses. */
function sdkRuntimeDir(into: string): string {
  const dir = path.join(into, 'node_modules');
  for (const [rel, real] of dependencyClosure(ROOT, AWS_SDK_CLIENTS)) {
    const parts = rel.split(path.sep);
    if (parts.filter((p) => p === 'node_modules').length !== 1) continue; // nested copies resolve from their parent
    const link = path.join(dir, ...parts.slice(1));
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(real, link);
  }
  return dir;
}

/** Every process whose parent chain reaches `root` (root included), from /proc. */
function processTree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, pp] of parent) if (pp === out[i]) out.push(pid);
  return out;
}

export class LambdaEnvironment {
  private frozen = false;
  private closed = false;
  private log = '';
  private cgroup: string | null = null;

  private constructor(
    private readonly o: EnvironmentOptions,
    private readonly rie: ChildProcess,
    private readonly port: number,
    /** The function's writable directory (its /tmp). */
    readonly tmpDir: string,
    private readonly workDir: string,
    private readonly runtimeDir: string,
  ) {
    rie.stdout?.setEncoding('utf8').on('data', (d: string) => this.appendLog(d));
    rie.stderr?.setEncoding('utf8').on('data', (d: string) => this.appendLog(d));
  }

  private appendLog(d: string): void {
    this.log = (this.log + d).slice(-256 * 1024);
  }

  /** What the emulator, the runtime and the handler wrote (stdout and stderr), the last 256 KiB. */
  logs(): string {
    return this.log;
  }

  /** The processes of the environment now (the emulator, the runtime, the handler's command, ...). */
  pids(): number[] {
    if (this.cgroup) return fs.readFileSync(path.join(this.cgroup, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    return this.rie.pid ? processTree(this.rie.pid) : [];
  }

  /** Whether the environment is frozen now (between invocations). */
  get isFrozen(): boolean {
    return this.frozen;
  }

  /**
   * Starts one execution environment as Lambda sets one up: the function's /tmp, the runtime's directory, the
   * environment Lambda gives a function, the Runtime Interface Emulator with its runtime, then waits for its API
   * (long as a recipe is: the steps are the published environment's, in order; a failed start is closed).
   */
  static async start(o: EnvironmentOptions): Promise<LambdaEnvironment> {
    const why = runtimeUnavailable();
    if (why) throw new Error(why);
    if (!fs.existsSync(path.join(o.codeDir, 'index.js'))) throw new Error(`no index.js in ${o.codeDir}: give the unpacked package`);
    if (o.lab && !o.node) throw new Error('a lab environment needs the lab node (a function) to run in');
    const id = `${process.pid}-${counter++}-${crypto.randomBytes(3).toString('hex')}`;
    // The function's own /tmp: under the lab node's directory (its user owns it) or the system's.
    const base = o.lab ? o.lab.node(o.node!).tmpdir! : os.tmpdir();
    const workDir = fs.mkdtempSync(path.join(base, `lambda-${id}-`));
    const tmpDir = path.join(workDir, 'tmp');
    fs.mkdirSync(tmpDir, { mode: 0o700 });
    const runtimeDir = path.join(os.tmpdir(), `boxer-lambda-runtime-${id}`);
    fs.mkdirSync(runtimeDir, { recursive: true });
    const nodePath = sdkRuntimeDir(runtimeDir);
    readOnly(o.codeDir);
    const timeoutS = o.timeoutS ?? 30;
    const port = o.lab ? 9300 + (counter % 300) : await freePort();
    const apiPort = o.lab ? port + 300 : await freePort();
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      LANG: 'C.UTF-8',
      TMPDIR: tmpDir,
      LAMBDA_TASK_ROOT: o.codeDir,
      LAMBDA_RUNTIME_DIR: path.dirname(RIC),
      NODE_PATH: nodePath,
      AWS_LAMBDA_FUNCTION_NAME: o.functionName ?? 'boxer-test',
      AWS_LAMBDA_FUNCTION_TIMEOUT: String(timeoutS),
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '1769',
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-1',
      ...o.env,
    };
    const argv = [
      '-u',
      'HOME',
      RIE,
      '--log-level',
      'error',
      '--runtime-interface-emulator-address',
      `127.0.0.1:${port}`,
      '--runtime-api-address',
      `127.0.0.1:${apiPort}`,
      process.execPath,
      RIC,
      'index.handler',
    ];
    if (o.lab) fs.chownSync(workDir, fs.statSync(base).uid, fs.statSync(base).gid), fs.chownSync(tmpDir, fs.statSync(base).uid, fs.statSync(base).gid);
    const rie = o.lab
      ? o.lab.spawn(o.node!, '/usr/bin/env', argv, { env, cwd: o.codeDir, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('/usr/bin/env', argv, { env, cwd: o.codeDir, stdio: ['ignore', 'pipe', 'pipe'] });
    const e = new LambdaEnvironment(o, rie, port, tmpDir, workDir, runtimeDir);
    e.cgroup = e.makeFreezer(id);
    try {
      await e.waitListening();
    } catch (err) {
      await e.close();
      throw err;
    }
    e.freeze();
    return e;
  }

  /** A freezer cgroup holding the emulator (and so everything it starts); null where there is none. */
  private makeFreezer(id: string): string | null {
    const dir = path.join(FREEZER_ROOT, `boxer-lambda-${id}`);
    try {
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(this.rie.pid));
      return dir;
    } catch {
      try {
        fs.rmdirSync(dir);
      } catch {
        /* never made */
      }
      return null;
    }
  }

  private async waitListening(): Promise<void> {
    const start = Date.now();
    for (;;) {
      if (this.rie.exitCode !== null) throw new Error(`the emulator exited (${this.rie.exitCode}):\n${this.log}`);
      const r = await this.post('/2018-06-01/ping', '', 1_000).catch(() => null);
      if (r) return;
      if (Date.now() - start > START_WAIT_MS) throw new Error(`the emulator did not listen within ${START_WAIT_MS} ms:\n${this.log}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  /** One HTTP request to the emulator (through curl inside the lab node's namespace). */
  private async post(p: string, body: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
    const url = `http://127.0.0.1:${this.port}${p}`;
    if (this.o.lab) {
      const args = ['-sS', '-m', String(Math.ceil(timeoutMs / 1000)), '-o', '-', '-w', '\n%{http_code}', '-X', 'POST', '--data-binary', '@-', url];
      for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
      const r = await this.o.lab.exec(this.o.node!, 'curl', args, { timeoutMs: timeoutMs + 5_000, input: body, asRoot: true });
      if (r.code !== 0) throw new Error(`curl to the emulator failed (${r.code}): ${r.stderr}`);
      const i = r.stdout.lastIndexOf('\n');
      return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
    }
    return new Promise((resolve, reject) => {
      const req = http.request(url, { method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) }, timeout: timeoutMs }, (res) => {
        let data = '';
        res.setEncoding('utf8').on('data', (d: string) => (data += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer from the emulator within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /**
   * Invokes the function once (thaw, invoke, freeze) and returns what Lambda would: the handler's result, or
   * its error (errorType, errorMessage); `Sandbox.Timedout` when the function ran past its timeout, after which
   * every process of the environment but the emulator has been killed.
   */
  async invoke(payload: unknown, opts: { timeoutMs: number; requestId?: string }): Promise<InvokeOutcome> {
    if (this.closed) throw new Error('the environment is closed');
    const requestId = opts.requestId ?? crypto.randomUUID();
    this.thaw();
    let r: { status: number; body: string };
    try {
      r = await this.post('/2015-03-31/functions/function/invocations', JSON.stringify(payload), opts.timeoutMs, { 'X-Amzn-RequestId': requestId });
    } finally {
      if (!this.closed) this.freeze();
    }
    if (TIMED_OUT_RE.test(r.body)) {
      this.killAllButEmulator();
      return { ok: false, error: { errorType: 'Sandbox.Timedout', errorMessage: r.body.trim() }, requestId };
    }
    if (r.status !== 200) return { ok: false, error: { errorType: `Emulator.HTTP${r.status}`, errorMessage: r.body }, requestId };
    let v: unknown;
    try {
      v = JSON.parse(r.body);
    } catch {
      return { ok: false, error: { errorType: 'Runtime.InvalidResponse', errorMessage: r.body }, requestId };
    }
    const o = v as { errorType?: unknown; errorMessage?: unknown };
    if (v && typeof v === 'object' && typeof o.errorType === 'string' && typeof o.errorMessage === 'string') {
      return { ok: false, error: { errorType: o.errorType, errorMessage: o.errorMessage }, requestId };
    }
    return { ok: true, result: v, requestId };
  }

  private freeze(): void {
    if (this.frozen) return;
    this.frozen = true;
    if (this.cgroup) fs.writeFileSync(path.join(this.cgroup, 'freezer.state'), 'FROZEN');
    else for (const p of this.pids()) signal(p, 'SIGSTOP');
  }

  private thaw(): void {
    if (!this.frozen) return;
    this.frozen = false;
    if (this.cgroup) fs.writeFileSync(path.join(this.cgroup, 'freezer.state'), 'THAWED');
    else for (const p of this.pids()) signal(p, 'SIGCONT');
  }

  private killAllButEmulator(): void {
    const wasFrozen = this.frozen;
    if (wasFrozen) this.thaw();
    for (const p of this.pids()) if (p !== this.rie.pid) signal(p, 'SIGKILL');
    if (wasFrozen) this.freeze();
  }

  /** Removes the environment: every process in it, its cgroup, its directories. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.thaw();
    for (const p of this.pids()) signal(p, 'SIGKILL');
    signal(this.rie.pid ?? 0, 'SIGKILL');
    if (this.rie.exitCode === null && this.rie.signalCode === null) await new Promise((r) => this.rie.once('exit', r));
    if (this.cgroup) {
      for (let i = 0; i < 50; i++) {
        try {
          fs.rmdirSync(this.cgroup);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 100)); // the killed processes are still leaving it
        }
      }
    }
    fs.rmSync(this.workDir, { recursive: true, force: true });
    fs.rmSync(this.runtimeDir, { recursive: true, force: true });
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  if (pid <= 1) return;
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

/** Makes a tree read-only for everyone (files 444/555, directories 555), as /var/task is. */
export function readOnly(dir: string): void {
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = fs.lstatSync(p);
    if (st.isDirectory()) readOnly(p);
    else if (st.isFile()) fs.chmodSync(p, st.mode & 0o111 ? 0o555 : 0o444);
  }
  fs.chmodSync(dir, 0o555);
}

/** Unpacks a zip with Info-ZIP's unzip (keeps the Unix modes), into a fresh directory under `parent`. */
export function unpack(zip: string, parent: string): Promise<string> {
  const dir = fs.mkdtempSync(path.join(parent, 'code-'));
  fs.chmodSync(dir, 0o755);
  return new Promise((resolve, reject) => {
    const p = spawn('unzip', ['-q', zip, '-d', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(dir) : reject(new Error(`unzip ${zip} failed (${code}): ${err}`))));
  });
}

/** startEnvironment: the entry point other tests use. */
export function startEnvironment(o: EnvironmentOptions): Promise<LambdaEnvironment> {
  return LambdaEnvironment.start(o);
}
