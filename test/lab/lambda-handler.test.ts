/**
 * The Lambda handler in the lab: the zip `boxer lambda package` builds, unpacked read-only, run by AWS's
 * Runtime Interface Emulator and runtime interface client inside the lab's functions (behind their NATs, as
 * the unprivileged user, HOME unset, only its /tmp writable), frozen between invocations
 * (test/support/lambda-runtime.ts). It joins a seed on a public host, talks to a member by name, is cut by
 * its deadline (the others see it leave at once), is reused after a freeze (what the last invocation left is
 * gone), and a duplicate delivery of the same member of a run is refused.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { labTest } from './helpers';
import type { Lab } from '../../overlay';
import { LabNet, SECRET } from './labnet';
import { buildPackage } from '../../src/lambda/package';
import { DEAD_AFTER_MS } from '../../src/constants';
import { runtimeUnavailable, startEnvironment, unpack, type InvokeOutcome, type LambdaEnvironment } from '../support/lambda-runtime';

const lt = labTest();
const missing = runtimeUnavailable();
if (missing) console.log(`Lambda lab tests not run: ${missing}`);
/** Bound on one invocation (against hangs only). */
const INVOKE_MS = 90_000;

let work = '';
let code = '';
async function pkg(): Promise<string> {
  if (code) return code;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-lambda-lab-'));
  fs.chmodSync(work, 0o755);
  await buildPackage({ out: path.join(work, 'boxer.zip'), arch: 'x86_64' });
  code = await unpack(path.join(work, 'boxer.zip'), work);
  return code;
}
process.on('exit', () => {
  if (!work) return;
  for (const d of fs.readdirSync(work)) fs.chmodSync(path.join(work, d), 0o755);
  fs.rmSync(work, { recursive: true, force: true });
});

function result(t: ExecutionContext, r: InvokeOutcome, e: LambdaEnvironment): Record<string, unknown> {
  if (!r.ok) t.fail(`the invocation failed: ${JSON.stringify(r.error)}\n${e.logs()}`);
  return (r as { result: Record<string, unknown> }).result;
}

/** A seed in the lab, Lambda environments started with `env(node, timeoutS)`, all removed at the end. */
async function withNet(lab: Lab, fn: (net: LabNet, env: (node: string, timeoutS: number) => Promise<LambdaEnvironment>) => Promise<void>): Promise<void> {
  const net = new LabNet(lab);
  const envs: LambdaEnvironment[] = [];
  try {
    await net.startSeed();
    await fn(net, async (node, timeoutS) => {
      const e = await startEnvironment({ codeDir: await pkg(), env: { BOXER_SECRET: SECRET }, lab, node, timeoutS });
      envs.push(e);
      return e;
    });
  } finally {
    for (const e of envs) await e.close();
    await net.stop();
  }
}

const serial = missing || !lt.available ? (title: string) => test.skip(title, () => undefined) : lt.serial;

serial('behind a NAT as the function user: joins, reaches a member by name, returns the result', async (t, lab) => {
  t.timeout(4 * 60_000);
  await withNet(lab, async (net, env) => {
    net.member('vm1', 'web', 2, ['python3', '-m', 'http.server', '8080']);
    const e = await env('fta', 120);
    const check = [
      'curl -sf -m 10 --retry 20 --retry-connrefused --retry-delay 1 -o /dev/null http://web:8080/ || exit 10',
      'test "$(id -u)" != 0 || exit 11',
      'test -z "${HOME+set}" || exit 12',
      '! touch "$LAMBDA_TASK_ROOT/x" 2>/dev/null || exit 13',
      'touch "$TMPDIR/ok" || exit 14',
      'exit 7',
    ].join('; ');
    const r = await e.invoke({ seed: net.seedAddr, nodes: 2, name: 'fn', command: ['sh', '-c', check] }, { timeoutMs: INVOKE_MS });
    const res = result(t, r, e);
    t.like(res, { exitCode: 7, signal: null, reason: 'exited', name: 'fn' }, e.logs());
    t.regex(String(res.addr), /^100\.96\.\d+\.\d+$/);
    t.true(e.isFrozen, 'frozen after the response');
  });
});

serial('cut by its deadline: SIGTERM, leaves before Lambda would kill it, the others see it leave at once', async (t, lab) => {
  t.timeout(4 * 60_000);
  await withNet(lab, async (net, env) => {
    // The watcher prints when the member count falls from 2, with the time (ms).
    const watch = 'while [ "$(wc -l < "$BOXER_NODES_FILE")" -lt 2 ]; do sleep 0.05; done; echo BOTH; while [ "$(wc -l < "$BOXER_NODES_FILE")" -ge 2 ]; do sleep 0.05; done; echo "GONE $(date +%s%3N)"';
    const watcher = net.member('vm2', 'watcher', 2, ['sh', '-c', watch]);
    const timeoutS = 14;
    const leaveBeforeMs = 6_000;
    const e = await env('fp', timeoutS);
    const start = Date.now();
    const r = await e.invoke({ seed: net.seedAddr, nodes: 2, command: ['sh', '-c', 'sleep 300 & wait'], leaveBeforeMs }, { timeoutMs: INVOKE_MS });
    const returned = Date.now();
    t.like(result(t, r, e), { exitCode: null, signal: 'SIGTERM', reason: 'deadline' }, e.logs());
    t.true(returned - start < timeoutS * 1000, `returned after ${returned - start} ms, before the ${timeoutS} s timeout`);
    t.true(returned - start >= timeoutS * 1000 - leaveBeforeMs - 1_000, `ran until leaveBeforeMs before the deadline (${returned - start} ms)`);
    await net.waitFor(watcher, /BOTH/);
    const gone = Number((await net.waitFor(watcher, /GONE (\d+)/, 30_000))[1]);
    t.log(`the watcher saw the member leave ${gone - returned} ms after the invocation returned (heartbeat timeout: ${DEAD_AFTER_MS} ms)`);
    t.true(gone - returned < DEAD_AFTER_MS / 2, `seen ${gone - returned} ms after the return: a leave, not a heartbeat timeout`);
    t.true(gone >= start, 'it left during this invocation');
    t.false(e.pids().some((p) => cmdline(p) === 'sleep\u0000300'), 'the command and its children are gone');
  });
});

serial('reused after a freeze: what the last invocation left (a daemon, files) is gone; a duplicate member of a run is refused', async (t, lab) => {
  t.timeout(4 * 60_000);
  await withNet(lab, async (net, env) => {
    const e = await env('fsa', 60);
    // A daemon that leaves the command's process group (setsid), and a file: both outlive the invocation. The
    // command returns once the daemon has written its pid (so it has left the group, which the end kills).
    const leave = [
      `setsid sh -c 'echo $$ > "$TMPDIR/daemon"; exec sleep 1000' </dev/null >/dev/null 2>&1 &`,
      'i=0; while [ ! -s "$TMPDIR/daemon" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done',
      'echo x > "$TMPDIR/left"',
    ].join('\n');
    t.like(result(t, await e.invoke({ seed: net.seedAddr, nodes: 1, command: ['sh', '-c', leave] }, { timeoutMs: INVOKE_MS }), e), { exitCode: 0 });
    const daemon = Number(fs.readFileSync(path.join(e.tmpDir, 'daemon'), 'utf8'));
    t.true(e.pids().includes(daemon) && alive(daemon), 'the daemon outlived its invocation, in the environment');
    t.true(e.isFrozen);
    t.regex(fs.readFileSync(`/proc/${daemon}/status`, 'utf8'), /State:\s+[DT]/, 'frozen with the environment');
    const r2 = await e.invoke({ seed: net.seedAddr, nodes: 1, command: ['sh', '-c', 'test ! -e "$TMPDIR/left"'] }, { timeoutMs: INVOKE_MS });
    t.like(result(t, r2, e), { exitCode: 0, reason: 'exited' }, 'the file is gone');
    t.false(alive(daemon!), 'the thawed daemon was killed before the command ran');

    // At-least-once delivery: the same run and index a second time, here and in another environment.
    const ev = { seed: net.seedAddr, nodes: 1, command: ['true'], run: 'lab-run-1', index: 0 };
    t.like(result(t, await e.invoke(ev, { timeoutMs: INVOKE_MS }), e), { exitCode: 0 });
    const again = await e.invoke(ev, { timeoutMs: INVOKE_MS });
    t.like(again, { ok: false, error: { errorType: 'Boxer.DUPLICATE' } });
    const other = await env('fsb', 60);
    const dup = await other.invoke(ev, { timeoutMs: INVOKE_MS });
    t.like(dup, { ok: false, error: { errorType: 'Boxer.DUPLICATE' } }, other.logs());
    t.regex((dup as { error: { errorMessage: string } }).error.errorMessage, /member 0 of run lab-run-1 has joined already/);
    t.like(result(t, await other.invoke({ ...ev, index: 1 }, { timeoutMs: INVOKE_MS }), other), { exitCode: 0 }, 'another index joins');
  });
});

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '');
  } catch {
    return '';
  }
}

function alive(pid: number): boolean {
  try {
    return !/State:\s+Z/.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}
