// The member's program cannot read the network secret from its agent: $BOXER_SECRET is not in its
// environment, the agent's environment block (/proc/AGENT/environ) no longer holds it, and run as an ordinary
// user the program cannot open the agent's /proc/AGENT/environ or /proc/AGENT/mem at all (non-dumpable);
// the shim's socket serves only the member's user.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { execFile, execFileSync } from 'node:child_process';
import { Broker, type VnetNetwork } from '../../src/vnet/broker';
import { ShimServer } from '../../src/ipc/shim-server';
import { native } from '../../src/util/native';
import { BOXER, sandbox, startSeed } from '../support/procs';

const SECRET = 'the hostile test secret 0123456789';

// The program looks at its parent (the agent) every way it can and reports what it found.
const PROBE = `env | grep -c BOXER_SECRET; tr '\\0' '\\n' < /proc/$PPID/environ > "$OUT.environ" 2>"$OUT.err"; echo environ=$?; head -c 1 /proc/$PPID/mem >/dev/null 2>>"$OUT.err"; echo mem=$?; echo done`;

async function probe(wrap: string[], env: NodeJS.ProcessEnv, out: string): Promise<string> {
  const seed = await startSeed(env);
  try {
    const [cmd, ...args] = [...wrap, process.execPath, BOXER];
    const res = execFileSync(cmd, [...args, 'run', '--seed', seed.addr, '--', 'sh', '-c', PROBE], { env: { ...env, OUT: out }, encoding: 'utf8', timeout: 30_000 });
    return res;
  } finally {
    seed.proc.child.kill('SIGTERM');
    await seed.proc.exited;
  }
}

test('the secret is in neither the program environment nor the agent environment block', async (t) => {
  const { env, tmp } = sandbox(SECRET);
  const out = path.join(tmp, 'probe');
  const res = await probe([], env, out);
  t.regex(res, /^0\n/, 'not in the program environment');
  t.regex(res, /done/);
  if (fs.existsSync(`${out}.environ`)) t.false(fs.readFileSync(`${out}.environ`, 'utf8').includes(SECRET), 'not in /proc/AGENT/environ');
});

test('as an ordinary user the program cannot open the agent /proc environ or mem', async (t) => {
  if (process.getuid?.() !== 0 || !fs.existsSync('/usr/bin/setpriv')) {
    t.log('needs root (to run the member as another user) and setpriv: not run here');
    t.pass();
    return;
  }
  const { env, tmp } = sandbox(SECRET);
  fs.chmodSync(tmp, 0o777);
  const out = path.join(tmp, 'probe');
  const res = await probe(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'], { ...env, HOME: tmp }, out);
  t.regex(res, /^0\n/);
  t.regex(res, /environ=[1-9]/, 'environ refused');
  t.regex(res, /mem=[1-9]/, 'mem refused');
  t.regex(fs.readFileSync(`${out}.err`, 'utf8'), /Permission denied/);
  t.false(fs.existsSync(`${out}.environ`) && fs.readFileSync(`${out}.environ`, 'utf8').includes(SECRET));
});

// HELLO on the shim channel; prints how many reply bytes came before the agent closed (0: refused).
const HELLO = `
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
body = struct.pack('<I', 1234) + b'probe'
s.settimeout(5)
try:
    s.sendall(struct.pack('<IHHI', 12 + len(body), 1, 0, 1) + body)
    got = s.recv(64)
except OSError:
    got = b''
print(len(got))
`;

/** The system's Python (another user cannot run one under root's home). */
const PY = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

test('the shim socket answers only processes of the member user (SO_PEERCRED)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-peercred-'));
  fs.chmodSync(dir, 0o777);
  const sock = path.join(dir, 'shim.sock');
  const netw: VnetNetwork = { self: () => null, members: () => [], predictOwn: () => null, linkPath: () => undefined, ensureLink: async () => 'direct', seedIp: () => null, send: () => undefined };
  const nat = native();
  const broker = new Broker(netw, nat);
  const server = new ShimServer(sock, broker, nat);
  await server.start();
  fs.chmodSync(sock, 0o777); // only the credential check stands in the way
  try {
    const run = (wrap: string[]) =>
      new Promise<string>((resolve, reject) =>
        execFile(wrap[0] ?? PY, [...wrap.slice(1), ...(wrap.length ? [PY] : []), '-c', HELLO, sock], { timeout: 15_000 }, (e, out) => (e ? reject(e) : resolve(out.trim()))),
      );
    t.is(await run([]), '16', 'the member user gets its answer');
    t.true(broker.shims.has(1234));
    if (process.getuid?.() === 0 && fs.existsSync('/usr/bin/setpriv')) {
      broker.shims.clear();
      t.is(await run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--']), '0', 'another user is refused');
      t.false(broker.shims.has(1234), 'nothing it sent was taken');
    } else t.log('another user: needs root and setpriv, not run here');
  } finally {
    await server.close();
    broker.close();
  }
});
