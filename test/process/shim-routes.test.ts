/**
 * The shim's connects answered from the route table (docs/shim-protocol.md, "The route table"), against the
 * fake agent: direct (no CONNECT, CONNECTING before the connect), punch (the port drawn in the member's
 * block), none (EHOSTUNREACH at once), the table re-read when it changes, request ids kept apart from the
 * reply-less CONNECTING, and the connect latency benchmark (route table vs CONNECT).
 */
import test from 'ava';
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import { MSG } from '../support/fake-agent';
import { BENCH, PyProcess, native, runPython, shimEnv } from '../support/native';
import { A, B, PRELUDE, startEcho, withAgent } from '../support/shim-harness';

test.before(() => {
  native();
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
# The stray replies are dropped when the channel is next read: a last connect after they have surely arrived
# reads past them (a connect right after the agent's reply may find none yet on a busy machine).
time.sleep(0.5)
s = socket.socket()
s.connect(('${B}', ${srv.port})); res.append('ok')
out(res=res)
`,
      shimEnv(mA.sockPath, A, { BOXER_ROUTES_FILE: fake.routesFile, BOXER_SHIM_DEBUG: '1' }),
    );
    t.is(r.code, 0, r.stderr);
    // Each blocking connect: CONNECTING (stray reply), then the outcome read locally (OUTCOME frames, none here:
    // nothing refused), which reads the stray replies and drops them; no CONNECT_RESULT round trip.
    t.deepEqual(JSON.parse(r.stdout).res, ['ok', 'EISCONN', 'ok', 'EISCONN', 'ok', 'EISCONN', 'ok']);
    t.is(fake.messages(A, MSG.CONNECTING).length, 4);
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
