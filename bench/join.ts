/**
 * `npm run bench:join`: the control plane's cost.
 *  (a) protocol: N agents (default 64) in JOIN_WORKERS processes (one per core; BENCH_JOIN_ONE_PROCESS=1: all in
 *      this one) join one seed in this process on loopback; time from the go to barrier release (every agent
 *      knows all N), the seed's and the agents' CPU, and control messages and bytes per join;
 *  (b) one agent process (`boxer run`): time from process start to joined, and its resident memory.
 * Targets (issue 15): (a) 64 / 256 / 1000 agents within 150 / 600 / 3000 ms; (b) under 300 ms and under 80 MB.
 */
import net from 'node:net';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { Seed } from '../src/control/seed';
import { Agent } from '../src/control/agent';
import type { Connector } from '../src/control/connectors';
import { sodiumReady } from '../src/crypto/sodium';
import { deriveNetworkKey, generateKeyPair } from '../src/crypto/keys';
import { setSink } from '../src/util/log';

const SECRET = 'benchmark secret, long enough';
const REPS = Number(process.env.BENCH_REPS ?? 5);

export interface Counter {
  bytes: number;
  frames: number;
}

/** A TCP connector that counts the bytes and frames (u32 length prefixes) an agent sends and receives. */
export function countingConnector(c: Counter): Connector {
  return (host, port) =>
    new Promise((resolve, reject) => {
      const sock = net.connect({ host, port });
      sock.setNoDelay(true);
      // Frames are u32 length-prefixed: count them in each direction as the bytes go by (the header's bytes
      // are gathered, a body's only counted down: no copies of large welcomes).
      const frameCounter = () => {
        const head = Buffer.alloc(4);
        let have = 0;
        let body = 0;
        return (d: Buffer) => {
          c.bytes += d.length;
          let i = 0;
          while (i < d.length) {
            if (body > 0) {
              const k = Math.min(body, d.length - i);
              body -= k;
              i += k;
              continue;
            }
            head[have++] = d[i++];
            if (have === 4) {
              have = 0;
              body = head.readUInt32BE(0);
              c.frames++;
            }
          }
        };
      };
      sock.on('data', frameCounter());
      const countOut = frameCounter();
      const write = sock.write.bind(sock);
      sock.write = ((chunk: Buffer, ...rest: never[]) => {
        countOut(chunk);
        return write(chunk, ...rest);
      }) as typeof sock.write;
      sock.once('error', reject);
      sock.once('connect', () => resolve(sock));
    });
}

async function protocolRun(n: number): Promise<{ ms: number; framesPerJoin: number; bytesPerJoin: number }> {
  const psk = deriveNetworkKey(SECRET);
  const seed = new Seed({ network: '100.96.0.0/16', psk, keys: generateKeyPair(), stateFile: null });
  const { port } = await seed.listen('127.0.0.1', 0);
  const counter: Counter = { bytes: 0, frames: 0 };
  const agents: Agent[] = [];
  const joined: Promise<void>[] = [];
  let lastStart = 0;
  for (let i = 0; i < n; i++) {
    const a = new Agent({ seedHost: '127.0.0.1', seedPort: port, psk, keys: generateKeyPair(), services: [], connect: countingConnector(counter) });
    agents.push(a);
    lastStart = performance.now();
    joined.push(a.join().then(() => a.waitForMembers(n)));
  }
  await Promise.all(joined);
  const ms = performance.now() - lastStart;
  const result = { ms, framesPerJoin: counter.frames / n, bytesPerJoin: counter.bytes / n };
  await Promise.all(agents.map((a) => a.leave()));
  await seed.close();
  return result;
}

/** Worker processes for the agents of protocolRuns (the seed stays in this process): one per core. */
export const JOIN_WORKERS = Math.max(1, os.cpus().length);
/** Bound on a worker's start and on one barrier (a hang, not a figure). */
const WORKER_START_MS = 30_000;
const BARRIER_MAX_MS = 120_000;

interface WorkerDone {
  t: 'done';
  frames: number;
  bytes: number;
  cpuMs: number;
}

/**
 * N agents in JOIN_WORKERS processes (bench/join-worker.ts) join one seed in this process on loopback: from
 * the moment the workers (started, libsodium loaded) are told to go until every agent knows all N. Messages
 * and bytes per join as protocolRun counts them, on the agents' side.
 */
export async function protocolRunProcesses(n: number): Promise<{ ms: number; framesPerJoin: number; bytesPerJoin: number; seedCpuMs: number; agentsCpuMs: number }> {
  const psk = deriveNetworkKey(SECRET);
  const seed = new Seed({ network: '100.96.0.0/16', psk, keys: generateKeyPair(), stateFile: null });
  const { port } = await seed.listen('127.0.0.1', 0);
  const w = Math.min(JOIN_WORKERS, n);
  const kids = Array.from({ length: w }, () => fork(path.join(__dirname, 'join-worker.js'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
  const next = (k: ChildProcess, what: string, ms: number) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`bench:join: a worker sent no ${what} within ${ms} ms`)), ms);
      k.once('message', (m) => {
        clearTimeout(t);
        resolve(m as Record<string, unknown>);
      });
      k.once('exit', (code) => reject(new Error(`bench:join: a worker exited (${code}) before ${what}`)));
    });
  try {
    const per = (i: number) => Math.floor(n / w) + (i < n % w ? 1 : 0);
    const ready = kids.map((k) => next(k, 'ready', WORKER_START_MS));
    kids.forEach((k, i) => k.send({ t: 'setup', agents: per(i), total: n, port, secret: SECRET }));
    await Promise.all(ready);
    const done = kids.map((k) => next(k, 'done', BARRIER_MAX_MS));
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (const k of kids) k.send({ t: 'go' });
    const results = (await Promise.all(done)) as unknown as WorkerDone[];
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    const seedCpuMs = (c.user + c.system) / 1000;
    const agentsCpuMs = results.reduce((a, r) => a + r.cpuMs, 0);
    if (process.env.BENCH_DEBUG) console.error(JSON.stringify({ n, ms, seed: seed.stats, gate: seed.gate.total }));
    const frames = results.reduce((a, r) => a + r.frames, 0);
    const bytes = results.reduce((a, r) => a + r.bytes, 0);
    const left = kids.map((k) => new Promise((r) => k.once('exit', r)));
    for (const k of kids) k.send({ t: 'leave' });
    await Promise.race([Promise.all(left), new Promise((r) => setTimeout(r, 10_000))]);
    return { ms, framesPerJoin: frames / n, bytesPerJoin: bytes / n, seedCpuMs, agentsCpuMs };
  } finally {
    for (const k of kids) if (k.exitCode === null) k.kill('SIGKILL');
    await seed.close();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
function spread(xs: number[]): string {
  return `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;
}

async function agentProcessRun(seedAddr: string, env: NodeJS.ProcessEnv): Promise<{ ms: number; rssMb: number }> {
  const bin = path.resolve(__dirname, '../../bin/boxer');
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, 'run', '--seed', seedAddr, '--', 'sh', '-c', 'echo joined; grep VmRSS /proc/$PPID/status'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let ms = 0;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!ms && out.includes('joined')) ms = performance.now() - t0;
    });
    child.on('exit', (code) => {
      const m = /VmRSS:\s+(\d+) kB/.exec(out);
      if (code !== 0 || !m) return reject(new Error(`boxer run failed (${code}): ${out}`));
      resolve({ ms, rssMb: Number(m[1]) / 1024 });
    });
  });
}

export async function benchJoin(opts: { n?: number; reps?: number } = {}): Promise<Record<string, unknown>> {
  await sodiumReady();
  setSink(() => {});
  const n = opts.n ?? 64;
  const reps = opts.reps ?? REPS;
  const runs = [];
  for (let i = 0; i < reps; i++) {
    process.stderr.write(`bench:join protocol ${n} agents, run ${i + 1}/${reps}\n`);
    runs.push(process.env.BENCH_JOIN_ONE_PROCESS ? { ...(await protocolRun(n)), seedCpuMs: NaN, agentsCpuMs: NaN } : await protocolRunProcesses(n));
  }
  const psk = deriveNetworkKey(SECRET);
  const seed = new Seed({ network: '100.96.0.0/16', psk, keys: generateKeyPair(), stateFile: null });
  const { port } = await seed.listen('127.0.0.1', 0);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-bench-'));
  const env = { ...process.env, BOXER_SECRET: SECRET, TMPDIR: tmp };
  const procs = [];
  for (let i = 0; i < reps; i++) {
    process.stderr.write(`bench:join agent process, run ${i + 1}/${reps}\n`);
    procs.push(await agentProcessRun(`127.0.0.1:${port}`, env));
  }
  await seed.close();
  fs.rmSync(tmp, { recursive: true, force: true });
  return {
    runs: runs.map((r) => ({ ms: r.ms, seedCpuMs: r.seedCpuMs, agentsCpuMs: r.agentsCpuMs })),
    agents: n,
    workers: process.env.BENCH_JOIN_ONE_PROCESS ? 0 : Math.min(JOIN_WORKERS, n),
    barrierMs: { median: median(runs.map((r) => r.ms)), spread: spread(runs.map((r) => r.ms)), target: '< 1000' },
    seedCpuMs: median(runs.map((r) => r.seedCpuMs)),
    agentsCpuMs: median(runs.map((r) => r.agentsCpuMs)),
    loadAverage: os.loadavg()[0],
    messagesPerJoin: median(runs.map((r) => r.framesPerJoin)),
    bytesPerJoin: median(runs.map((r) => r.bytesPerJoin)),
    agentStartToJoinedMs: { median: median(procs.map((p) => p.ms)), spread: spread(procs.map((p) => p.ms)), target: '< 300' },
    agentRssMb: { median: median(procs.map((p) => p.rssMb)), spread: spread(procs.map((p) => p.rssMb)), target: '< 80' },
  };
}

if (require.main === module) {
  const n = Number(process.argv[2] ?? 64);
  benchJoin({ n })
    .then((r) => {
      console.log(JSON.stringify(r, null, 2));
      process.exit(0);
    })
    .catch((e: Error) => {
      console.error(`bench:join failed: ${e.message}`);
      process.exit(1);
    });
}
