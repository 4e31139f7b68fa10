/**
 * `npm run bench:seccomp`: what the seccomp supervisor (docs/seccomp.md) costs a program, beside the preload
 * shim and native, on loopback (no NAT, no agent: a `direct-quiet` route to a server on 127.0.0.1, so only the
 * interception is measured):
 *  (a) a Go program (test/programs/gonet, CGO_ENABLED=0): time per net.Dial + Close (connect, the wait
 *      for the handshake, SO_ERROR, getsockname, getpeername, close), native vs under the filter to a real
 *      address (every trapped call answered "continue") vs under the filter to a virtual address (the full path);
 *  (b) a C program (native/out/connect_latency): time inside one non-blocking connect(), native vs the shim
 *      vs the filter, both to the virtual address (the Go program cannot load the shim: it makes raw calls);
 *  (c) throughput of one Go TCP stream, native vs under the filter (read/write are not trapped: unchanged).
 * Repetitions interleave the variants (BENCH_REPS, default 5; BENCH_N dials per repetition, default 1000).
 * Needs `go` on PATH (Go 1.2x). Prints a Markdown table and writes it to docs/bench/seccomp.md (BENCH_NO_DOCS=1: not).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { median } from './stats';

const ROOT = path.resolve(__dirname, '../..');
const SUPERVISOR = path.join(ROOT, 'native/out/boxer-seccomp');
const SHIM = path.join(ROOT, 'native/out/libboxer-shim.so');
const CONNECT_LATENCY = path.join(ROOT, 'native/out/connect_latency');
const REPS = Number(process.env.BENCH_REPS ?? 5);
/** Dials per run: every dial leaves a TIME_WAIT socket on the client side; beyond ~28000 in a minute loopback runs
 * out of ports for explicitly bound sockets (the shim and the supervisor bind before connecting). */
const N = Number(process.env.BENCH_N ?? 1000);
const STREAM_S = Number(process.env.BENCH_STREAM_S ?? 3);
/** Bound on one measuring process (against hangs; a repetition takes a second or two). */
const RUN_TIMEOUT_MS = 120_000;
const SELF = '100.96.0.2';
const FAR = '100.96.0.5';
const PORT = 7461;

/** What the table means (written under it in docs/bench/seccomp.md). */
const NOTES = [
  '- **Go, net.Dial + Close**: the whole dial of a Go program: connect, the wait for the handshake, getsockopt(SO_ERROR),',
  '  getsockname, getpeername, close. Under the filter four of those calls are trapped; "real address" has the supervisor',
  '  answer each with "continue" (what every program pays for connects outside the virtual network), "virtual address"',
  '  is the full path (route table, bind, keepalive, virtual names written into the program). The shim cannot load into',
  '  a Go program.',
  '- **C, time inside connect()**: native/out/connect_latency (non-blocking connect(), the call only), to the virtual',
  '  address over a `direct-quiet` route: in-process (shim) against two context switches to the supervisor (filter).',
  '- **Throughput**: read/write/send/recv are never trapped, so a stream runs at native speed; the spread is the',
  '  shared machine\'s.',
  '- Each trapped call costs a round trip to the supervisor (with SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP on Linux 6.6+) and',
  '  a few system calls there (pidfd_getfd, fstat, the memory read and its ID_VALID check); on a loaded 2-core machine',
  '  most of it is waiting for a CPU.',
].join('\n');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): string {
  try {
    return execFileSync(cmd, args, { env, timeout: RUN_TIMEOUT_MS, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${[cmd, ...args].join(' ')}: ${x.message.split('\n')[0]}; stdout: ${(x.stdout ?? '').trim().slice(-300)}; stderr: ${(x.stderr ?? '').trim().slice(-300)}`);
  }
}

function field(out: string, name: string): number {
  const m = new RegExp(`${name}=([\\d.]+)`).exec(out);
  if (!m) throw new Error(`no ${name} in: ${out.trim().slice(0, 300)}`);
  return Number(m[1]);
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-bench-seccomp-'));
  let server: ChildProcess | undefined;
  try {
    const gonet = path.join(dir, 'gonet');
    execFileSync('go', ['build', '-o', gonet, path.join(ROOT, 'test/programs/gonet/main.go')], { env: { ...process.env, CGO_ENABLED: '0' }, stdio: 'pipe' });
    const routes = path.join(dir, 'routes');
    fs.writeFileSync(routes, `1 ${FAR} direct-quiet 127.0.0.1 0 0 0 0\n2 ${SELF} self 0.0.0.0 0 0 0 0\n`);
    const env = { ...process.env, BOXER_SHIM_SOCK: path.join(dir, 'no-agent.sock'), BOXER_ADDR: SELF, BOXER_ROUTES_FILE: routes };
    server = spawn(gonet, ['sink', String(PORT)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the sink server did not start')), 10_000);
      server!.stdout!.once('data', () => (clearTimeout(t), resolve()));
    });
    const go = { native: [] as number[], filterReal: [] as number[], filterVirtual: [] as number[] };
    const goP99 = { native: [] as number[], filterReal: [] as number[], filterVirtual: [] as number[] };
    const c = { native: [] as number[], shim: [] as number[], filter: [] as number[] };
    const cP99 = { native: [] as number[], shim: [] as number[], filter: [] as number[] };
    const tput = { native: [] as number[], filter: [] as number[] };
    for (let rep = 1; rep <= REPS; rep++) {
      process.stderr.write(`seccomp bench: repetition ${rep}/${REPS}\n`);
      const dial = (out: string, k: keyof typeof go) => (go[k].push(field(out, 'p50_us')), goP99[k].push(field(out, 'p99_us')));
      dial(run(gonet, ['connects', '127.0.0.1', String(PORT), String(N)], env), 'native');
      dial(run(SUPERVISOR, ['--', gonet, 'connects', '127.0.0.1', String(PORT), String(N)], env), 'filterReal');
      dial(run(SUPERVISOR, ['--', gonet, 'connects', FAR, String(PORT), String(N)], env), 'filterVirtual');
      const inside = (out: string, k: keyof typeof c) => (c[k].push(field(out, 'p50_us')), cP99[k].push(field(out, 'p99_us')));
      inside(run(CONNECT_LATENCY, ['127.0.0.1', String(PORT), String(N)], env), 'native');
      inside(run(CONNECT_LATENCY, [FAR, String(PORT), String(N)], { ...env, LD_PRELOAD: SHIM }), 'shim');
      inside(run(SUPERVISOR, ['--', CONNECT_LATENCY, FAR, String(PORT), String(N)], env), 'filter');
      tput.native.push(field(run(gonet, ['stream', '127.0.0.1', String(PORT), String(STREAM_S)], env), 'mbit_s'));
      tput.filter.push(field(run(SUPERVISOR, ['--', gonet, 'stream', FAR, String(PORT), String(STREAM_S)], env), 'mbit_s'));
    }
    const f = (v: number[]) => median(v).toFixed(1);
    const range = (v: number[]) => `${Math.min(...v).toFixed(0)}-${Math.max(...v).toFixed(0)}`;
    const L: string[] = [];
    L.push(`seccomp supervisor on loopback: ${REPS} repetitions × ${N} dials (medians of the repetitions' p50 / p99, µs; range of p50)`);
    L.push('');
    L.push('| case | native | shim | filter, real address | filter, virtual address |');
    L.push('|---|---|---|---|---|');
    L.push(`| Go: net.Dial + Close (p50 / p99) | ${f(go.native)} / ${f(goP99.native)} (${range(go.native)}) | — (Go makes raw calls) | ${f(go.filterReal)} / ${f(goP99.filterReal)} (${range(go.filterReal)}) | ${f(go.filterVirtual)} / ${f(goP99.filterVirtual)} (${range(go.filterVirtual)}) |`);
    L.push(`| C: time inside connect() (p50 / p99) | ${f(c.native)} / ${f(cP99.native)} (${range(c.native)}) | ${f(c.shim)} / ${f(cP99.shim)} (${range(c.shim)}) | — | ${f(c.filter)} / ${f(cP99.filter)} (${range(c.filter)}) |`);
    L.push(`| Go: one TCP stream, Mbit/s (median, range) | ${f(tput.native)} (${range(tput.native)}) | — | — | ${f(tput.filter)} (${range(tput.filter)}) |`);
    L.push('');
    L.push(`Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} at the end, Linux ${os.release()}; ${new Date().toISOString().slice(0, 16)} UTC.`);
    console.log(L.join('\n'));
    if (!process.env.BENCH_NO_DOCS) {
      const doc = ['# The seccomp supervisor\'s cost (`npm run bench:seccomp`, written by bench/seccomp.ts)', '', ...L, '', NOTES].join('\n');
      fs.writeFileSync(path.join(ROOT, 'docs/bench/seccomp.md'), doc + '\n');
    }
  } finally {
    server?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench:seccomp failed: ${(e as Error).message}`);
  process.exit(1);
});
