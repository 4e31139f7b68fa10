// Fuzzing every TCP port a real seed and a real agent listen on (found with `ss`, so a port added later is
// fuzzed too): the seed's control and discovery ports, the agent's peer-link listener. Each gets
// BOXER_FUZZ_N frames (10,000 inside `npm test`; `npm run test:hostile` runs 100,000), 10 per connection, from
// 200 loopback source addresses: the first frame a mutated handshake message 1 made with the right network
// key (an evil member's), or random bytes; the rest random frames and broken headers. Afterwards both processes
// run, answer (`boxer status`, a new member joins), and hold no more descriptors than before.
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { boxer, sandbox, sleep, startSeed, until } from '../support/procs';
import { sodiumReady } from '../../src/crypto/sodium';
import { deriveNetworkKey, generateKeyPair } from '../../src/crypto/keys';
import { Initiator } from '../../src/crypto/noise';
import { encodeFrame } from '../../src/wire/frame';
import { DataRelay } from '../../src/vnet/relay';
import { setSink } from '../../src/util/log';
import { N, n, bytes as rawBytes, mutate as rawMutate, rnd } from '../support/fuzz';

const PER_CONNECTION = 10;
const CONCURRENCY = 32;
const SOURCES = 200;
/** How long a fuzzing connection waits for the port to close it before closing it itself. */
const LINGER_MS = 200;
const bytes = (len: number) => Buffer.from(rawBytes(len));
const mutate = (valid: Uint8Array) => Buffer.from(rawMutate(valid));

/** The TCP ports process `pid` listens on. */
function listeners(pid: number): number[] {
  const out = execFileSync('ss', ['-Hltnp'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes(`pid=${pid},`))
    .map((l) => Number(l.split(/\s+/)[3].split(':').pop()))
    .filter((p) => p > 0);
}

const fds = (pid: number) => fs.readdirSync(`/proc/${pid}/fd`).length;
const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

interface Tally {
  frames: number;
  connections: number;
  closedByPort: number;
  refused: number;
}

/** One connection: PER_CONNECTION frames, then wait for the port to close it (or close it after LINGER_MS). */
function fuzzConnection(port: number, first: Buffer, tally: Tally, source: string, framed: boolean): Promise<void> {
  return new Promise((resolve) => {
    const parts = [framed ? encodeFrame(first) : first];
    for (let i = 1; i < PER_CONNECTION; i++) parts.push(i % 7 === 0 ? bytes(4 + rnd(8)) : encodeFrame(bytes(rnd(200))));
    const c = net.connect({ port, host: '127.0.0.1', localAddress: source });
    let done = false;
    const end = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      c.destroy();
      resolve();
    };
    const timer = setTimeout(end, LINGER_MS + 2_000);
    c.on('connect', () => {
      tally.connections++;
      tally.frames += PER_CONNECTION;
      c.write(Buffer.concat(parts));
      setTimeout(end, LINGER_MS);
    });
    c.on('data', () => undefined);
    c.on('close', () => {
      if (!done) tally.closedByPort++;
      end();
    });
    c.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED') tally.refused++;
      end();
    });
  });
}

/** `framed`: the first input in a frame (the control plane's ports); else raw (the relay's token port). */
async function fuzzPort(port: number, valid: Uint8Array, framed = true): Promise<Tally> {
  const tally: Tally = { frames: 0, connections: 0, closedByPort: 0, refused: 0 };
  const total = Math.ceil(N / PER_CONNECTION);
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const first = i % 2 ? mutate(valid) : bytes(rnd(160));
      // Raw (a token): a mutation that kept the whole token (bytes appended) is the real thing, not a forgery.
      if (!framed && first.length >= valid.length && first.subarray(0, valid.length).equals(Buffer.from(valid))) first[0] ^= 1;
      await fuzzConnection(port, first, tally, `127.0.0.${2 + (i % SOURCES)}`, framed);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return tally;
}

test(`every listening port of a seed and an agent: ${n} fuzzed frames each; both stay up, answer and leak nothing`, async (t) => {
  t.timeout(10 * 60_000);
  await sodiumReady();
  const secret = 'the fuzzed ports network secret';
  const { env } = sandbox(secret);
  const s = await startSeed(env);
  const agent = boxer(['run', '--seed', s.addr, '--name', 'target', '--', 'sleep', '600'], env);
  try {
    await until(() => {
      try {
        return JSON.parse(execFileSync(process.execPath, [require.resolve('../../../bin/boxer'), 'status', '--json'], { env, encoding: 'utf8', timeout: 10_000 })).ok === true;
      } catch {
        return false;
      }
    }, 30_000, 'the agent to join');
    const procs = [
      { who: 'seed', pid: s.proc.child.pid! },
      { who: 'agent', pid: agent.child.pid! },
    ];
    const valid = new Initiator(deriveNetworkKey(secret), generateKeyPair()).message1();
    for (const p of procs) {
      const ports = listeners(p.pid);
      t.true(ports.length >= 1, `${p.who} listens`);
      const before = { fds: fds(p.pid), rss: rss(p.pid) };
      for (const port of ports) {
        const start = Date.now();
        const r = await fuzzPort(port, valid);
        t.is(r.refused, 0, `${p.who}:${port} kept listening`);
        t.true(r.frames >= N, `${p.who}:${port}: ${r.frames} frames sent`);
        t.log(`${p.who} port ${port}: ${r.frames} frames over ${r.connections} connections in ${Date.now() - start} ms; ${r.closedByPort} closed by the port`);
      }
      t.is(p.who === 'seed' ? s.proc.child.exitCode : agent.child.exitCode, null, `${p.who} still running`);
      // Descriptors back to where they were (closes complete asynchronously: a few seconds' grace).
      await until(() => fds(p.pid) <= before.fds + 2, 20_000, `${p.who}'s descriptors back to ${before.fds}`).catch(() => undefined);
      t.true(fds(p.pid) <= before.fds + 2, `${p.who} descriptors ${before.fds} -> ${fds(p.pid)}`);
      t.log(`${p.who}: descriptors ${before.fds} -> ${fds(p.pid)}, RSS ${before.rss.toFixed(0)} -> ${rss(p.pid).toFixed(0)} MiB`);
    }
    // Still answering: a new member joins and sees the target; the target's status answers.
    await sleep(500);
    const joined = execFileSync(process.execPath, [require.resolve('../../../bin/boxer'), 'run', '--seed', s.addr, '--name', 'after', '--nodes', '2', '--', 'sh', '-c', 'cut -d" " -f3 "$BOXER_NODES_FILE" | sort | tr "\\n" " "'], { env, encoding: 'utf8', timeout: 60_000 });
    t.is(joined.trim(), 'after target');
  } finally {
    agent.child.kill('SIGTERM');
    s.proc.child.kill('SIGTERM');
    await Promise.all([agent.exited, s.proc.exited]);
  }
});

test(`the relay's token port (every open member's and the seed's): ${n} fuzzed frames pair nothing; the real token still does`, async (t) => {
  t.timeout(5 * 60_000);
  setSink(() => undefined);
  const relay = new DataRelay();
  try {
    const { port, relayPort, token } = await relay.prepare('1:1', '127.0.0.1');
    const before = fds(process.pid);
    // Mutations of the real token (a bit or byte changed, cut short) and random bytes: none may pair.
    const tally = await fuzzPort(relayPort, token, false);
    t.is(tally.refused, 0);
    t.is(relay.stats.relayed, 0, 'no fuzzed connection was paired with the waiting client');
    t.log(`relay token port: ${tally.frames} frames over ${tally.connections} connections; ${tally.closedByPort} closed by the port; 0 paired`);
    // The client and the far side with the real token still meet.
    const a = net.connect(port, '127.0.0.1');
    const b = net.connect(relayPort, '127.0.0.1');
    await Promise.all([a, b].map((s) => new Promise((r) => s.once('connect', r))));
    b.write(Buffer.concat([Buffer.from(token), Buffer.from('hello')]));
    const got = await new Promise<string>((r) => a.once('data', (d) => r(d.toString())));
    t.is(got, 'hello');
    t.is(relay.stats.relayed, 1);
    a.destroy();
    b.destroy();
    await until(() => fds(process.pid) <= before + 4, 10_000, 'descriptors back').catch(() => undefined);
    t.true(fds(process.pid) <= before + 4, `descriptors ${before} -> ${fds(process.pid)}`);
  } finally {
    relay.close();
  }
});
