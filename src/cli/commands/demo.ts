/**
 * `boxer demo`: the README's main job. A seed on a public host and members in functions behind the lab's
 * emulated NATs (every kind), each running an ordinary program; or, with --loopback (no root needed), the same
 * on this host's own network, where no NAT is crossed. `--scenario burst`: the paper's burst with a live view
 * (overlay/burst-demo.ts).
 */
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import { Lab, checkLabPrerequisites, loadTopologyFile } from '../../../overlay';
import { BoxerError } from '../../util/errors';
import { DEFAULT_SEED_PORT } from '../../constants';
import { BURST_DEMO_EDGE_S, BURST_DEMO_MAX_SECONDS, BURST_DEMO_MIN_SECONDS, BURST_DEMO_SECONDS, DEMO_TIMEOUT_MS } from '../../constants';

const BOXER = path.resolve(__dirname, '../../../../bin/boxer');
const SECRET = 'boxer demo secret: not for real networks';

/**
 * The demo's programs, unmodified: `web` serves a page with python3's http.server; the other members fetch it
 * with curl by name (`http://web:8080/`), through the preload shim, then show their agent's view of the
 * network (`boxer status`: each peer's path through the NATs).
 */
const WEB_PROGRAM = `cd "$TMPDIR"; mkdir -p www; echo "hello from $BOXER_NAME at $BOXER_ADDR" > www/index.html; cd www; python3 -m http.server 8080 >/dev/null 2>&1 & P=$!; while [ ! -e "$STOP" ]; do sleep 0.2; done; kill $P`;
const CLIENT_PROGRAM = `sleep 1; body=$(curl -sS --retry 10 --retry-connrefused --retry-delay 1 --max-time 20 http://web:8080/) && echo "$BOXER_NAME ($BOXER_ADDR) fetched http://web:8080/: $body" || echo "$BOXER_NAME could not fetch http://web:8080/"; node "$BOXER_CLI" status`;

interface Placement {
  /** Where the member runs: a lab node, or this host. */
  node: string;
  name: string;
  program: string;
  where: string;
}

type Spawner = (node: string, args: string[], env: Record<string, string>) => ChildProcess;

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

export type DemoScenario = 'web' | 'burst';

export async function demoCommand(a: { loopback: boolean; scenario?: DemoScenario; seconds?: number }): Promise<void> {
  if (a.scenario !== 'burst' && a.seconds !== undefined) throw new BoxerError('USAGE', '--seconds is for --scenario burst (the web scenario ends when its members have fetched the page)');
  if (a.scenario === 'burst') {
    if (a.loopback) throw new BoxerError('USAGE', 'the burst scenario needs the lab (functions behind NATs): run it without --loopback, as root');
    const seconds = a.seconds ?? BURST_DEMO_SECONDS;
    if (!(Number.isInteger(seconds) && seconds >= BURST_DEMO_MIN_SECONDS && seconds <= BURST_DEMO_MAX_SECONDS)) {
      throw new BoxerError('USAGE', `--seconds must be a whole number from ${BURST_DEMO_MIN_SECONDS} to ${BURST_DEMO_MAX_SECONDS} (got ${seconds})`);
    }
    const pre = checkLabPrerequisites();
    if (!pre.ok) throw new BoxerError('LAB_UNAVAILABLE', `the burst scenario's lab cannot be built here: ${pre.reason}. Run it as root.`);
    return burstLabDemo(seconds);
  }
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

/**
 * Runs the demo's network: a seed, `web`, and the clients; returns once every client has finished (web and
 * the seed are then stopped). Exit status 1 when a client could not fetch the page.
 */
async function runDemo(seedNode: string, seedAddr: string, placements: Placement[], spawnOn: Spawner, stopFile: string): Promise<void> {
  const children: ChildProcess[] = [];
  const env = { BOXER_SECRET: SECRET, BOXER_CLI: BOXER, STOP: stopFile };
  try {
    const seed = spawnOn(seedNode, ['seed', '--listen', seedAddr], env);
    children.push(seed);
    prefixLines('seed', seed);
    await new Promise((r) => setTimeout(r, 1000));
    const members = placements.map((p) => {
      console.log(`member ${p.name}: ${p.where}`);
      const child = spawnOn(p.node, ['run', '--seed', seedAddr, '--nodes', String(placements.length), '--name', p.name, '--', 'sh', '-c', p.program], env);
      children.push(child);
      prefixLines(p.name, child);
      return { ...p, child };
    });
    const clients = members.filter((m) => m.name !== 'web');
    let output = '';
    for (const c of clients) c.child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    await withTimeout(Promise.all(clients.map((m) => exited(m.child))), DEMO_TIMEOUT_MS);
    fs.writeFileSync(stopFile, '');
    await Promise.all(members.map((m) => exited(m.child)));
    seed.kill('SIGTERM');
    await exited(seed);
    const fetched = (output.match(/fetched http:\/\/web:8080\/: hello from web/g) ?? []).length;
    console.log(
      fetched === clients.length
        ? `demo: ${clients.length} members fetched a page from \`web\` by name over Boxer's virtual network, with unmodified curl and python3`
        : `demo: only ${fetched} of ${clients.length} members could fetch the page`,
    );
    process.exitCode = fetched === clients.length ? 0 : 1;
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    try {
      fs.unlinkSync(stopFile);
    } catch {
      /* gone */
    }
  }
}

async function labDemo(): Promise<void> {
  console.log('building the lab: a seed host, a VM, and functions behind every kind of NAT (docs/lab.md) ...');
  const lab = await Lab.up(loadTopologyFile(), {});
  process.once('SIGINT', () => {
    lab.downSync();
    process.exit(130);
  });
  try {
    const seedAddr = `${lab.node('seed').address}:${DEFAULT_SEED_PORT}`;
    const where = (n: string) => {
      const i = lab.node(n);
      return `${i.role} ${i.address}${i.nat ? ` behind a ${i.nat} NAT (seen as ${i.publicAddress})` : ' (public)'}`;
    };
    const placements: Placement[] = [
      { node: 'fta', name: 'web', program: WEB_PROGRAM, where: where('fta') },
      ...['vm1', 'fp', 'fsa', 'fr'].map((n) => ({ node: n, name: n, program: CLIENT_PROGRAM, where: where(n) })),
    ];
    const spawnOn: Spawner = (node, args, env) => lab.spawn(node, process.execPath, [BOXER, ...args], { env, stdio: 'pipe' });
    await runDemo('seed', seedAddr, placements, spawnOn, path.join('/tmp', `${lab.prefix}-demo-stop`));
  } finally {
    lab.downSync();
  }
}

/**
 * The burst scenario: builds the lab, runs overlay/burst-demo.ts for `seconds` (5 s on the VM alone, the
 * functions joined for the rest but 5 s, 5 s after they left), prints the summary; removes the lab at the end,
 * on failure, and on SIGINT/SIGTERM. Exit status 1 when a function served no request or a request failed.
 */
async function burstLabDemo(seconds: number): Promise<void> {
  console.log('building the lab: a seed host, two VMs, and functions behind NATs (docs/lab.md) ...');
  const lab = await Lab.up(loadTopologyFile(), {});
  console.log(`lab ${lab.prefix} is up (its namespaces and processes are removed at the end, and on Ctrl-C)`);
  const onSignal = (sig: NodeJS.Signals) => {
    lab.downSync();
    process.stdout.write(`\ndemo: interrupted (${sig}); the lab is removed\n`);
    process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const { burstDemo } = await import('../../../overlay/burst-demo');
    const phases = { before: BURST_DEMO_EDGE_S, during: seconds - 2 * BURST_DEMO_EDGE_S, after: BURST_DEMO_EDGE_S };
    const r = await burstDemo({ lab, phases, out: (x) => process.stdout.write(x), tty: Boolean(process.stdout.isTTY) });
    const fns = [...r.firstServedMs];
    const ok = fns.filter(([, ms]) => Number.isFinite(ms));
    for (const [name, n] of [...r.served].sort()) console.log(`served by ${name}: ${n} requests`);
    for (const [name, ms] of fns) console.log(`${name}: ${Number.isFinite(ms) ? `first request served ${(ms / 1000).toFixed(1)} s after its start` : 'served no request'}`);
    console.log(
      `demo: burst: ${ok.length} of ${fns.length} functions joined the service and served requests; throughput ${r.rpsBefore.toFixed(0)} req/s on the VM alone, ${r.rpsDuring.toFixed(0)} req/s with the functions; failed requests: ${r.failed}`,
    );
    process.exitCode = ok.length === fns.length && r.failed === 0 ? 0 : 1;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    lab.downSync();
  }
}

async function loopbackDemo(): Promise<void> {
  console.log('loopback demo: the seed and the members share this host network; no NAT is crossed.');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-demo-'));
  try {
    const port = 17000 + Math.floor(Math.random() * 1000);
    const placements: Placement[] = [
      { node: 'local', name: 'web', program: WEB_PROGRAM, where: 'this host' },
      ...['alpha', 'beta'].map((n) => ({ node: 'local', name: n, program: CLIENT_PROGRAM, where: 'this host' })),
    ];
    const spawnOn: Spawner = (_node, args, env) =>
      spawn(process.execPath, [BOXER, ...args], { env: { ...process.env, TMPDIR: tmp, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    await runDemo('local', `127.0.0.1:${port}`, placements, spawnOn, path.join(tmp, 'stop'));
  } finally {
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
