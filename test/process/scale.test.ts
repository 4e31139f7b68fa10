/**
 * 200+ agents in this process, on loopback, with real sockets (the addon), NAT discovery and peer links:
 * every member learns every other, links open on demand, and no agent holds more links than its bound.
 */
import test from 'ava';
import { Seed } from '../../src/control/seed';
import { Agent } from '../../src/control/agent';
import { DiscoveryServer } from '../../src/traversal/discovery';
import { nativeIo } from '../../src/traversal/io';
import { sodiumReady } from '../../src/crypto/sodium';
import { deriveNetworkKey, generateKeyPair } from '../../src/crypto/keys';
import { setSink } from '../../src/util/log';
import { freePort, until } from '../support/procs';
import { LINK_MIN_AGE_MS } from '../../src/constants';

const N = 210;
/** A low bound, so that each agent must close links to stay within it. */
const BOUND = 6;
/** Pings per agent toward random members: more than the bound. */
const PINGS = 10;
const BATCH = 30;

/** Why NAT discovery failed, per failure (the agents' log lines). */
const discoveryFailures: string[] = [];

test.before(async () => {
  await sodiumReady();
  setSink((l) => {
    if (l.includes('NAT discovery failed')) discoveryFailures.push(/reason="([^"]*)"/.exec(l)?.[1] ?? l);
  });
});

test(`${N} agents join one seed: everyone learns everyone, links stay within the bound`, async (t) => {
  t.timeout(300_000);
  const psk = deriveNetworkKey('scale test secret of enough length');
  const seedKeys = generateKeyPair();
  const seed = new Seed({ network: '100.96.0.0/16', psk, keys: seedKeys, stateFile: null });
  const port = await freePort();
  await seed.listen('127.0.0.1', port);
  // One process holds the seed and all the agents: a connect-back on loopback is never dropped, but the shared
  // event loop can stall past the 700 ms a real SYN gets, for seconds when other test files load the machine
  // (3 s failed there in CI). 6 s still fits inside the client's wait for the answer (PROBE_TIMEOUT_MS +
  // CONNECT_BACK_TIMEOUT_MS + HANDSHAKE_TIMEOUT_MS = 8.7 s): a hang bound, not a speed check.
  const discovery = new DiscoveryServer({ psk, keys: seedKeys, connectBackTimeoutMs: 6_000 });
  await discovery.listen('127.0.0.1', port + 1);
  const agents: Agent[] = [];
  try {
    for (let i = 0; i < N; i += BATCH) {
      const batch = Array.from({ length: Math.min(BATCH, N - i) }, (_, j) =>
        new Agent({ seedHost: '127.0.0.1', seedPort: port, psk, keys: generateKeyPair(), services: [], label: `a${i + j}`, traversal: { io: nativeIo, maxLinks: BOUND }, joinTimeoutMs: 60_000 }),
      );
      agents.push(...batch);
      await Promise.all(batch.map((a) => a.join()));
    }
    // Generous: on a loaded machine (other test files run at the same time) heartbeats may stall and agents rejoin.
    await until(() => agents.every((a) => a.members.size === N), 150_000, 'every agent to see every member').catch((e: Error) => {
      const short = agents.filter((a) => a.members.size !== N).map((a) => `${a.self?.id}:${a.members.size}`);
      throw new Error(`${e.message}; short: ${short.slice(0, 20).join(' ')} (seed has ${seed.size})`);
    });
    t.is(seed.size, N);
    // Loopback members are open: the connect-back works. Each joins with the kind its ports gave (preserving)
    // and becomes open when the connect-back comes through (a `nat` message): wait for that. The first probe
    // shares the control connection's port, which is its own (bound before its connect): no probe fails to
    // bind it (CI saw 1-8 of 210 `unknown` when connect() picked that port: EADDRINUSE). Alone on the machine
    // all 210 are open; with other test files loading it, a probe's handshake may still time out (this one
    // process runs 210 agents and the seed): those few are `unknown`, and only for that reason.
    const kinds = () => {
      const k = new Map<string, number>();
      for (const a of agents) k.set(a.mapping.kind, (k.get(a.mapping.kind) ?? 0) + 1);
      return k;
    };
    const settled = () => (kinds().get('open') ?? 0) + discoveryFailures.length >= N;
    await until(settled, 30_000, 'every member to find itself open').catch(() => undefined);
    t.log(`NAT kinds found: ${[...kinds()].map(([k, n]) => `${k} ${n}`).join(', ')}${discoveryFailures.length ? `; discovery failed: ${discoveryFailures.join('; ')}` : ''}`);
    t.deepEqual(discoveryFailures.filter((r) => !/within \d+ ms|timed out/.test(r)), [], 'no probe failed but by a timeout (none could not bind its port)');
    t.is(kinds().get('unknown') ?? 0, discoveryFailures.length, 'unknown only where discovery timed out');
    t.is((kinds().get('open') ?? 0) + discoveryFailures.length, N, 'every other loopback member is open (connect-back works)');
    t.true(discoveryFailures.length <= N / 20, `at most ${N / 20} timeouts (a loaded host), got ${discoveryFailures.length}`);
    const seenOpen = () => agents.every((a) => a.mapping.kind !== 'open' || agents.every((b) => b.members.get(a.self!.id)?.nat === 'open'));
    await until(seenOpen, 30_000, 'every member to see every open member open').catch(() => undefined);
    t.true(seenOpen(), 'the seed re-announced each open member as open, to everyone');
    // Random pings, many more than the bound per agent.
    const ids = agents.map((a) => a.self!.id);
    let ok = 0;
    const failures: string[] = [];
    await Promise.all(
      agents.map(async (a, i) => {
        for (let k = 0; k < PINGS; k++) {
          const to = ids[(i * 7 + k * 13 + 1) % N];
          if (to === a.self!.id) continue;
          try {
            const r = await a.ping(to);
            if (r.path === 'direct') ok++;
          } catch (e) {
            failures.push(`${a.self!.id} -> ${to}: ${(e as Error).message}`);
          }
        }
      }),
    );
    t.deepEqual(failures.slice(0, 5), []);
    t.true(ok > N * (PINGS - 1) * 0.95, `${ok} direct pings`);
    // Links younger than LINK_MIN_AGE_MS may exceed the bound briefly; the next keepalive tick trims them.
    await new Promise((r) => setTimeout(r, LINK_MIN_AGE_MS + 1_500));
    const worst = Math.max(...agents.map((a) => a.peers!.stats.maxOpen));
    // Each agent's own links are bounded; an open member may also serve as the home of others (documented).
    const overBound = agents.filter((a) => a.peers!.size > BOUND + homesServed(a));
    t.deepEqual(overBound.map((a) => a.self!.id), [], `links per agent: max ${worst}`);
    t.log(`${N} agents, ${ok} pings, at most ${worst} links at once in one agent (bound ${BOUND} + homes served)`);
  } finally {
    agents.forEach((a) => a.stop());
    await discovery.close();
    await seed.close();
  }
});

function homesServed(a: Agent): number {
  return a.links().filter((l) => l.home).length;
}
