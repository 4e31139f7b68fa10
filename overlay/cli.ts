/**
 * `boxer lab ...`: the lab's subcommands, registered on a yargs builder so the main CLI plugs them in with
 * `.command('lab <cmd>', 'an emulated datacenter with real NATs', labCommand)`:
 *   up [--topology FILE] [--prefix P]   build a lab and leave it running (state in $TMPDIR/boxer-lab)
 *   down [--stale] [--prefix P]         remove labs left running by `up` (or one; or those whose owner died)
 *   exec NODE [--root] -- CMD...        run CMD inside a node, with its stdio; exits with CMD's status
 *   status [--json]                     prerequisites, labs and their nodes
 *   set GATEWAY [--loss N] [--rate R|off] [--idle S|off]   change a gateway's knobs at run time
 * Errors are thrown as BoxerError (the main CLI maps them to exit statuses).
 */

import type { Argv } from 'yargs';
import { BoxerError } from '../src/util/errors';
import * as os from 'node:os';
import { describeNodes, Lab, NodeInfo } from './lab';
import { isStale, LabState } from './state';
import { checkLabPrerequisites } from './sys';
import { TopologyError } from './topology';
import { loadTopologyFile, planTopology } from './topology-plan';

/** Exit status of a command killed by a signal, as a shell reports it. */
const SIGNAL_EXIT_BASE = 128;

export function labCommand(y: Argv): Argv {
  return y
    .command(
      'up',
      'build a lab (the default topology has every NAT kind) and leave it running',
      (c) =>
        c
          .option('topology', { type: 'string', description: 'topology file (JSON; docs/lab.md); default overlay/default-topology.json' })
          .option('prefix', { type: 'string', description: 'prefix of every name the lab creates (default bx + 4 random characters)' }),
      async (a) => {
        const topology = withTopologyErrors(() => loadTopologyFile(a.topology));
        const lab = await Lab.up(topology, { prefix: a.prefix, persistent: true });
        printLab(lab.nodes);
        console.log(`\nlab ${lab.prefix} is up: \`boxer lab exec seed -- ip -br addr\`, \`boxer lab down\``);
      },
    )
    .command(
      'down',
      'remove the labs left running by `boxer lab up` (all of them, or --prefix P)',
      (c) =>
        c
          .option('stale', { type: 'boolean', default: false, description: 'instead, remove every lab whose owner process is gone' })
          .option('prefix', { type: 'string', description: 'remove this lab (whoever built it)' }),
      (a) => labDown(a),
    )
    .command(
      'exec <node> [cmd..]',
      'run CMD inside a node (as boxerfn on hosts and functions, root on gateways): boxer lab exec fp -- CMD',
      (c) =>
        c
          .positional('node', { type: 'string', demandOption: true })
          .positional('cmd', { type: 'string', array: true })
          .option('prefix', { type: 'string', description: 'which lab (default: the one left running by `up`)' })
          .option('root', { type: 'boolean', description: 'run as root (default: root on gateways only)' }),
      (a) => labExec(a),
    )
    .command(
      'status',
      'say whether a lab can be built here, and list the labs and their nodes',
      (c) => c.option('json', { type: 'boolean', default: false, description: 'machine-readable output' }),
      (a) => labStatus(a),
    )
    .command(
      'set <gateway>',
      "change a gateway's loss, rate limit or idle timeout",
      (c) =>
        c
          .positional('gateway', { type: 'string', demandOption: true })
          .option('prefix', { type: 'string', description: 'which lab (default: the one left running by `up`)' })
          .option('loss', { type: 'number', description: 'percent of packets dropped, 0-100' })
          .option('rate', { type: 'string', description: 'rate limit like 10mbit, or off' })
          .option('idle', { type: 'string', description: 'TCP idle timeout in seconds, or off (kernel default)' }),
      (a) => labSet(a),
    )
    .demandCommand(1, 'say which lab command to run: up, down, exec, status, set');
}

/** `boxer lab down`. */
function labDown(a: { stale: boolean; prefix?: string }): void {
  let removed: string[];
  if (a.stale) removed = Lab.sweepStale();
  else if (a.prefix) {
    Lab.destroy(a.prefix);
    removed = [a.prefix];
  } else {
    removed = Lab.list().filter((s) => s.owner === null).map((s) => s.prefix);
    for (const p of removed) Lab.destroy(p);
  }
  console.log(removed.length ? `removed lab ${removed.join(', ')}` : 'no lab to remove');
}

/** `boxer lab exec NODE -- CMD`: exits with CMD's status. */
async function labExec(a: { node: unknown; cmd?: unknown[]; prefix?: string; root?: boolean }): Promise<void> {
  const tail = afterDashDash(process.argv);
  const cmd = tail.length ? tail : (a.cmd ?? []).map(String);
  if (cmd.length === 0) throw new BoxerError('USAGE', 'say what to run: boxer lab exec NODE -- CMD [ARGS...]');
  const lab = Lab.attach(pickLab(a.prefix).prefix);
  const child = lab.spawn(String(a.node), cmd[0], cmd.slice(1), { stdio: 'inherit', asRoot: a.root });
  const status = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? SIGNAL_EXIT_BASE + signalNumber(signal)));
  });
  process.exitCode = status;
}

/** `boxer lab status`. */
function labStatus(a: { json: boolean }): void {
  const pre = checkLabPrerequisites();
  const labs = Lab.list();
  if (a.json) {
    const out = labs.map((s) => ({ ...summary(s), nodes: nodesOf(s) }));
    console.log(JSON.stringify({ prerequisites: pre, labs: out }, null, 2));
    return;
  }
  console.log(pre.ok ? 'prerequisites: ok' : `prerequisites: missing: ${pre.reason}`);
  if (labs.length === 0) console.log('no lab');
  for (const s of labs) {
    const sm = summary(s);
    console.log(`\nlab ${s.prefix} (created ${s.createdAt}, ${sm.owner})`);
    printLab(nodesOf(s), s);
  }
}

/** `boxer lab set GATEWAY`. */
async function labSet(a: { gateway: unknown; prefix?: string; loss?: number; rate?: string; idle?: string }): Promise<void> {
  const lab = Lab.attach(pickLab(a.prefix).prefix);
  const gw = String(a.gateway);
  if (a.loss !== undefined) await lab.setLoss(gw, a.loss);
  if (a.rate !== undefined) await lab.setRate(gw, a.rate === 'off' ? null : a.rate);
  if (a.idle !== undefined) await lab.setIdleTimeout(gw, a.idle === 'off' ? null : Number(a.idle));
  console.log(`${gw}: ${JSON.stringify(lab.knobs(gw))}`);
}

function withTopologyErrors<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof TopologyError) throw new BoxerError('USAGE', e.message);
    throw e;
  }
}

function afterDashDash(argv: string[]): string[] {
  const i = argv.indexOf('--');
  return i < 0 ? [] : argv.slice(i + 1);
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const n = signal ? os.constants.signals[signal] : undefined;
  return n ?? 0;
}

/** The lab a command means: --prefix, else the only lab left running by `up`, else the only lab. */
function pickLab(prefix: string | undefined): LabState {
  const labs = Lab.list();
  if (prefix) {
    const s = labs.find((l) => l.prefix === prefix);
    if (!s) throw new BoxerError('USAGE', `no lab with prefix ${prefix} (running: ${labs.map((l) => l.prefix).join(', ') || 'none'})`);
    return s;
  }
  const persistent = labs.filter((l) => l.owner === null);
  const candidates = persistent.length ? persistent : labs;
  if (candidates.length === 1) return candidates[0];
  if (candidates.length === 0) throw new BoxerError('USAGE', 'no lab is running: start one with `boxer lab up`');
  throw new BoxerError('USAGE', `several labs are running (${candidates.map((l) => l.prefix).join(', ')}): say which with --prefix`);
}

function summary(s: LabState): { prefix: string; createdAt: string; owner: string; stale: boolean } {
  const owner = s.owner === null ? 'left running by `boxer lab up`' : `owner pid ${s.owner.pid}${isStale(s) ? ', gone: stale' : ''}`;
  return { prefix: s.prefix, createdAt: s.createdAt, owner, stale: isStale(s) };
}

function nodesOf(s: LabState): NodeInfo[] {
  return describeNodes(s.prefix, planTopology(s.topology));
}

function printLab(nodes: NodeInfo[], state?: LabState): void {
  const rows = nodes.map((n) => {
    let detail = '';
    if (n.role === 'gateway') {
      const k = state?.knobs[n.name];
      const extra = k ? [k.loss ? `loss ${k.loss}%` : '', k.rate ? `rate ${k.rate}` : '', k.idleTimeout ? `idle ${k.idleTimeout}s` : ''].filter(Boolean) : [];
      detail = [n.nat, ...extra].join(', ');
    } else if (n.role === 'function') detail = `via ${n.gateway} (${n.nat}), ports ${n.portRange!.low}-${n.portRange!.high}`;
    return [n.name, n.role, n.address, n.publicAddress, detail];
  });
  const header = ['NODE', 'ROLE', 'ADDRESS', 'SEEN AS', ''];
  const width = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const r of [header, ...rows]) console.log(r.map((c, i) => c.padEnd(width[i])).join('  ').trimEnd());
}
