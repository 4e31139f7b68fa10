/**
 * A worker of bench/join.ts (protocolRunProcesses): holds its share of the agents in its own process. Told
 * `setup` (how many agents, the network's size, the seed's port), it loads libsodium and answers `ready`; on
 * `go` its agents join and it answers `done` (with the control frames and bytes its agents sent and received)
 * once every one of them knows the whole network; on `leave` they leave and it exits.
 */
import { Agent } from '../src/control/agent';
import { sodiumReady } from '../src/crypto/sodium';
import { deriveNetworkKey, generateKeyPair } from '../src/crypto/keys';
import { setSink } from '../src/util/log';
import { countingConnector, type Counter } from './join';

interface Setup {
  t: 'setup';
  agents: number;
  total: number;
  port: number;
  secret: string;
}

async function main(): Promise<void> {
  setSink(() => {});
  const setup = await new Promise<Setup>((resolve) => process.once('message', (m) => resolve(m as Setup)));
  await sodiumReady();
  const psk = deriveNetworkKey(setup.secret);
  const counter: Counter = { bytes: 0, frames: 0 };
  const agents = Array.from({ length: setup.agents }, () => new Agent({ seedHost: '127.0.0.1', seedPort: setup.port, psk, keys: generateKeyPair(), services: [], connect: countingConnector(counter), joinTimeoutMs: 120_000 }));
  const go = new Promise<void>((resolve) => process.once('message', () => resolve()));
  process.send!({ t: 'ready' });
  await go;
  const c0 = process.cpuUsage();
  await Promise.all(agents.map((a) => a.join().then(() => a.waitForMembers(setup.total))));
  const leave = new Promise<void>((resolve) => process.once('message', () => resolve()));
  const c = process.cpuUsage(c0);
  process.send!({ t: 'done', frames: counter.frames, bytes: counter.bytes, cpuMs: (c.user + c.system) / 1000 });
  await leave;
  await Promise.all(agents.map((a) => a.leave()));
  process.exit(0);
}

main().catch((e: Error) => {
  console.error(`bench join-worker: ${e.stack ?? e.message}`);
  process.exit(1);
});
