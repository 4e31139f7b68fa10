/**
 * `boxer demo`: the README's main job. A seed on a public host and members in functions behind the lab's
 * emulated NATs (every kind), each running an ordinary program; or, with --loopback (no root needed), the same
 * on this host's own network, where no NAT is crossed.
 */
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import { Lab, checkLabPrerequisites, loadTopologyFile } from '../../../overlay';
import { BoxerError } from '../../util/errors';
import { DEFAULT_SEED_PORT } from '../../constants';

const BOXER = path.resolve(__dirname, '../../../../bin/boxer');
/** The demo ends by itself: a bound on how long its members may take (a hang is a bug, not a wait). */
const DEMO_TIMEOUT_MS = 90_000;
const SECRET = 'boxer demo secret: not for real networks';

/** Each member says who it is, lists the network, and asks its agent for the status table. */
const MEMBER_PROGRAM = `echo "hello from $BOXER_NAME: virtual address $BOXER_ADDR, id $BOXER_NODE_ID"; echo "members ($BOXER_NODES_FILE):"; sed 's/^/  /' "$BOXER_NODES_FILE"; node "$BOXER_CLI" status; sleep 2`;

interface Member {
  name: string;
  where: string;
  child: ChildProcess;
}

function prefixLines(name: string, child: ChildProcess): void {
  for (const s of [child.stdout, child.stderr]) {
    let buf = '';
    s?.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        process.stdout.write(`[${name}] ${buf.slice(0, nl)}\n`);
        buf = buf.slice(nl + 1);
      }
    });
  }
}

function exited(child: ChildProcess): Promise<number> {
  return new Promise((r) => {
    if (child.exitCode !== null) return r(child.exitCode);
    child.on('exit', (code, sig) => r(code ?? (sig ? 128 : 0)));
  });
}

export async function demoCommand(a: { loopback: boolean }): Promise<void> {
  if (!a.loopback) {
    const pre = checkLabPrerequisites();
    if (!pre.ok) {
      throw new BoxerError(
        'LAB_UNAVAILABLE',
        `the demo's emulated NATs cannot be built here: ${pre.reason}. Run it as root, or run \`boxer demo --loopback\` (members share this host's network; no NAT is crossed).`,
      );
    }
    return labDemo();
  }
  return loopbackDemo();
}

async function labDemo(): Promise<void> {
  console.log('building the lab: a seed host, a VM, and functions behind every kind of NAT (docs/lab.md) ...');
  const lab = await Lab.up(loadTopologyFile(), {});
  const children: ChildProcess[] = [];
  const cleanup = () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    lab.downSync();
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    const seedNode = lab.node('seed');
    const seedAddr = `${seedNode.address}:${DEFAULT_SEED_PORT}`;
    const env = { BOXER_SECRET: SECRET, BOXER_CLI: BOXER };
    const seed = lab.spawn('seed', process.execPath, [BOXER, 'seed', '--listen', seedAddr], { env, stdio: 'pipe' });
    children.push(seed);
    prefixLines('seed', seed);
    await new Promise((r) => setTimeout(r, 1000));
    const placements = ['vm1', 'fp', 'fsa', 'fta', 'fr'];
    const members: Member[] = placements.map((n) => {
      const info = lab.node(n);
      const child = lab.spawn(n, process.execPath, [BOXER, 'run', '--seed', seedAddr, '--nodes', String(placements.length), '--name', n, '--', 'sh', '-c', MEMBER_PROGRAM], {
        env,
        stdio: 'pipe',
      });
      children.push(child);
      prefixLines(n, child);
      return { name: n, where: `${info.role} ${info.address}${info.nat ? ` behind a ${info.nat} NAT (${info.publicAddress})` : ''}`, child };
    });
    for (const m of members) console.log(`member ${m.name}: ${m.where}`);
    const codes = await withTimeout(Promise.all(members.map((m) => exited(m.child))), DEMO_TIMEOUT_MS);
    seed.kill('SIGTERM');
    await exited(seed);
    const failed = codes.filter((c) => c !== 0).length;
    console.log(failed ? `demo: ${failed} member(s) failed` : `demo: ${members.length} members behind NATs joined one network and saw each other`);
    process.exitCode = failed ? 1 : 0;
  } finally {
    cleanup();
  }
}

async function loopbackDemo(): Promise<void> {
  console.log('loopback demo: the seed and three members share this host network; no NAT is crossed.');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-demo-'));
  const env = { ...process.env, TMPDIR: tmp, BOXER_SECRET: SECRET, BOXER_CLI: BOXER };
  const children: ChildProcess[] = [];
  try {
    const port = 17000 + Math.floor(Math.random() * 1000);
    const seed = spawn(process.execPath, [BOXER, 'seed', '--listen', `127.0.0.1:${port}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(seed);
    prefixLines('seed', seed);
    await new Promise((r) => setTimeout(r, 800));
    const names = ['alpha', 'beta', 'gamma'];
    const members = names.map((n) => {
      const c = spawn(process.execPath, [BOXER, 'run', '--seed', `127.0.0.1:${port}`, '--nodes', '3', '--name', n, '--', 'sh', '-c', MEMBER_PROGRAM], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(c);
      prefixLines(n, c);
      return c;
    });
    const codes = await withTimeout(Promise.all(members.map(exited)), DEMO_TIMEOUT_MS);
    seed.kill('SIGTERM');
    await exited(seed);
    const failed = codes.filter((c) => c !== 0).length;
    console.log(failed ? `demo: ${failed} member(s) failed` : 'demo: three members joined one network and saw each other');
    process.exitCode = failed ? 1 : 0;
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new BoxerError('INTERNAL', `the demo did not finish within ${ms / 1000} s`)), ms);
    }),
  ]);
}
