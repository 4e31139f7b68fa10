/**
 * Fault injection in the lab, each with its exact outcome and the time it took to notice (docs/security.md):
 * kill -9 of the seed (members keep their connections, new connections still set up, including first ones
 * between members that never spoke), 10% loss on every NAT (each connection sets up or fails with a native
 * errno in bounded time, never ENETUNREACH, never a hang), a NAT that forgets its mappings (`conntrack -F`:
 * connections held through it carry on), and a full disk under the agent's $TMPDIR (a small tmpfs).
 * Programs are test/programs/faults.py clients and echo.py servers under the shim.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import type { Lab } from '../../overlay';
import { labTest } from '../lab/helpers';
import { LabNet, PROGRAMS, type Member } from './labnet';

const lt = labTest();
const ECHO = (port = 7007) => ['python3', `${PROGRAMS}/echo.py`, String(port)];
const CLIENT = ['python3', `${PROGRAMS}/faults.py`];
/** Errnos a native connect or read can end in on a bad network: anything else (ENETUNREACH: "no agent") is wrong. */
const NATIVE = ['ETIMEDOUT', 'EHOSTUNREACH', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'timeout'];
/** Bound on one attempt in the clients (connect or read): against hangs only. */
const ATTEMPT_S = 20;

interface Attempt {
  round: number;
  t: number;
  to: string;
  kind: 'new' | 'held';
  ok: boolean;
  err: string | null;
  ms: number;
}

function attempts(m: Member): Attempt[] {
  return m
    .out()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Attempt);
}

function summary(list: Attempt[]): string {
  const ok = list.filter((a) => a.ok).length;
  const ms = list.map((a) => a.ms).sort((a, b) => a - b);
  const errs = [...new Set(list.filter((a) => !a.ok).map((a) => a.err))].join(',');
  return `${ok}/${list.length} ok${errs ? ` (failed: ${errs})` : ''}, median ${ms[ms.length >> 1] ?? 0} ms, max ${ms[ms.length - 1] ?? 0} ms`;
}

/** Polls `cond` every 20 ms (bounded by `ms`); resolves with the time it became true. */
async function until(cond: () => boolean, ms: number, what: string): Promise<number> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now();
}

function failures(t: ExecutionContext, list: Attempt[], what: string): void {
  const bad = list.filter((a) => !a.ok).map((a) => `${what}: round ${a.round} ${a.kind} -> ${a.to}: ${a.err} after ${a.ms} ms`);
  t.deepEqual(bad, [], bad.join('\n'));
}

lt.serial('kill -9 of the seed: members keep their connections and new ones still set up, first ones too (an open member to a random NAT: it relays itself)', async (t, lab) => {
  t.timeout(4 * 60_000);
  const net = new LabNet(lab);
  const start = path.join('/tmp', `${lab.prefix}-start-${net.port}`);
  try {
    await net.startSeed();
    const env = { BOXER_LOG: 'info', STOP: net.stopFile };
    net.member('vm1', 'echo1', 6, ECHO(), { env });
    net.member('fta', 'echot', 6, ECHO(), { env });
    net.member('fr', 'echor', 6, ECHO(), { env });
    // Before the kill: fp talks to all three (direct, punched, relayed through vm1) every 0.5 s.
    const before = net.member('fp', 'cli', 6, CLIENT, { env: { ...env, TARGETS: 'echo1:7007 echot:7007 echor:7007', ROUNDS: '24', ROUND: '0.5', TIMEOUT: String(ATTEMPT_S) } });
    // After the kill only: ftb speaks for the first time to members it never linked to (no seed to signal through).
    const fresh = net.member('ftb', 'fresh', 6, CLIENT, { env: { ...env, TARGETS: 'echo1:7007 echor:7007', ROUNDS: '4', ROUND: '0.5', HOLD: '0', START_FILE: start, TIMEOUT: String(ATTEMPT_S) } });
    // vm2 is open, the only way to echor (random NAT) is a relay: itself (no seed to relay, docs/nat-traversal.md).
    const open = net.member('vm2', 'open', 6, CLIENT, { env: { ...env, TARGETS: 'echor:7007 echot:7007', ROUNDS: '4', ROUND: '0.5', HOLD: '0', START_FILE: start, TIMEOUT: String(ATTEMPT_S) } });
    await net.waitFor(before, /^READY$/m);
    await until(() => attempts(before).length >= 12, 60_000, 'two rounds before the kill');
    const killedAt = Date.now();
    net.seedProc!.kill('SIGKILL');
    const noticed = await until(() => net.members.every((m) => /lost the connection to the seed/.test(m.err())), 60_000, 'every member to notice the seed is gone');
    fs.writeFileSync(start, '');
    await net.waitFor(before, /^DONE$/m);
    await net.waitFor(fresh, /^DONE$/m);
    await net.waitFor(open, /^DONE$/m);
    const after = attempts(before).filter((a) => a.t * 1000 >= killedAt);
    t.true(after.length >= 12, `${after.length} attempts after the kill`);
    failures(t, attempts(before), 'cli');
    failures(t, attempts(fresh), 'fresh');
    failures(t, attempts(open), 'open');
    // Its connections to echor (one held from the start, 4 new) were relayed, by itself (self first).
    const st = (await net.status('vm2')) as { vnet: { relay: { relayed: number }; connections: { relayed: number } } };
    t.is(st.vnet.connections.relayed, 5, 'vm2 relayed its 5 connections to echor');
    t.true(st.vnet.relay.relayed >= 5, `vm2's own relay carried them (${st.vnet.relay.relayed})`);
    t.log(`every member noticed the seed's death after ${noticed - killedAt} ms`);
    t.log(`cli after the kill: ${summary(after)}; first connections after it (ftb): ${summary(attempts(fresh))}; open member to a random NAT, no seed (vm2): ${summary(attempts(open))}`);
  } finally {
    fs.rmSync(start, { force: true });
    await net.stop();
  }
});

lt.serial('10% loss on every NAT: each connection sets up or fails with a native errno in bounded time', async (t, lab) => {
  t.timeout(5 * 60_000);
  const gateways = ['pres', 'rand', 'trans'];
  const net = new LabNet(lab);
  try {
    await net.startSeed();
    net.member('vm1', 'echo1', 4, ECHO());
    net.member('fta', 'echot', 4, ECHO());
    net.member('fr', 'echor', 4, ECHO());
    const cli = net.member('fp', 'cli', 4, CLIENT, { env: { TARGETS: 'echo1:7007 echot:7007 echor:7007', ROUNDS: '20', ROUND: '0.2', HOLD: '1', TIMEOUT: String(ATTEMPT_S) } });
    await net.waitFor(cli, /^READY$/m);
    for (const g of gateways) await lab.setLoss(g, 10);
    await net.waitFor(cli, /^DONE$/m, 4 * 60_000);
    const list = attempts(cli);
    for (const to of ['echo1:7007', 'echot:7007', 'echor:7007'])
      for (const kind of ['new', 'held'] as const) t.log(`${to} ${kind}: ${summary(list.filter((a) => a.to === to && a.kind === kind))}`);
    t.is(list.length, 20 * 3 * 2);
    const wrong = list.filter((a) => !a.ok && !NATIVE.includes(a.err ?? '')).map((a) => `${a.to} ${a.kind}: ${a.err}`);
    t.deepEqual(wrong, [], `errnos a native connect would not give: ${wrong.join(', ')}`);
    t.true(list.every((a) => a.ms <= (ATTEMPT_S + 2) * 1000), 'every attempt ended in bounded time');
    // At 10% loss per direction and NAT, TCP retransmits: most set up; what fails says so natively.
    t.true(list.filter((a) => a.ok).length >= list.length * 0.8, summary(list));
  } finally {
    for (const g of gateways) await lab.setLoss(g, 0);
    await net.stop();
  }
});

/** `conntrack -F` in a NAT's namespace: the gateway forgets every mapping at once (a NAT restart). */
async function flush(lab: Lab, gateway: string): Promise<void> {
  const r = await lab.exec(gateway, 'conntrack', ['-F'], { timeoutMs: 10_000, asRoot: true });
  if (r.code !== 0) throw new Error(`conntrack -F on ${gateway}: ${r.stderr}`);
}

lt.serial('conntrack -F on the NATs: a held connection recovers within the keepalive, a relayed one through a random NAT is reset', async (t, lab) => {
  t.timeout(5 * 60_000);
  const net = new LabNet(lab);
  const start = path.join('/tmp', `${lab.prefix}-start-${net.port}`);
  try {
    await net.startSeed();
    net.member('fp', 'echop', 5, ECHO());
    net.member('fr', 'echor', 5, ECHO());
    net.member('vm1', 'relay', 5, ['sleep', '300']);
    // The clients are outside both NATs: after the flush, their packets are the first the NATs see of each flow.
    // One client per target, so that each held connection is tried right after the flush.
    const env = { ROUNDS: '3', ROUND: '5', START_FILE: start, TIMEOUT: '150' };
    const clis = [net.member('fta', 'clip', 5, CLIENT, { env: { ...env, TARGETS: 'echop:7007' } }), net.member('ftb', 'clir', 5, CLIENT, { env: { ...env, TARGETS: 'echor:7007' } })];
    for (const c of clis) await net.waitFor(c, /^READY$/m);
    for (const g of ['pres', 'rand', 'trans']) await flush(lab, g);
    fs.writeFileSync(start, '');
    for (const c of clis) await net.waitFor(c, /^DONE$/m, 4 * 60_000);
    const list = clis.flatMap(attempts);
    for (const to of ['echop:7007', 'echor:7007'])
      for (const kind of ['new', 'held'] as const) t.log(`${to} ${kind}: ${list.filter((a) => a.to === to && a.kind === kind).map((a) => `${a.ok ? 'ok' : a.err} ${a.ms} ms`).join(', ')}`);
    // New connections: through the preserving NAT at once. Through the random one, the member's peer links died
    // with their mappings (its next packets leave from new ports): until its home link is back (its 1 s
    // keepalive meets a reset, it relinks) a relayed set-up can miss its budget: ETIMEDOUT then, never a hang.
    const fresh = list.filter((a) => a.kind === 'new');
    failures(t, fresh.filter((a) => a.to === 'echop:7007' || a.round > 0), 'new connections after the flush');
    t.true(fresh.every((a) => a.ok || (a.err === 'ETIMEDOUT' && a.ms < 5_000)), 'the first may fail with ETIMEDOUT inside the budget');
    // Punched through a port-preserving NAT: the member's next keepalive (SHIM_KEEPALIVE_IDLE_S = 20 s) maps
    // the flow again, and the far end's next retransmission passes: at most about twice the keepalive.
    const held = list.filter((a) => a.kind === 'held');
    const p = held.filter((a) => a.to === 'echop:7007');
    t.deepEqual(p.map((a) => a.ok), [true, true, true], 'the punched connection carried on');
    t.true(p[0].ms <= 2.5 * 20_000 + 2_000, `stalled ${p[0].ms} ms`);
    // Relayed from a port-randomizing NAT: the member's next packet leaves from a new port, the flow is gone for
    // good; the relay's half finds it dead (RELAY_USER_TIMEOUT_MS 30 s) and resets the client's: ECONNRESET.
    const r = held.filter((a) => a.to === 'echor:7007');
    t.deepEqual(r.map((a) => a.err), ['ECONNRESET'], 'the relayed connection was reset');
    t.true(r[0].ms <= 30_000 + 15_000, `reset after ${r[0].ms} ms`);
  } finally {
    fs.rmSync(start, { force: true });
    await net.stop();
  }
});

lt.serial('disk full under the agent ($TMPDIR a 4 MiB tmpfs, filled): it keeps the last good member file and serves on', async (t, lab) => {
  t.timeout(4 * 60_000);
  const net = new LabNet(lab);
  const mnt = path.join('/tmp', `${lab.prefix}-full-${net.port}`);
  fs.mkdirSync(mnt, { recursive: true });
  // Mounted in our own mount namespace, which the lab's nodes see (each `ip netns exec` starts from a copy).
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=1777', 'tmpfs', mnt], { timeout: 10_000 });
  const fill = path.join(mnt, 'fill');
  try {
    await net.startSeed();
    const keep = net.member('fp', 'keep', 2, ['sh', '-c', `echo "FILE=$BOXER_NODES_FILE"; exec python3 ${PROGRAMS}/echo.py 7007`], { env: { TMPDIR: mnt } });
    net.member('vm1', 'first', 2, ECHO());
    const file = (await net.waitFor(keep, /^FILE=(.+)$/m))[1];
    t.true(file.startsWith(mnt), `the member file ${file} is under the small $TMPDIR`);
    // Fill the file system to the last byte.
    const fd = fs.openSync(fill, 'w');
    try {
      const chunk = Buffer.alloc(64 * 1024);
      for (let i = 0; i < 1024; i++) fs.writeSync(fd, chunk);
      t.fail('a 4 MiB tmpfs took 64 MiB');
    } catch (e) {
      t.is((e as NodeJS.ErrnoException).code, 'ENOSPC');
    } finally {
      fs.closeSync(fd);
    }
    const late = net.member('vm2', 'late', 3, CLIENT, { env: { TARGETS: 'keep:7007 first:7007', ROUNDS: '3', ROUND: '0.3', HOLD: '0' } });
    const joined = Date.now();
    const noticed = await until(() => /cannot write the member file.*ENOSPC/.test(keep.err()), 60_000, 'the agent to log ENOSPC');
    t.is(keep.child.exitCode, null, 'the agent is still running');
    t.notRegex(fs.readFileSync(file, 'utf8'), /\blate\b/, 'the last good member file stays');
    t.regex(fs.readFileSync(file, 'utf8'), /\bfirst\b/);
    await net.waitFor(late, /^DONE$/m);
    failures(t, attempts(late), 'late -> keep, first while keep\'s disk is full');
    t.is(keep.err().match(/cannot write the member file/g)?.length, 1, 'logged once');
    fs.rmSync(fill);
    const freed = Date.now();
    const caught = await until(() => /\blate\b/.test(fs.readFileSync(file, 'utf8')), 30_000, 'the member file to catch up');
    t.regex(keep.err(), /the member file is up to date again/);
    t.deepEqual(fs.readdirSync(path.dirname(file)).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left');
    t.log(`ENOSPC logged ${noticed - joined} ms after the new member started; the file caught up ${caught - freed} ms after space came back`);
  } finally {
    await net.stop();
    fs.rmSync(fill, { force: true });
    execFileSync('umount', ['-l', mnt], { timeout: 10_000 });
    fs.rmSync(mnt, { recursive: true, force: true });
  }
});

/** Asks the node's only agent to close its peer links (a test-only control request), as LINK_IDLE_MS would. */
async function closeLinks(lab: Lab, node: string): Promise<void> {
  const script = `const { controlRequest, findAgent } = require(${JSON.stringify(path.join(__dirname, '../../src/ipc/control.js'))});
findAgent().then((p) => controlRequest(p, { op: 'close-links' })).then((r) => { if (!r.ok) process.exit(1); }, (e) => { console.error(e.message); process.exit(1); });`;
  const r = await lab.exec(node, process.execPath, ['-e', script], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`close-links on ${node}: ${r.stderr}`);
}

lt.serial('members behind one NAT after their peer link idled out: connections set up at once, without the link', async (t, lab) => {
  t.timeout(3 * 60_000);
  const net = new LabNet(lab);
  const start = path.join('/tmp', `${lab.prefix}-start-${net.port}`);
  try {
    await net.startSeed();
    net.member('vm1', 'relay', 5, ['sleep', '300']);
    net.member('flb', 'lanb', 5, ECHO());
    net.member('fsb', 'hairb', 5, ECHO());
    // One connection each (the link opens and tells the path), then every link closes, then 4 more rounds.
    const lan = net.member('fla', 'lana', 5, CLIENT, { env: { TARGETS: 'lanb:7007', ROUNDS: '4', ROUND: '0.3', HOLD: '0', START_FILE: start } });
    const hair = net.member('fsa', 'haira', 5, CLIENT, { env: { TARGETS: 'hairb:7007', ROUNDS: '4', ROUND: '0.3', HOLD: '0', START_FILE: start } });
    await net.waitFor(lan, /^READY$/m);
    await net.waitFor(hair, /^READY$/m);
    for (const n of ['fla', 'flb', 'fsa', 'fsb']) await closeLinks(lab, n);
    fs.writeFileSync(start, '');
    await net.waitFor(lan, /^DONE$/m);
    await net.waitFor(hair, /^DONE$/m);
    failures(t, attempts(lan), 'lan');
    failures(t, attempts(hair), 'hairpin (relayed)');
    const links = async (node: string, peer: string) => {
      const st = (await net.status(node)) as { members: { id: number; name: string }[]; links: { id: number }[] };
      const id = st.members.find((m) => m.name === peer)!.id;
      return st.links.filter((l) => l.id === id).length;
    };
    // The relayed connections needed no link to the far member (CONNECT used to open it first: 2.4 s hairpin);
    // the LAN ones' announcement reopens it in the background, after CONNECT was answered.
    const hairLinks = await links('fsa', 'hairb');
    t.is(hairLinks, 0, 'no link reopened to the member behind the same NAT for relayed connections');
    t.log(`after the links closed: lan ${summary(attempts(lan))}; hairpin/relayed ${summary(attempts(hair))}; links now: lan ${await links('fla', 'lanb')}, hairpin ${hairLinks}`);
  } finally {
    fs.rmSync(start, { force: true });
    await net.stop();
  }
});
