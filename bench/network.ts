/**
 * The network measurements of `npm run bench`: iperf3 throughput, netbench.py round trips and connection
 * times, and the time inside connect(), each run natively or under Boxer by the runner (runner.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Acc, Config } from './cases';
import { HOST, NETBENCH, PY, ROOT, type Mode, type Runner } from './runner';

/** An outside client's server under Boxer (agent start, join) must listen within this. */
const OUTSIDE_LISTEN_MAX_MS = 30_000;
/** A native client of a Boxer server (an outside client) does not wait for it by name: wait until it listens. */
async function ready(r: Runner, m: Mode, clientMode: Mode, server: string, port: number): Promise<void> {
  if (m !== clientMode) await r.waitListening(server, port, OUTSIDE_LISTEN_MAX_MS);
}

/** Throughput of one iperf3 run (Mbit/s); `clientMode` differs from `m` for an outside client. */
export async function iperf(r: Runner, m: Mode, client: string, server: string, reverse: boolean, seconds: number, clientMode: Mode = m): Promise<number> {
  const port = r.nextPort();
  const srv = await r.server(m, server, ['iperf3', '-s', '-1', '-p', String(port)], port, seconds + 30);
  try {
    await ready(r, m, clientMode, server, port);
    const args = ['iperf3', '-c', HOST, '-p', String(port), '-t', String(seconds), '-J', ...(reverse ? ['-R'] : []), ...(seconds >= 5 ? ['-O', '1'] : [])];
    const out = await r.client(clientMode, client, args, { node: server, name: srv.name }, (seconds + 25) * 1000);
    return parseIperf(out);
  } finally {
    await srv.stop();
  }
}

/** Round trips of 1 KiB (rtt) or connect-to-first-byte times (ttfb) in microseconds (netbench.py). */
export async function latency(r: Runner, cfg: Config, m: Mode, kind: 'rtt' | 'ttfb', client: string, server: string, clientMode: Mode = m): Promise<number[]> {
  const port = r.nextPort();
  const maxS = 90;
  const srv = await r.server(m, server, [PY, NETBENCH, kind === 'rtt' ? 'serve-echo' : 'serve-byte', String(port), String(maxS)], port, maxS);
  try {
    await ready(r, m, clientMode, server, port);
    const args = kind === 'rtt' ? [PY, NETBENCH, 'rtt', HOST, String(port), String(cfg.rttN), '1024', '60'] : [PY, NETBENCH, 'ttfb', HOST, String(port), String(cfg.ttfbN), '60'];
    const out = await r.client(clientMode, client, args, { node: server, name: srv.name }, 80_000);
    const res = JSON.parse(out.trim().split('\n').pop() ?? '') as { us: number[]; errors: number; truncated: boolean };
    if (res.errors || res.truncated) throw new Error(`${kind}: ${res.errors} errors${res.truncated ? ', stopped at the time limit' : ''} (${res.us.length} samples)`);
    return res.us;
  } finally {
    await srv.stop();
  }
}

/** Median time inside a non-blocking connect() (connect_latency), its p99 kept beside the variant. */
export async function connectLatency(r: Runner, cfg: Config, m: Mode, bin: string, a: Acc): Promise<number> {
  const port = r.nextPort();
  const srv = await r.server(m, 'vm2', [PY, NETBENCH, 'serve-byte', String(port), '60'], port, 60);
  try {
    const out = await r.client(m, 'vm1', [bin, HOST, String(port), String(cfg.connectN)], { node: 'vm2', name: srv.name }, 60_000);
    const x = /p50_us=([\d.]+) p99_us=([\d.]+) max_us=([\d.]+) errors=(\d+)/.exec(out);
    if (!x) throw new Error(`unexpected connect_latency output: ${out.trim().slice(0, 200)}`);
    if (Number(x[4]) > 0) throw new Error(`connect_latency: ${x[4]} connect() errors`);
    const slot = a.modes[m]!;
    (slot as { p99s?: number[] }).p99s = [...((slot as { p99s?: number[] }).p99s ?? []), Number(x[2])];
    return Number(x[1]);
  } finally {
    await srv.stop();
  }
}

export function parseIperf(out: string): number {
  const start = out.indexOf('{');
  if (start < 0) throw new Error(`iperf3 printed no JSON: ${out.slice(0, 200)}`);
  const j = JSON.parse(out.slice(start)) as { error?: string; end?: { sum_received?: { bits_per_second?: number } } };
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  const bps = j.end?.sum_received?.bits_per_second;
  if (typeof bps !== 'number') throw new Error('iperf3 JSON without end.sum_received');
  return bps / 1e6;
}

/** The connect_latency benchmark binary, where it is built. */
export function connectLatencyBinary(): string | undefined {
  return ['native/out/connect_latency', 'native/bench/connect_latency'].map((p) => path.join(ROOT, p)).find((p) => {
    try {
      return fs.statSync(p).isFile() && (fs.statSync(p).mode & 0o111) !== 0;
    } catch {
      return false;
    }
  });
}

