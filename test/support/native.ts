/**
 * Helpers of the native tests: the repository's paths, building the native parts when missing, running a
 * python3 program (bounded by a timeout, never blocking the event loop that the fake agent runs on).
 */
import { execFile, spawn, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import type * as NativeApi from '../../native';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const NATIVE_DIR = path.join(ROOT, 'native');
export const SHIM = path.join(NATIVE_DIR, 'out', 'libboxer-shim.so');
export const BENCH = path.join(NATIVE_DIR, 'out', 'connect_latency');

/** Builds what is missing (the shim and bench with make; the addon with npm's node-gyp). */
export function ensureBuilt(): void {
  const { execFileSync } = require('child_process') as typeof import('child_process');
  execFileSync('make', ['-s', '-C', NATIVE_DIR, 'all', 'bench'], { stdio: 'pipe' });
  if (!fs.existsSync(path.join(NATIVE_DIR, 'build', 'Release', 'boxer_native.node'))) {
    execFileSync('npm', ['run', '-s', 'build:native'], { cwd: ROOT, stdio: 'pipe' });
  }
}

let cached: typeof NativeApi | undefined;
/** The addon, loaded from the source tree (works from dist/ without dist/native). */
export function native(): typeof NativeApi {
  if (!cached) {
    ensureBuilt();
    cached = require(NATIVE_DIR) as typeof NativeApi;
  }
  return cached;
}

/**
 * An addon TCP socket (`fd`) connected to a loopback listener of this process, and the listener's side of the
 * connection (`peer`); the listener is closed once it accepted.
 */
export async function connectedAddonSocket(): Promise<{ fd: number; peer: net.Socket }> {
  const n = native();
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const fd = n.tcpSocket();
  n.connectStart(fd, '127.0.0.1', (server.address() as net.AddressInfo).port);
  await n.connectWait(fd, 5000);
  const peer = await accepted;
  server.close();
  return { fd, peer };
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a python3 program with env added to the environment; resolves when it exits (killed at timeoutMs). */
export function runPython(script: string, env: Record<string, string>, timeoutMs = 20000, args: string[] = []): Promise<RunResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(
      'python3',
      ['-c', script, ...args],
      { env: { ...process.env, ...env }, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        const c: unknown = err ? (err as unknown as { code?: unknown }).code : 0;
        resolve({ code: typeof c === 'number' ? c : -1, stdout, stderr, ms: Date.now() - t0 });
      },
    );
  });
}

/** Starts a long-running python3 program; lines() yields its stdout line by line. Kill it with stop(). */
export class PyProcess {
  readonly child: ChildProcess;
  private buf = '';
  private lines: string[] = [];
  private waiters: ((l: string) => void)[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(script: string, env: Record<string, string>) {
    this.child = spawn('python3', ['-u', '-c', script], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const l = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        const w = this.waiters.shift();
        if (w) w(l);
        else this.lines.push(l);
      }
    });
    this.child.stderr!.on('data', (d) => (this.stderr += String(d)));
    this.exited = new Promise((r) => this.child.on('exit', (code) => r(code)));
  }

  /** The next stdout line (rejects after timeoutMs). */
  line(timeoutMs = 10000): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no output within ${timeoutMs} ms; stderr: ${this.stderr}`)), timeoutMs);
      this.waiters.push((x) => {
        clearTimeout(t);
        resolve(x);
      });
    });
  }

  async json<T = any>(timeoutMs = 10000): Promise<T> {
    return JSON.parse(await this.line(timeoutMs)) as T;
  }

  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

export function shimEnv(sock: string, vaddr: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    LD_PRELOAD: SHIM,
    BOXER_SHIM_SOCK: sock,
    BOXER_NETWORK: '100.96.0.0/16',
    BOXER_ADDR: vaddr,
    ...extra,
  };
}
