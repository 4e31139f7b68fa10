/**
 * The aggregate case of `npm run bench`: k iperf3 streams at once into one node, natively and under Boxer, and
 * the shell scripts that run its servers and clients (unit-tested in test/process/bench-plan.test.ts).
 */
import type { Mode, Runner, Group } from './runner';
import { sleep } from './runner';

/**
 * The aggregate case. All k streams must be established within AGG_READY_MAX_S of the clients' launch (under
 * Boxer up to 8 agents join at once on two cores, then clients may be refused a few times until the server's
 * agent has learnt of the listeners); the window opens AGG_SETTLE_S later (slow start of the last streams).
 */
export const AGG_READY_MAX_S = 30;
const AGG_SETTLE_S = 1;
/** iperf3 clients run this much longer than the latest possible window end (they are stopped after it). */
const AGG_TAIL_S = 2;
/** A refused connect is retried this many times, this far apart (the listener may not be known yet). */
export const AGG_CONNECT_TRIES = 20;
export const AGG_RETRY_PAUSE_S = 0.5;
/** iperf3's control connection setup gives up after this (a connect that hangs is retried like a refusal). */
const AGG_CONNECT_TIMEOUT_MS = 5000;
/** Extra seconds the process groups' `timeout` allows beyond the clients' own bound. */
const AGG_GROUP_MARGIN_S = 10;
/** The receiving node's servers must all listen within this. */
const AGG_LISTEN_MAX_MS = 20_000;
/** How often `ss` is polled while waiting for listeners and connections. */
const AGG_POLL_MS = 200;
/** Function nodes sending into vm1 (native) and into fp (Boxer) in the aggregate case. */
export const AGG_NATIVE_SENDERS = ['fp', 'fsa', 'fsb', 'fr', 'fta', 'ftb', 'fla', 'flb'];
export const AGG_BOXER_SENDERS = ['fsa', 'fsb', 'fr', 'fta', 'ftb', 'fla', 'flb'];


/**
 * k iperf3 clients at once into k iperf3 servers on `into`, shaped the same in both variants: one process
 * group on the receiving node runs all k servers, one process group per sending node runs that node's
 * share of the clients (under Boxer each group is one `boxer run` member, so at most 8 agents however many
 * senders: the figure is the network's, not the agents' start-up). The figure is what the receiver's eth0
 * took in during a window of `seconds` that opens AGG_SETTLE_S after all k streams are established (2k
 * iperf3 sockets, control and data, on the receiver), and it only counts if they are all still there when
 * the window closes. The groups are stopped right after the window.
 */
export async function measureAggregate(r: Runner, m: Mode, into: string, senders: string[], k: number, seconds: number): Promise<number> {
  const lab = r.lab;
  const ports = r.nextPorts(k);
  const clientS = AGG_READY_MAX_S + AGG_SETTLE_S + seconds + AGG_TAIL_S;
  const groupMaxS = clientS + AGG_CONNECT_TRIES * AGG_RETRY_PAUSE_S + AGG_GROUP_MARGIN_S;
  const rx = async () => {
    const x = await lab.exec(into, 'cat', ['/sys/class/net/eth0/statistics/rx_bytes'], { timeoutMs: 5000 });
    const v = Number(x.stdout.trim());
    if (!Number.isFinite(v) || x.code !== 0) throw new Error(`cannot read rx_bytes on ${into}: ${x.stderr.trim()}`);
    return v;
  };
  const established = async () => {
    const x = await lab.exec(into, 'ss', ['-tnpH', 'state', 'established'], { timeoutMs: 5000, asRoot: true });
    if (x.code !== 0) throw new Error(`ss on ${into} failed: ${x.stderr.trim()}`);
    return countIperfSockets(x.stdout);
  };
  const groups: Group[] = [];
  const failed = () => {
    const g = groups.find((x) => !x.running);
    return g ? `${g.name} on ${g.node} exited early: ${g.stderr().slice(-400) || 'no output'}` : undefined;
  };
  try {
    const srv = r.group(m, into, aggServerScript(ports), groupMaxS + AGG_GROUP_MARGIN_S, 'aggsrv');
    groups.push(srv);
    await waitListeners(r, into, ports, AGG_LISTEN_MAX_MS, failed);
    for (const [node, ps] of spreadPorts(ports, senders)) {
      const script = `${r.hostPrelude(m, { node: into, name: srv.name }, AGG_READY_MAX_S)}\n${aggClientScript(ps, clientS)}`;
      groups.push(r.group(m, node, script, groupMaxS, 'aggcli'));
    }
    const t0 = performance.now();
    const deadline = t0 + AGG_READY_MAX_S * 1000;
    let n = 0;
    for (;;) {
      const why = failed();
      if (why) throw new Error(why);
      n = await established();
      if (n >= 2 * k) break;
      if (performance.now() > deadline) throw new Error(`only ${n} of ${2 * k} iperf3 sockets established on ${into} after ${AGG_READY_MAX_S} s`);
      await sleep(AGG_POLL_MS);
    }
    process.stderr.write(`  all ${k} stream${k > 1 ? 's' : ''} established after ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    await sleep(AGG_SETTLE_S * 1000);
    const b0 = await rx();
    const w0 = performance.now();
    await sleep(seconds * 1000);
    const b1 = await rx();
    const w1 = performance.now();
    const after = await established();
    const why = failed();
    if (why) throw new Error(why);
    if (after < 2 * k) throw new Error(`only ${after} of ${2 * k} iperf3 sockets were still established on ${into} when the window closed`);
    return ((b1 - b0) * 8) / ((w1 - w0) / 1000) / 1e6;
  } finally {
    await Promise.all(groups.map((g) => g.stop()));
  }
}

/** Polls `ss` in the node until all the TCP ports listen (bounded); fails early if failed() says so. */
async function waitListeners(r: Runner, node: string, ports: number[], timeoutMs: number, failed: () => string | undefined): Promise<void> {
  const lo = Math.min(...ports);
  const hi = Math.max(...ports);
  const deadline = performance.now() + timeoutMs;
  let n = 0;
  for (;;) {
    const why = failed();
    if (why) throw new Error(why);
    const x = await r.lab.exec(node, 'ss', ['-ltnH', `( sport >= :${lo} and sport <= :${hi} )`], { timeoutMs: 5000 });
    n = x.stdout.split('\n').filter((l) => l.trim()).length;
    if (n >= ports.length) return;
    if (performance.now() > deadline) throw new Error(`only ${n} of ${ports.length} servers listen on ${node} after ${timeoutMs} ms`);
    await sleep(AGG_POLL_MS);
  }
}

/** Round-robin: port i goes to senders[i % senders.length]; only nodes with ports appear, in senders' order. */
export function spreadPorts(ports: readonly number[], senders: readonly string[]): Map<string, number[]> {
  if (!senders.length) throw new Error('spreadPorts: no senders');
  const out = new Map<string, number[]>();
  for (const s of senders.slice(0, ports.length)) out.set(s, []);
  ports.forEach((p, i) => out.get(senders[i % senders.length])!.push(p));
  return out;
}

/** sh: one one-off iperf3 server per port in the background, then wait for them all. */
export function aggServerScript(ports: readonly number[]): string {
  return `${ports.map((p) => `iperf3 -s -1 -p ${p} >/dev/null &`).join('\n')}\nwait`;
}

/**
 * sh (after $H is set): one iperf3 client of `seconds` per port, in the background; a refused (or timed-out)
 * connect is retried up to AGG_CONNECT_TRIES times AGG_RETRY_PAUSE_S apart, any other failure is reported
 * on stderr. Exits 0 only if every client succeeded.
 */
export function aggClientScript(ports: readonly number[], seconds: number): string {
  return [
    'c() {',
    '  i=0',
    `  while [ $i -lt ${AGG_CONNECT_TRIES} ]; do`,
    '    i=$((i + 1))',
    `    e=$(iperf3 -c "$H" -p "$1" -t ${Math.ceil(seconds)} --connect-timeout ${AGG_CONNECT_TIMEOUT_MS} 2>&1 >/dev/null) && return 0`,
    '    case $e in',
    `      *refused*|*"timed out"*) sleep ${AGG_RETRY_PAUSE_S} ;;`,
    '      *) echo "iperf3 -c $H -p $1: $e" >&2; return 1 ;;',
    '    esac',
    '  done',
    `  echo "iperf3 -c $H -p $1: still failing after ${AGG_CONNECT_TRIES} tries: $e" >&2`,
    '  return 1',
    '}',
    'pids=',
    ...ports.map((p) => `c ${p} & pids="$pids $!"`),
    'rc=0',
    'for p in $pids; do wait $p || rc=1; done',
    'exit $rc',
  ].join('\n');
}

/** The TCP sockets of iperf3 processes in `ss -tnpH` output. */
export function countIperfSockets(ss: string): number {
  return ss.split('\n').filter((l) => l.includes('(("iperf3"') || l.includes(',("iperf3"')).length;
}
