/**
 * The LD_PRELOAD shim under real programs (python3), against the fake agent (fake-agent.ts): virtual
 * addresses on both ends, blocking and non-blocking connects and their errors, accept with the descriptor
 * hand-off, name resolution, pass-through, a gone or hung agent, fork, self-connects, connects answered from
 * the route table (direct, punch, none; reloaded when it changes), HELLO at load, and the connect latency
 * benchmark. (`python3` may be a wrapper script: every program it execs says HELLO too, so HELLOs are picked by
 * name.)
 */
import test from 'ava';
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { FakeAgent, MSG } from '../support/fake-agent';
import { BENCH, PyProcess, native, runPython, shimEnv } from '../support/native';

const A = '100.96.0.2';
const B = '100.96.0.3';

const PRELUDE = `
import socket, json, os, sys, select, errno, time, fcntl, threading
def out(**kw): print(json.dumps(kw), flush=True)
def ename(e): return errno.errorcode.get(e, str(e))
`;

/** Member B's server: listens on 0.0.0.0 (or :: with FAM=6), prints its port, then for each connection prints
 * what accept()/getpeername()/getsockname() say and echoes upper-cased data. */
const ECHO_SERVER = `${PRELUDE}
fam = os.environ.get('FAM', '4')
s = socket.socket(socket.AF_INET6 if fam == '6' else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('::' if fam == '6' else '0.0.0.0', 0))
s.listen(64)
out(port=s.getsockname()[1])
def serve(c):
    try:
        while True:
            d = c.recv(4096)
            if not d: break
            c.sendall(d.upper())
    except OSError: pass
    c.close()
while True:
    c, addr = s.accept()
    if os.environ.get('QUIET') != '1':
        out(addr=list(addr[:2]), peer=list(c.getpeername()[:2]), local=list(c.getsockname()[:2]))
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

async function withAgent(fn: (fake: FakeAgent, stop: (p: PyProcess) => void) => Promise<void>): Promise<void> {
  const fake = new FakeAgent();
  const procs: PyProcess[] = [];
  try {
    await fn(fake, (p) => procs.push(p));
  } finally {
    for (const p of procs) p.stop();
    await Promise.all(procs.map((p) => p.exited));
    await fake.close();
  }
}

async function startEcho(fake: FakeAgent, vaddr: string, own: (p: PyProcess) => void, extra: Record<string, string> = {}) {
  const m = fake.members.get(vaddr) ?? (await fake.addMember(vaddr));
  const p = new PyProcess(ECHO_SERVER, shimEnv(m.sockPath, vaddr, extra));
  own(p);
  const { port } = await p.json<{ port: number }>();
  return { p, port };
}

test.before(() => {
  native();
});

for (const fam of ['4', '6']) {
  test(`connect: both ends see virtual addresses that agree (server on ${fam === '6' ? '::' : '0.0.0.0'}), dup keeps them`, async (t) => {
    await withAgent(async (fake, own) => {
      const mA = await fake.addMember(A);
      const srv = await startEcho(fake, B, own, { FAM: fam });
      t.true(fake.members.get(B)!.listens.has(srv.port), 'LISTEN reported');
      const r = await runPython(
        `${PRELUDE}
s = socket.socket()
s.connect(('${B}', ${srv.port}))
d = os.dup(s.fileno())
s2 = socket.socket(fileno=d)
out(local=list(s.getsockname()), peer=list(s.getpeername()), duppeer=list(s2.getpeername()))
s.close()
s2.sendall(b'hello')
out(reply=s2.recv(100).decode(), peer_after_close=list(s2.getpeername()))
`,
        shimEnv(mA.sockPath, A),
      );
      t.is(r.code, 0, r.stderr);
      const [c1, c2] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
      const s1 = await srv.p.json();
      const lport = c1.local[1];
      t.deepEqual(c1.local, [A, lport]);
      t.deepEqual(c1.peer, [B, srv.port]);
      t.deepEqual(c1.duppeer, [B, srv.port]);
      const vA = fam === '6' ? `::ffff:${A}` : A;
      const vB = fam === '6' ? `::ffff:${B}` : B;
      t.deepEqual(s1, { addr: [vA, lport], peer: [vA, lport], local: [vB, srv.port] });
      t.deepEqual(c2, { reply: 'HELLO', peer_after_close: [B, srv.port] });
      const connects = fake.messages(A, MSG.CONNECT);
      t.is(connects.length, 1);
      t.is(connects[0].localPort, lport);
      t.true(fake.messages(A, MSG.HELLO).some((e) => e.name === 'python3'));
    });
  });
}

test('non-blocking connect: EINPROGRESS, select/poll report it, SO_ERROR gives 0 or ECONNREFUSED', async (t) => {
  await withAgent(async (fake, own) => {
    const mA = await fake.addMember(A);
    const srv = await startEcho(fake, B, own, { QUIET: '1' });
    const r = await runPython(
      `${PRELUDE}
s = socket.socket(); s.setblocking(False)
t0 = time.perf_counter()
rc = s.connect_ex(('${B}', ${srv.port}))
dt = time.perf_counter() - t0
r, w, x = select.select([], [s], [], 5)
err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
out(rc=ename(rc), writable=len(w), err=err, peer=list(s.getpeername()), call_ms=dt * 1000)
s2 = socket.socket(); s2.setblocking(False)
rc2 = s2.connect_ex(('${B}', 1))
ev = []
if rc2 == errno.EINPROGRESS:
    p = select.poll(); p.register(s2, select.POLLOUT); ev = p.poll(5000)
err2 = s2.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
out(rc2=ename(rc2), err2=ename(err2 or rc2), polled=len(ev) if rc2 == errno.EINPROGRESS else 1)
`,
      shimEnv(mA.sockPath, A),
    );
    t.is(r.code, 0, r.stderr);
    const [a, b] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    t.is(a.rc, 'EINPROGRESS');
    t.is(a.writable, 1);
    t.is(a.err, 0);
    t.deepEqual(a.peer, [B, srv.port]);
    t.log(`time inside connect(): ${a.call_ms.toFixed(3)} ms (python, CONNECT round trip)`);
    t.true(['EINPROGRESS', 'ECONNREFUSED'].includes(b.rc2));
    t.is(b.err2, 'ECONNREFUSED');
    t.is(b.polled, 1);
  });
});

test('blocking connect: ECONNREFUSED for a closed port, EHOSTUNREACH for an unknown member, at once', async (t) => {
  await withAgent(async (fake) => {
    const mA = await fake.addMember(A);
    await fake.addMember(B);
    const r = await runPython(
      `${PRELUDE}
def tryc(addr, port):
    s = socket.socket(); t0 = time.time()
    try:
        s.connect((addr, port)); return ['ok', 0]
    except OSError as e:
        return [ename(e.errno), time.time() - t0]
out(refused=tryc('${B}', 1), unreach=tryc('100.96.0.99', 80), v6=tryc('::ffff:100.96.0.99', 80) if False else None)
s6 = socket.socket(socket.AF_INET6)
try:
    s6.connect(('::ffff:100.96.0.99', 80)); v6 = 'ok'
except OSError as e:
    v6 = ename(e.errno)
out(v6=v6)
`,
      shimEnv(mA.sockPath, A),
    );
    t.is(r.code, 0, r.stderr);
    const [a, b] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    t.is(a.refused[0], 'ECONNREFUSED');
    t.is(a.unreach[0], 'EHOSTUNREACH');
    // Promptly: no SYN timeout and no channel timeout (bounds only against hangs: the machine is shared).
    t.true(a.refused[1] < 3 && a.unreach[1] < 3, JSON.stringify(a));
    t.is(b.v6, 'EHOSTUNREACH');
  });
});

test('agent gone or hung: ENETUNREACH, bounded, never a hang; non-virtual connects still work', async (t) => {
  const script = `${PRELUDE}
def tryc(addr, port, block=True):
    s = socket.socket(); s.setblocking(block); t0 = time.time()
    try:
        rc = s.connect_ex((addr, port)); return [ename(rc) if rc else 'ok', time.time() - t0]
    except OSError as e:
        return [ename(e.errno), time.time() - t0]
out(blocking=tryc('${B}', 80), nonblocking=tryc('${B}', 80, False), local=tryc('127.0.0.1', int(sys.argv[1])))
`;
  const server = net.createServer((c) => c.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const lport = String((server.address() as net.AddressInfo).port);
  try {
    const gone = await runPython(script, shimEnv('/nonexistent/boxer-agent.sock', A), 20000, [lport]);
    t.is(gone.code, 0, gone.stderr);
    const g = JSON.parse(gone.stdout);
    t.is(g.blocking[0], 'ENETUNREACH');
    t.is(g.nonblocking[0], 'ENETUNREACH');
    t.true(g.blocking[1] < 1.5, `took ${g.blocking[1]} s`);
    t.is(g.local[0], 'ok');

    await withAgent(async (fake) => {
      const mA = await fake.addMember(A);
      fake.silent = true;
      const hung = await runPython(script, shimEnv(mA.sockPath, A), 40000, [lport]);
      t.is(hung.code, 0, hung.stderr);
      const h = JSON.parse(hung.stdout);
      t.is(h.blocking[0], 'ENETUNREACH');
      // A blocking CONNECT is bounded by SHIM_CONNECT_TIMEOUT_MS (10 s: it may wait on the network), a
      // non-blocking one by SHIM_IPC_TIMEOUT_MS (2 s).
      t.true(h.blocking[1] >= 1.5 && h.blocking[1] < 13, `blocking took ${h.blocking[1]} s`);
      t.true(h.nonblocking[1] < 4, `non-blocking took ${h.nonblocking[1]} s`);
      t.is(h.nonblocking[0], 'ENETUNREACH');
      t.is(h.local[0], 'ok');
    });
  } finally {
    server.close();
  }
});

for (const fam of ['4', '6']) {
  test(`accept: the agent's real socket is handed in (AF_INET${fam === '6' ? '6 listener, v4-mapped' : ''}), flags and addresses as native`, async (t) => {
    await withAgent(async (fake, own) => {
      const mB = await fake.addMember(B);
      const p = new PyProcess(
        `${PRELUDE}
fam = '${fam}'
s = socket.socket(socket.AF_INET6 if fam == '6' else socket.AF_INET)
s.bind(('::' if fam == '6' else '0.0.0.0', 0)); s.listen(8)
out(port=s.getsockname()[1])
c, addr = s.accept()
fl = fcntl.fcntl(c.fileno(), fcntl.F_GETFL)
out(addr=list(addr[:2]), peer=list(c.getpeername()[:2]), local=list(c.getsockname()[:2]),
    nonblock=bool(fl & os.O_NONBLOCK), inheritable=os.get_inheritable(c.fileno()),
    keepalive=c.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
d = c.recv(100)
c.sendall(b'echo:' + d)
c.close()
`,
        shimEnv(mB.sockPath, B),
      );
      own(p);
      const { port } = await p.json<{ port: number }>();
      const remote = await fake.handOff(port, '100.96.0.9', 4444);
      const info = await p.json();
      const v = (ip: string) => (fam === '6' ? `::ffff:${ip}` : ip);
      t.deepEqual(info, {
        addr: [v('100.96.0.9'), 4444],
        peer: [v('100.96.0.9'), 4444],
        local: [v(B), port],
        nonblock: false,
        inheritable: false,
        keepalive: 1,
      });
      const reply = new Promise<string>((resolve) => {
        let got = '';
        remote.on('data', (d) => {
          got += d;
          if (got.length >= 7) resolve(got);
        });
      });
      remote.write('hi');
      t.is(await reply, 'echo:hi');
      t.is(await p.exited, 0);
      const acc = fake.messages(B, MSG.ACCEPTED);
      t.is(acc.length, 1);
      t.is(acc[0].port, port);
    });
  });
}

test('names: member names from the nodes file (re-read when it changes), services via RESOLVE rotated, others untouched', async (t) => {
  await withAgent(async (fake) => {
    const mA = await fake.addMember(A);
    fake.addService('web', ['100.96.0.3', '100.96.0.4']);
    const nodes = path.join(fake.dir, 'nodes');
    fs.writeFileSync(nodes, '1 100.96.0.2 fn2\n2 100.96.0.3 fn3\n');
    const r = await runPython(
      `${PRELUDE}
def ga(n, fam=socket.AF_INET, flags=0):
    try:
        return [a[4][0] for a in socket.getaddrinfo(n, 80, fam, socket.SOCK_STREAM, 0, flags)]
    except socket.gaierror as e:
        return 'gaierror:%d' % e.errno
res = dict(fn3=ga('fn3'), fn3b=ga('fn3.boxer'), FN3=ga('FN3.Boxer.'), web1=ga('web'), web2=ga('web'),
    nosuch=ga('nosuch.boxer'), localhost=ga('localhost'), numeric=ga('100.96.0.3'),
    v6mapped=ga('fn3', socket.AF_INET6, socket.AI_V4MAPPED), byname=socket.gethostbyname('fn2.boxer'),
    ex=list(socket.gethostbyname_ex('fn3')), all=len(socket.getaddrinfo('fn3', 'http')),
    all_native=len(socket.getaddrinfo('127.0.0.1', 'http')), all_noservice=len(socket.getaddrinfo('fn3', None)))
with open(os.environ['BOXER_NODES_FILE'], 'a') as f: f.write('3 100.96.0.7 fn7\\n')
res['fn7'] = ga('fn7.boxer')
out(**res)
`,
      shimEnv(mA.sockPath, A, { BOXER_NODES_FILE: nodes }),
    );
    t.is(r.code, 0, r.stderr);
    const o = JSON.parse(r.stdout);
    t.deepEqual(o.fn3, [B]);
    t.deepEqual(o.fn3b, [B]);
    t.deepEqual(o.FN3, [B]);
    t.deepEqual(o.web1, ['100.96.0.3', '100.96.0.4']);
    t.deepEqual(o.web2, ['100.96.0.4', '100.96.0.3']);
    t.is(o.nosuch, 'gaierror:-2'); // EAI_NONAME
    t.deepEqual(o.localhost, ['127.0.0.1']);
    t.deepEqual(o.numeric, [B]);
    t.deepEqual(o.v6mapped, [`::ffff:${B}`]);
    t.is(o.byname, A);
    t.deepEqual(o.ex, ['fn3', [], [B]]);
    t.is(o.all, o.all_native); // the socket types the service exists for, as glibc gives them
    t.is(o.all_noservice, 3); // TCP, UDP and raw, as glibc gives them
    t.deepEqual(o.fn7, ['100.96.0.7']);
    t.deepEqual(
      fake.messages(A, MSG.RESOLVE).map((e) => e.name),
      ['web', 'web', 'nosuch'],
    );
  });
});

test('pass-through: loopback TCP, UDP and numeric lookups under the shim send nothing to the agent', async (t) => {
  await withAgent(async (fake) => {
    const mA = await fake.addMember(A);
    const server = net.createServer((c) => c.pipe(c));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const r = await runPython(
        `${PRELUDE}
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.sendall(b'plain'); d = s.recv(10)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('127.0.0.1', 0))
u.sendto(b'dgram', u.getsockname()); ud = u.recv(10)
u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u2.bind(('0.0.0.0', 0))
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)
out(tcp=d.decode(), peer=s.getpeername()[0], udp=ud.decode(), ga=socket.getaddrinfo('127.0.0.1', 1)[0][4][0])
`,
        shimEnv(mA.sockPath, A),
        20000,
        [String((server.address() as net.AddressInfo).port)],
      );
      t.is(r.code, 0, r.stderr);
      t.deepEqual(JSON.parse(r.stdout), { tcp: 'plain', peer: '127.0.0.1', udp: 'dgram', ga: '127.0.0.1' });
      t.deepEqual(fake.messages(A).filter((e) => e.type !== MSG.HELLO), [], 'nothing but HELLO');
    } finally {
      server.close();
    }
  });
});

test('fork: the child reopens its own channel and connects; the parent keeps working', async (t) => {
  await withAgent(async (fake, own) => {
    const mA = await fake.addMember(A);
    const srv = await startEcho(fake, B, own, { QUIET: '1' });
    const r = await runPython(
      `${PRELUDE}
s = socket.socket(); s.connect(('${B}', ${srv.port})); s.sendall(b'p1'); r1 = s.recv(10)
pid = os.fork()
if pid == 0:
    try:
        c = socket.socket(); c.connect(('${B}', ${srv.port})); c.sendall(b'c1'); r = c.recv(10)
        os._exit(0 if r == b'C1' and c.getpeername() == ('${B}', ${srv.port}) else 3)
    except BaseException:
        os._exit(4)
_, st = os.waitpid(pid, 0)
s2 = socket.socket(); s2.connect(('${B}', ${srv.port})); s2.sendall(b'p2'); r2 = s2.recv(10)
out(r1=r1.decode(), child=os.waitstatus_to_exitcode(st), r2=r2.decode(), child_pid=pid, pid=os.getpid())
`,
      shimEnv(mA.sockPath, A),
    );
    t.is(r.code, 0, r.stderr);
    const o = JSON.parse(r.stdout);
    t.deepEqual([o.r1, o.child, o.r2], ['P1', 0, 'P2']);
    const pids = fake.messages(A, MSG.HELLO).filter((e) => e.name === 'python3').map((e) => e.pid);
    t.deepEqual(pids, [o.pid, o.child_pid]);
  });
});

test('own virtual address: bind to it (EADDRINUSE kept), connect to it over loopback, both ends agree', async (t) => {
  await withAgent(async (fake) => {
    const mB = await fake.addMember(B);
    const r = await runPython(
      `${PRELUDE}
l = socket.socket(); l.bind(('${B}', 0)); l.listen(4)
port = l.getsockname()[1]
def bindres(addr):
    x = socket.socket()
    try:
        x.bind(addr); return 'ok'
    except OSError as e:
        return ename(e.errno)
again = bindres(('${B}', port)); other = bindres(('100.96.0.4', 0))
c = socket.socket(); c.connect(('${B}', port))
a, addr = l.accept()
out(listen=list(l.getsockname()), again=again, other=other, cl=list(c.getsockname()), cp=list(c.getpeername()),
    sl=list(a.getsockname()), sp=list(a.getpeername()), addr=list(addr))
`,
      shimEnv(mB.sockPath, B),
    );
    t.is(r.code, 0, r.stderr);
    const o = JSON.parse(r.stdout);
    const port = o.listen[1];
    t.deepEqual(o.listen, [B, port]);
    t.is(o.again, 'EADDRINUSE');
    t.is(o.other, 'EADDRNOTAVAIL');
    t.deepEqual(o.cp, [B, port]);
    t.deepEqual(o.sl, [B, port]);
    t.deepEqual(o.sp, o.cl);
    t.deepEqual(o.addr, o.cl);
    t.is(o.cl[0], B);
    t.deepEqual(fake.messages(B, MSG.LISTEN).map((e) => e.port), [port]);
    t.is(fake.messages(B, MSG.CONNECT).length, 0);
  });
});

test('route table, direct: no CONNECT; CONNECTING (punch_port 0) before the connect; virtual addresses on both ends; SO_ERROR and blocking outcomes', async (t) => {
  await withAgent(async (fake, own) => {
    const mA = await fake.addMember(A);
    const srv = await startEcho(fake, B, own);
    fake.writeRoutes([`b ${B} direct 127.0.0.1 0 0 0 0`, `c 100.96.0.4 direct 127.0.0.1 0 0 0 0`]);
    const r = await runPython(
      `${PRELUDE}
s = socket.socket()
s.connect(('${B}', ${srv.port}))
s.sendall(b'direct')
out(local=list(s.getsockname()), peer=list(s.getpeername()), reply=s.recv(100).decode())
n = socket.socket(); n.setblocking(False)
rc = n.connect_ex(('${B}', ${srv.port}))
select.select([], [n], [], 5)
out(rc=ename(rc), err=n.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
z = socket.socket(); z.bind(('127.0.0.1', 0)); closed = z.getsockname()[1]; z.close()
c = socket.socket()
try:
    c.connect(('100.96.0.4', closed)); cres = 'ok'
except OSError as e:
    cres = ename(e.errno)
out(closed_member=cres)
`,
      shimEnv(mA.sockPath, A, { BOXER_ROUTES_FILE: fake.routesFile }),
    );
    t.is(r.code, 0, r.stderr);
    const [a, b, c] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const lport = a.local[1];
    t.deepEqual(a, { local: [A, lport], peer: [B, srv.port], reply: 'DIRECT' });
    t.deepEqual(await srv.p.json(), { addr: [A, lport], peer: [A, lport], local: [B, srv.port] });
    t.deepEqual(b, { rc: 'EINPROGRESS', err: 0 });
    // A direct route reaches the far program's own listener: the kernel's outcome is the virtual one (a
    // closed port refuses), and the agent is never asked for it.
    t.is(c.closed_member, 'ECONNREFUSED');
    t.is(fake.messages(A, MSG.CONNECT).length, 0);
    const cg = await fake.waitMessages(A, MSG.CONNECTING, 3);
    t.is(cg.length, 3);
    t.like(cg[0], { vaddr: B, vport: srv.port, localPort: lport, realIp: '127.0.0.1', realPort: srv.port, punchPort: 0 });
    const pid = fake.messages(A, MSG.HELLO).find((e) => e.name === 'python3')!.pid!;
    t.deepEqual(
      cg.map((e) => e.connId),
      [1n, 2n, 3n].map((k) => (BigInt(pid) << 32n) | k),
    );
    t.is(fake.messages(A, MSG.CONNECT_RESULT).length, 0, 'direct: the kernel says how the connect ended');
  });
});

test('request ids: a stray reply to CONNECTING and the unread HELLO reply are dropped, not taken for the next reply', async (t) => {
  await withAgent(async (fake, own) => {
    const mA = await fake.addMember(A);
    const srv = await startEcho(fake, B, own, { QUIET: '1' });
    fake.replyToConnecting = true;
    // A punch route whose far port is the echo server's: a blocking connect then reads its outcome locally.
    fake.writeRoutes([`b ${B} punch 127.0.0.1 0 0 ${srv.port} ${srv.port}`]);
    const r = await runPython(
      `${PRELUDE}
res = []
for i in range(3):
    s = socket.socket()
    try:
        s.connect(('${B}', ${srv.port})); res.append('ok')
    except OSError as e:
        res.append(ename(e.errno))
    try:
        s.connect(('${B}', 1)); res.append('ok')
    except OSError as e:
        res.append(ename(e.errno))
out(res=res)
`,
      shimEnv(mA.sockPath, A, { BOXER_ROUTES_FILE: fake.routesFile, BOXER_SHIM_DEBUG: '1' }),
    );
    t.is(r.code, 0, r.stderr);
    // Each blocking connect: CONNECTING (stray reply), then the outcome read locally (OUTCOME frames, none here:
    // nothing refused), which reads the stray replies and drops them; no CONNECT_RESULT round trip.
    t.deepEqual(JSON.parse(r.stdout).res, ['ok', 'EISCONN', 'ok', 'EISCONN', 'ok', 'EISCONN']);
    t.is(fake.messages(A, MSG.CONNECTING).length, 3);
    t.is(fake.messages(A, MSG.CONNECT_RESULT).length, 0);
    t.regex(r.stderr, /dropping a reply \(type 8\)/);
    t.notRegex(r.stderr, /protocol error/);
    t.is(fake.messages(A, MSG.HELLO).filter((e) => e.name === 'python3').length, 1, 'one channel throughout');
  });
});

test('route table, none: EHOSTUNREACH at once, blocking or not, nothing sent to the agent', async (t) => {
  await withAgent(async (fake) => {
    const mA = await fake.addMember(A);
    await fake.addMember(B);
    fake.writeRoutes([`b ${B} none 0.0.0.0 0 0 0 0`]);
    const r = await runPython(
      `${PRELUDE}
res = []
for block in (True, False):
    s = socket.socket(); s.setblocking(block); t0 = time.perf_counter()
    rc = s.connect_ex(('${B}', 80)); res.append([ename(rc), (time.perf_counter() - t0) * 1000])
out(res=res)
`,
      shimEnv(mA.sockPath, A, { BOXER_ROUTES_FILE: fake.routesFile }),
    );
    t.is(r.code, 0, r.stderr);
    const { res } = JSON.parse(r.stdout);
    t.deepEqual(res.map((x: [string, number]) => x[0]), ['EHOSTUNREACH', 'EHOSTUNREACH']);
    t.true(res.every((x: [string, number]) => x[1] < 500), JSON.stringify(res));
    t.deepEqual(fake.messages(A).filter((e) => e.type !== MSG.HELLO), []);
  });
});

test('route table, punch: CONNECTING names M in [LO, HI] and connects to (M ^ XOR) + OFFSET', async (t) => {
  await withAgent(async (fake) => {
    const mA = await fake.addMember(A);
    const [XOR, OFFSET, LO, HI] = [0x35, -3, 40000, 40015];
    fake.writeRoutes([`b ${B} punch 127.0.0.1 ${XOR} ${OFFSET} ${LO} ${HI}`]);
    const r = await runPython(
      `${PRELUDE}
socks, res = [], []
for i in range(40):
    s = socket.socket(); s.setblocking(False); socks.append(s)
    res.append(ename(s.connect_ex(('${B}', 8080))))
out(res=sorted(set(res)))
`,
      shimEnv(mA.sockPath, A, { BOXER_ROUTES_FILE: fake.routesFile }),
    );
    t.is(r.code, 0, r.stderr);
    const { res } = JSON.parse(r.stdout);
    t.true((res as string[]).every((e) => ['EINPROGRESS', 'ECONNREFUSED', 'ok'].includes(e)), JSON.stringify(res));
    const cg = await fake.waitMessages(A, MSG.CONNECTING, 40);
    t.is(cg.length, 40);
    for (const e of cg) {
      t.true(e.punchPort! >= LO && e.punchPort! <= HI, `M ${e.punchPort}`);
      t.is(e.realPort, (e.punchPort! ^ XOR) + OFFSET);
      t.like(e, { vaddr: B, vport: 8080, realIp: '127.0.0.1' });
    }
    t.true(new Set(cg.map((e) => e.punchPort)).size > 4, 'M drawn across the range');
    t.is(fake.messages(A, MSG.CONNECT).length, 0);
  });
});

test('route table: re-read when the file changes (none -> direct -> gone: the last good table stays)', async (t) => {
  await withAgent(async (fake, own) => {
    const mA = await fake.addMember(A);
    const srv = await startEcho(fake, B, own, { QUIET: '1' });
    fake.writeRoutes([`b ${B} none 0.0.0.0 0 0 0 0`]);
    const p = new PyProcess(
      `${PRELUDE}
for line in sys.stdin:
    s = socket.socket()
    try:
        s.connect(('${B}', ${srv.port})); out(r='ok')
    except OSError as e:
        out(r=ename(e.errno))
    s.close()
`,
      shimEnv(mA.sockPath, A, { BOXER_ROUTES_FILE: fake.routesFile }),
    );
    own(p);
    const step = async () => {
      p.child.stdin!.write('go\n');
      return (await p.json<{ r: string }>()).r;
    };
    t.is(await step(), 'EHOSTUNREACH');
    fake.writeRoutes([`b ${B} direct 127.0.0.1 0 0 0 0`]);
    t.is(await step(), 'ok');
    t.is((await fake.waitMessages(A, MSG.CONNECTING)).length, 1); // no reply: it may trail the connect
    fake.writeRoutes([`b ${B} agent 0.0.0.0 0 0 0 0`]);
    t.is(await step(), 'ok');
    t.is(fake.messages(A, MSG.CONNECT).length, 1, 'agent: CONNECT');
    fs.rmSync(fake.routesFile);
    t.is(await step(), 'ok');
    t.is(fake.messages(A, MSG.CONNECT).length, 2, 'the last table read still says agent');
  });
});

test('HELLO at load: from a program that never opens a socket', async (t) => {
  await withAgent(async (fake) => {
    const mA = await fake.addMember(A);
    const code = await new Promise<number | null>((resolve) =>
      execFile('/bin/true', [], { env: { ...process.env, ...shimEnv(mA.sockPath, A) }, timeout: 10000 }, (err) =>
        resolve(err ? ((err as unknown as { code?: number }).code ?? -1) : 0),
      ),
    );
    t.is(code, 0);
    const hello = await fake.waitMessages(A, MSG.HELLO);
    t.is(hello.length, 1);
    t.is(hello[0].name, 'true');
    t.true(hello[0].pid! > 0);
    // No agent at all: the program starts and ends as usual.
    const gone = await new Promise<number | null>((resolve) =>
      execFile('/bin/true', [], { env: { ...process.env, ...shimEnv('/nonexistent/boxer.sock', A) }, timeout: 10000 }, (err) =>
        resolve(err ? ((err as unknown as { code?: number }).code ?? -1) : 0),
      ),
    );
    t.is(gone, 0);
  });
});

test('benchmark: time inside a non-blocking connect(), route table (direct, punch) vs CONNECT (native/bench/connect_latency)', async (t) => {
  await withAgent(async (fake) => {
    const mA = await fake.addMember(A);
    const mB = await fake.addMember(B);
    const server = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => server.listen({ port: 0, host: '127.0.0.1', backlog: 1024 }, () => r()));
    const port = (server.address() as net.AddressInfo).port;
    mB.ports.set(8080, port);
    const N = 300;
    try {
      const out = await new Promise<string>((resolve, reject) =>
        execFile(
          BENCH,
          ['--routes', B, '8080', '127.0.0.1', String(port), String(N)],
          { env: { ...process.env, ...shimEnv(mA.sockPath, A, { BOXER_ROUTES_FILE: fake.routesFile }) }, timeout: 60000 },
          (err, stdout, stderr) => (err ? reject(new Error(`${err.message} ${stderr}`)) : resolve(stdout)),
        ),
      );
      t.log(out.trim());
      for (const path of ['direct', 'punch', 'agent']) {
        const m = new RegExp(`path=${path} n=${N} p50_us=([\\d.]+) p99_us=([\\d.]+) max_us=[\\d.]+ errors=(\\d+)`).exec(out);
        t.truthy(m, out);
        t.is(m![3], '0', path);
        t.true(Number(m![1]) > 0);
      }
      t.is(fake.messages(A, MSG.CONNECT).length, N + 1); // + the warm-up
      const cg = await fake.waitMessages(A, MSG.CONNECTING, 2 * (N + 1));
      t.is(cg.length, 2 * (N + 1));
      t.true(cg.every((e) => e.realPort === port));
    } finally {
      server.close();
    }
  });
});
