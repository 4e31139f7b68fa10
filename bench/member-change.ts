/**
 * `node dist/bench/member-change.js [N]`: the agent's CPU per membership change at N members (issue 15).
 * One agent in this process, as `boxer run` composes it (the Agent, its virtual network with the route table,
 * the member services with the member file), knows N members (a mix of NAT kinds, a few on its own NAT);
 * then members join and leave as the seed would tell it (`joined` / `left`), and the process's CPU time
 * (process.cpuUsage: every thread, the file writes in libuv's pool included) is divided by the changes:
 *  - spaced: one change at a time, each with its own writes of both files (what a change after a quiet spell
 *    costs);
 *  - burst: BURST changes back to back (a join wave), until the files are written.
 * The member file and the route table must list the final membership at the end (checked).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../src/control/agent';
import { VirtualNetwork } from '../src/ipc/virtual-network';
import { MemberServices } from '../src/cli/member';
import { sodiumReady } from '../src/crypto/sodium';
import { generateKeyPair } from '../src/crypto/keys';
import { setSink } from '../src/util/log';
import type { MemberInfo, Message, NatKind } from '../src/wire/messages';

const SPACED = 100;
const WARMUP = 40;
const BURST = 200;
/** Bound on waiting for the files to show the final membership. */
const SETTLE_MS = 5_000;

const KINDS: NatKind[] = ['open', 'preserving', 'translating', 'random'];

function info(id: number): MemberInfo {
  const nat = KINDS[id % KINDS.length];
  const ip = id % 50 === 0 ? '198.51.100.1' : `203.0.${(id >> 8) & 255}.${id & 255}`;
  return {
    id,
    name: `node-${id}`,
    addr: `100.96.${(id >> 8) & 255}.${id & 255}`,
    services: id % 10 === 0 ? ['svc'] : [],
    ext: { ip, port: 40000 + id },
    priv: [{ ip: `10.0.${(id >> 8) & 255}.${id & 255}`, port: 7000 }],
    nat,
    key: new Uint8Array(32).fill(id & 255),
    lport: 7000,
    map: { xor: nat === 'translating' ? 5 : 0, offset: 0, lo: 32768, hi: 60999, rlo: 32768, rhi: 60999 },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`member-change: ${what} not within ${ms} ms`);
    await sleep(5);
  }
}

export async function benchMemberChange(n: number): Promise<{ n: number; spacedMs: number; burstMs: number }> {
  await sodiumReady();
  setSink(() => {});
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-change-'));
  process.env.TMPDIR = tmp;
  const keys = generateKeyPair();
  const agent = new Agent({ seedHost: '127.0.0.1', seedPort: 1, psk: new Uint8Array(32), keys, services: [] });
  // As after a welcome: we are member 1 (behind the NAT of a few others) and know n members.
  const self = info(50);
  agent.self = { id: self.id, name: self.name, addr: self.addr, network: '100.96.0.0/16', observed: self.ext! };
  for (let id = 1; id <= n; id++) agent.members.set(id, info(id));
  const vnet = new VirtualNetwork(agent, keys);
  const member = new MemberServices(agent, '127.0.0.1:1');
  await vnet.start();
  const deliver = (m: Message) => (agent as unknown as { onMessage(m: Message): void }).onMessage(m);
  const lines = (f: string) => fs.readFileSync(f, 'utf8').split('\n').filter((l) => l && !l.includes(' from ')).length;
  try {
    await sleep(100);
    let next = n + 1;
    // One change at a time, each written out (flush: the write it would get after a quiet spell); the first
    // WARMUP (their code paths being compiled) not measured.
    const one = async (i: number) => {
      deliver(i % 2 === 0 ? { t: 'joined', m: info(next) } : { t: 'left', id: next++, reason: 'leave' });
      await Promise.all([member.flush(), vnet.flush()]);
    };
    for (let i = 0; i < WARMUP; i++) await one(i);
    const c0 = cpuMs();
    for (let i = 0; i < SPACED; i++) await one(i);
    const spacedMs = (cpuMs() - c0) / SPACED;
    const c1 = cpuMs();
    for (let i = 0; i < BURST; i++) deliver({ t: 'joined', m: info(next++) });
    const want = n + BURST;
    await until(() => lines(member.nodesFile) === want && fs.readFileSync(vnet.routesFile, 'utf8').includes(` ${info(next - 1).addr} `), SETTLE_MS, 'the files to list every member');
    const burstMs = (cpuMs() - c1) / BURST;
    return { n, spacedMs, burstMs };
  } finally {
    await vnet.close();
    await member.close();
    agent.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) {
  benchMemberChange(Number(process.argv[2] ?? 1000))
    .then((r) => {
      console.log(JSON.stringify(r));
      process.exit(0);
    })
    .catch((e: Error) => {
      console.error(`bench member-change failed: ${e.stack ?? e.message}`);
      process.exit(1);
    });
}
