/**
 * The seccomp supervisor (native/out/boxer-seccomp, docs/seccomp.md) with real processes on loopback, without
 * an agent (routes from a route table the test writes): a statically linked C program's connect over a
 * `direct-quiet` route and a self-connect show virtual addresses on both ends; member names resolve through
 * the supervisor's name server for a program that resolves by itself; the command's exit status is kept;
 * and where seccomp user notification is unavailable (forced with BOXER_SECCOMP_UNAVAILABLE=1) the program
 * still runs, and stderr says clearly that it runs without the virtual network. A Go program (built from
 * test/programs/gonet) dials members by name through Go's own resolver and accepts with virtual names.
 */
import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../../..');
const SUPERVISOR = path.join(ROOT, 'native/out/boxer-seccomp');
const SOURCE = path.join(ROOT, 'test/programs/static_tcp.c');
const SELF = '100.96.0.2';
const FAR = '100.96.0.5';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-seccomp-'));
const bin = path.join(dir, 'static_tcp');
test.before(() => {
  fs.writeFileSync(path.join(dir, 'routes'), `1 ${FAR} direct-quiet 127.0.0.1 0 0 0 0\n2 ${SELF} self 0.0.0.0 0 0 0 0\n`);
  fs.writeFileSync(path.join(dir, 'nodes'), `1 ${FAR} far\n2 ${SELF} me\n`);
  execFileSync('make', ['-s', '-C', path.join(ROOT, 'native'), 'all'], { stdio: 'pipe' });
  execFileSync('gcc', ['-static', '-O2', '-o', bin, SOURCE], { stdio: 'pipe' });
});
test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }));

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    BOXER_SHIM_SOCK: path.join(dir, 'no-agent.sock'),
    BOXER_ADDR: SELF,
    BOXER_ROUTES_FILE: path.join(dir, 'routes'),
    BOXER_NODES_FILE: path.join(dir, 'nodes'),
    ...extra,
  };
}

function supervised(cmd: string[], e: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(SUPERVISOR, ['--', ...cmd], { env: e, timeout: 30_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const c = err ? (err as unknown as { code?: unknown }).code : 0;
      resolve({ code: typeof c === 'number' ? c : -1, stdout, stderr });
    });
  });
}

test('a static program connects over a route and to itself, with virtual names on both ends', async (t) => {
  const server = net.createServer((s) => s.once('data', (d) => s.end(`echo:${d.toString().trim()}`)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const r = await supervised(['sh', '-c', `${bin} get ${FAR} ${port} far && ${bin} nbget ${FAR} ${port} nb && (${bin} serve 7391 1 & sleep 0.5; ${bin} get ${SELF} 7391 self; wait)`], env());
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, new RegExp(`CONNECTED local=${SELF}:\\d+ peer=${FAR}:${port}\\nREPLY echo:far`), r.stdout);
    t.regex(r.stdout, /NBCONNECT EINPROGRESS\n/, 'non-blocking: EINPROGRESS at once');
    t.regex(r.stdout, new RegExp(`CONNECTED local=${SELF}:\\d+ peer=${FAR}:${port}\\nREPLY echo:nb`));
    const self = /ACCEPTED local=(\S+) peer=(\S+)/.exec(r.stdout);
    const client = new RegExp(`CONNECTED local=(\\S+) peer=${SELF}:7391`).exec(r.stdout);
    t.truthy(self && client, r.stdout);
    t.is(self![1], `${SELF}:7391`, "the accepting side's getsockname is virtual");
    t.is(self![2], client![1], "the accepting side's peer is the client's getsockname");
  } finally {
    server.close();
  }
});

test('member names resolve through the supervisor for a program that does its own DNS', async (t) => {
  // getent under the filter (no shim) resolves with glibc's DNS client: UDP to the resolv.conf name server,
  // which the supervisor points at its own server.
  const r = await supervised(['sh', '-c', 'getent ahostsv4 far | head -1; getent ahostsv4 FAR.boxer | head -1'], env());
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.is(lines.length, 2, r.stdout);
  for (const l of lines) t.is(l.split(/\s+/)[0], FAR, r.stdout);
});

test('a Go program (raw system calls, its own resolver) dials members by name and accepts with virtual names', async (t) => {
  t.timeout(180_000);
  const gonet = path.join(dir, 'gonet');
  try {
    execFileSync('go', ['build', '-o', gonet, path.join(ROOT, 'test/programs/gonet/main.go')], {
      env: { ...process.env, CGO_ENABLED: '0' },
      stdio: 'pipe',
      timeout: 150_000,
    });
  } catch (e) {
    t.fail(`cannot build the Go test program (.ci/setup installs golang-go): ${(e as Error).message}`);
    return;
  }
  const server = net.createServer((s) => s.once('data', (d) => s.end(`pong:${d.toString().trim()}`)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const r = await supervised(['sh', '-c', `${gonet} get far ${port} byname && (${gonet} serve 7392 & sleep 1; ${gonet} get me.boxer 7392 self; kill $!)`], env());
    t.is(r.code, 0, r.stderr + r.stdout);
    t.regex(r.stdout, new RegExp(`CONNECTED local=${SELF}:\\d+ remote=${FAR}:${port}\nREPLY pong:byname`), r.stdout);
    const acc = /ACCEPTED local=(\S+) remote=(\S+)/.exec(r.stdout);
    const cli = new RegExp(`CONNECTED local=(\\S+) remote=${SELF}:7392`).exec(r.stdout);
    t.truthy(acc && cli, r.stdout);
    t.is(acc![1], `${SELF}:7392`);
    t.is(acc![2], cli![1], "the Go server's RemoteAddr is the Go client's LocalAddr");
  } finally {
    server.close();
  }
});

test("the command's exit status is the supervisor's", async (t) => {
  const r = await supervised(['sh', '-c', 'exit 7'], env());
  t.is(r.code, 7);
  t.is(r.stderr, '');
});

test('where seccomp user notification is unavailable the program runs without the virtual network and stderr says so', async (t) => {
  const r = await supervised(['sh', '-c', 'echo ran; exit 3'], env({ BOXER_SECCOMP_UNAVAILABLE: '1' }));
  t.is(r.code, 3);
  t.is(r.stdout, 'ran\n');
  t.regex(r.stderr, /seccomp user notification is not available here \(turned off with BOXER_SECCOMP_UNAVAILABLE=1\): sh runs WITHOUT the virtual network/);
  const c = await supervised([bin, 'get', FAR, '9', 'x'], env({ BOXER_SECCOMP_UNAVAILABLE: '1' }));
  t.notRegex(c.stdout, new RegExp(`local=${SELF}`), 'no virtual names: the connect went to the real address 100.96.0.5 untouched');
});
