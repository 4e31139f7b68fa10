/**
 * Plain-socket probes for the lab tests: one small Python program (Debian's /usr/bin/python3, run as the
 * node's user) with subcommands that listen, connect, punch and report what they saw, one line per fact.
 * Every wait in it is bounded by an argument; the TypeScript side adds a kill timeout against hangs.
 */

import type { ChildProcess } from 'node:child_process';
import type { Lab } from '../../overlay';

/** Bound on a whole probe process beyond its own timeouts: only against hangs on a noisy shared machine. */
export const PROBE_KILL_MS = 30_000;
/** How long a connect to a dropped destination waits before calling it dropped (veth RTT is microseconds). */
export const DROP_WAIT_S = 1.5;

const PROBE = String.raw`
import socket, sys, threading, time

def sock(lport=None):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if lport is not None:
        s.bind(('0.0.0.0', int(lport)))
    return s

def say(*a):
    print(*a, flush=True)

def connect(host, port, timeout, lport=None):
    s = sock(lport)
    s.settimeout(float(timeout))
    try:
        s.connect((host, int(port)))
    except socket.timeout:
        say('timeout'); return None
    except ConnectionRefusedError:
        say('refused'); return None
    except OSError as e:
        say('error', e.errno); return None
    say('ok', *s.getsockname())
    return s

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == 'serve':            # serve PORT SECONDS [SEND_AFTER]: report peers; optionally send after a delay
    port, secs = int(args[0]), float(args[1])
    send_after = float(args[2]) if len(args) > 2 else None
    l = sock(port); l.listen(64); l.settimeout(0.2)
    keep = []
    def later(c):
        time.sleep(send_after)
        try: c.sendall(b'data\n')
        except OSError: pass
    say('ready')
    end = time.time() + secs
    while time.time() < end:
        try:
            c, a = l.accept()
        except socket.timeout:
            continue
        say('peer', a[0], a[1]); keep.append(c)
        if send_after is not None:
            threading.Thread(target=later, args=(c,), daemon=True).start()
elif cmd == 'connect':        # connect HOST PORT TIMEOUT [LPORT|-] [WAIT_DATA]
    s = connect(args[0], args[1], args[2], None if len(args) < 4 or args[3] == '-' else args[3])
    if s is not None and len(args) > 4:
        s.settimeout(float(args[4]))
        try:
            d = s.recv(100)
            say('data' if d else 'closed')
        except socket.timeout:
            say('nodata')
elif cmd == 'multi':          # multi HOST PORT N TIMEOUT: N connections at once from ephemeral ports
    keep = [connect(args[0], args[1], args[3]) for _ in range(int(args[2]))]
elif cmd == 'twin':           # twin LPORT TIMEOUT HOST1 PORT1 HOST2 PORT2: two connections from one port
    a = connect(args[2], args[3], args[1], args[0])
    b = connect(args[4], args[5], args[1], args[0])
elif cmd == 'simopen':        # simopen LPORT RHOST RPORT TIMEOUT MSG: simultaneous open, then swap MSG
    s = connect(args[1], args[2], args[3], args[0])
    if s is not None:
        s.sendall(args[4].encode() + b'\n')
        say('got', s.recv(100).decode().strip())
elif cmd == 'hairpin':        # hairpin LPORT HOST PORT SECONDS: open a mapping from LPORT, accept on LPORT
    l = sock(args[0]); l.listen(4)
    out = connect(args[1], args[2], 5, args[0])
    say('ready')
    l.settimeout(float(args[3]))
    try:
        c, a = l.accept(); say('peer', a[0], a[1])
    except socket.timeout:
        say('timeout')
`;

export function probeArgs(sub: string, args: (string | number)[]): string[] {
  return ['-c', PROBE, sub, ...args.map(String)];
}

/** Runs a probe to completion; returns its stdout lines. */
export async function probe(lab: Lab, node: string, sub: string, args: (string | number)[]): Promise<string[]> {
  const r = await lab.exec(node, 'python3', probeArgs(sub, args), { timeoutMs: PROBE_KILL_MS });
  if (r.timedOut) throw new Error(`probe ${sub} on ${node} hung (killed after ${PROBE_KILL_MS} ms)`);
  if (r.code !== 0) throw new Error(`probe ${sub} on ${node} failed (exit ${r.code}): ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

/** A long-running probe (serve, hairpin): resolves `ready` when it says so; `stop()` ends it, returns lines. */
export interface Background {
  ready: Promise<void>;
  lines(): string[];
  stop(): Promise<string[]>;
  /** Resolves with the lines once the probe exits by itself. */
  done: Promise<string[]>;
}

export function background(lab: Lab, node: string, sub: string, args: (string | number)[]): Background {
  const child: ChildProcess = lab.spawn(node, 'python3', probeArgs(sub, args), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const lines = () => out.split('\n').filter(Boolean);
  const killer = setTimeout(() => child.kill('SIGKILL'), PROBE_KILL_MS);
  const done = new Promise<string[]>((resolve) =>
    child.once('close', () => {
      clearTimeout(killer);
      resolve(lines());
    }),
  );
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/^ready$/m.test(out)) resolve();
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    void done.then(() => reject(new Error(`probe ${sub} on ${node} exited before ready: ${err}`)));
  });
  ready.catch(() => undefined); // observed by whoever awaits it
  return {
    ready,
    lines,
    done,
    stop: () => {
      child.kill('SIGTERM');
      return done;
    },
  };
}

/** The peers (address, port) a `serve` probe reported. */
export function peers(lines: string[]): { address: string; port: number }[] {
  return lines.filter((l) => l.startsWith('peer ')).map((l) => {
    const [, address, port] = l.split(' ');
    return { address, port: Number(port) };
  });
}
