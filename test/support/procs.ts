/**
 * Real processes for the second test tier: starts `bin/boxer` commands on loopback with a private $TMPDIR,
 * collects their output, and kills whatever is left when the test ends (even when it fails).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '../../..');
export const BOXER = path.join(ROOT, 'bin/boxer');
/** Generous bound against hangs only (the machine is shared and noisy). */
export const WAIT_MS = 30_000;

export interface Proc {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor: (re: RegExp, stream?: 'out' | 'err', ms?: number) => Promise<RegExpExecArray>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export function startProc(cmd: string, args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      live.delete(child);
      // Let the pipes drain before reporting.
      setTimeout(() => resolve({ code, signal }), 20);
    }),
  );
  const waitFor = (re: RegExp, stream: 'out' | 'err' = 'out', ms = WAIT_MS) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const start = Date.now();
      const tick = () => {
        const m = re.exec(stream === 'out' ? out : err);
        if (m) return resolve(m);
        if (Date.now() - start > ms) return reject(new Error(`timed out waiting for ${re} in ${stream}:\n${out}\n--- stderr:\n${err}`));
        setTimeout(tick, 25);
      };
      tick();
    });
  return { child, out: () => out, err: () => err, exited, waitFor };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** A private $TMPDIR and secret for one test's network. */
export function sandbox(secret = 'test secret of enough length'): { env: NodeJS.ProcessEnv; tmp: string } {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-test-'));
  return { tmp, env: { ...process.env, TMPDIR: tmp, BOXER_SECRET: secret, BOXER_LOG: 'warn' } };
}

export function boxer(args: string[], env: NodeJS.ProcessEnv): Proc {
  return startProc(process.execPath, [BOXER, ...args], env);
}

export async function startSeed(env: NodeJS.ProcessEnv, extra: string[] = []): Promise<{ proc: Proc; addr: string }> {
  const port = await freePort();
  const proc = boxer(['seed', '--listen', `127.0.0.1:${port}`, ...extra], env);
  await proc.waitFor(/listening on/);
  return { proc, addr: `127.0.0.1:${port}` };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns true, at most `ms`. */
export async function until(fn: () => boolean | Promise<boolean>, ms = WAIT_MS, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!(await fn())) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}
