/**
 * The LD_PRELOAD shim under real programs (python3), against the fake agent (fake-agent.ts): virtual
 * addresses on both ends, blocking and non-blocking connects and their errors, accept with the descriptor
 * hand-off, name resolution, pass-through, a gone or hung agent, fork, self-connects and HELLO at load (the
 * connects answered from the route table: shim-routes.test.ts). (`python3` may be a wrapper script: every
 * program it execs says HELLO too, so HELLOs are picked by name.)
 */
import test from 'ava';
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { MSG } from '../support/fake-agent';
import { PyProcess, native, runPython, shimEnv } from '../support/native';
import { A, B, PRELUDE, startEcho, withAgent } from '../support/shim-harness';

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
