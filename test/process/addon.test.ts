/**
 * The addon (native/): punching sockets (TCP simultaneous open between two bound tcpSocket()s), wrapping a
 * connected fd in net.Socket, errors with errno codes, SCM_RIGHTS and SO_PEERCRED. Also runs the shim's C unit
 * tests (make -C native check).
 */
import test from 'ava';
import { execFile, execFileSync } from 'child_process';
import * as net from 'net';
import { NATIVE_DIR, connectedAddonSocket, native } from '../support/native';

test.before(() => {
  native();
});

test('C unit tests of the shim cores pass (make -C native check)', async (t) => {
  const out = await new Promise<string>((resolve, reject) =>
    execFile('make', ['-s', '-C', NATIVE_DIR, 'check'], { timeout: 60000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`make check failed: ${stdout}${stderr}`)) : resolve(stdout),
    ),
  );
  t.regex(out, /test_frame: \d+ checks, 0 failed/);
  t.regex(out, /test_fdtable: \d+ checks, 0 failed/);
  t.regex(out, /test_addr: \d+ checks, 0 failed/);
  t.regex(out, /test_nodes: \d+ checks, 0 failed/);
  t.regex(out, /test_chanio: \d+ checks, 0 failed/);
});

function wrap(fd: number): net.Socket {
  return new net.Socket({ fd, readable: true, writable: true });
}

/** Sends `msg` on a and expects it on b. */
function exchange(a: net.Socket, b: net.Socket, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const t = setTimeout(() => reject(new Error(`timed out; got '${got}'`)), 5000);
    const on = (d: Buffer) => {
      got += d.toString();
      if (got.length >= msg.length) {
        clearTimeout(t);
        b.off('data', on);
        resolve(got);
      }
    };
    b.on('data', on);
    a.write(msg);
  });
}

function canUseIptables(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('iptables', ['-S', 'OUTPUT'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

// On loopback the first SYN would reach a socket that is not connecting yet and be reset; a NAT drops it
// instead. An iptables rule dropping A's first SYN (only that port pair) emulates that, so the two SYNs cross.
(canUseIptables() ? test.serial : test.skip)('simultaneous open between two bound tcpSocket()s, then net.Socket both ways', async (t) => {
  const n = native();
  const a = n.tcpSocket();
  const b = n.tcpSocket();
  n.bind(a, '127.0.0.1', 0);
  n.bind(b, '127.0.0.1', 0);
  const pa = n.localAddress(a).port;
  const pb = n.localAddress(b).port;
  t.is(n.localAddress(a).address, '127.0.0.1');
  const rule = ['OUTPUT', '-o', 'lo', '-p', 'tcp', '--sport', String(pa), '--dport', String(pb), '--syn', '-j', 'DROP'];
  execFileSync('iptables', ['-I', ...rule]);
  try {
    t.false(n.connectStart(a, '127.0.0.1', pb)); // SYN dropped, as by the far NAT
    const wa = n.connectWait(a, 5000);
    // Crosses A's SYN_SENT: simultaneous open, which on loopback may complete within the call.
    const bNow = n.connectStart(b, '127.0.0.1', pa);
    await Promise.all([wa, bNow ? Promise.resolve() : n.connectWait(b, 5000)]);
  } finally {
    execFileSync('iptables', ['-D', ...rule]);
  }
  const sa = wrap(a);
  const sb = wrap(b);
  t.is(sa.remotePort, pb);
  t.is(sb.remotePort, pa);
  t.is(await exchange(sa, sb, 'ping from a'), 'ping from a');
  t.is(await exchange(sb, sa, 'pong from b'), 'pong from b');
  sa.destroy();
  sb.destroy();
});

test('connectStart + connectWait to a listener; the fd works as a net.Socket', async (t) => {
  const { fd, peer } = await connectedAddonSocket();
  const s = wrap(fd);
  t.is(await exchange(s, peer, 'x'.repeat(100000)), 'x'.repeat(100000));
  t.is(await exchange(peer, s, 'reply'), 'reply');
  s.destroy();
  peer.destroy();
});

test('errors carry the errno name: ECONNREFUSED, ENOTCONN, EADDRNOTAVAIL, ECANCELED, EINVAL, EBADF', async (t) => {
  const n = native();
  const closed = n.tcpSocket();
  n.bind(closed, '127.0.0.1', 0);
  const port = n.localAddress(closed).port;

  const fd = n.tcpSocket();
  let refused: { code?: string } | undefined;
  try {
    if (!n.connectStart(fd, '127.0.0.1', port)) await n.connectWait(fd, 5000);
  } catch (e) {
    refused = e as { code?: string };
  }
  t.is(refused?.code, 'ECONNREFUSED');
  n.close(fd);

  const idle = n.tcpSocket();
  await t.throwsAsync(n.connectWait(idle, 1000), { code: 'ENOTCONN' } as never);
  n.close(idle);

  const f2 = n.tcpSocket();
  t.throws(() => n.bind(f2, '192.0.2.1', 0), { code: 'EADDRNOTAVAIL', message: /bind\(fd \d+, 192\.0\.2\.1:0\)/ } as never);
  t.throws(() => n.bind(f2, 'not-an-ip', 0), { code: 'EINVAL' } as never);
  t.throws(() => n.bind(f2, '127.0.0.1', 70000), { code: 'EINVAL' } as never);
  t.throws(() => n.localAddress(-1), { code: 'EBADF' } as never);
  t.throws(() => n.close(1 << 30), { code: 'EBADF' } as never);
  t.throws(() => n.setLinger0(1 << 30), { code: 'EBADF' } as never);
  n.setLinger0(f2);
  n.close(f2);
  n.close(closed);
});

test('a second connectWait on one fd is EALREADY; close() cancels a pending one (ECANCELED)', async (t) => {
  const n = native();
  // Both calls and the close run in one turn of the event loop, before the poll handle can fire.
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const fd = n.tcpSocket();
  n.connectStart(fd, '127.0.0.1', (server.address() as net.AddressInfo).port);
  const p = n.connectWait(fd, 60000);
  const p2 = n.connectWait(fd, 1000);
  await t.throwsAsync(p2, { code: 'EALREADY' } as never);
  n.close(fd);
  await t.throwsAsync(p, { code: 'ECANCELED' } as never);
  server.close();
});

test('sendFd / recvFd pass a connected TCP socket; peerCred names this process', async (t) => {
  const n = native();
  const [u1, u2] = n.socketPair();
  t.deepEqual(n.peerCred(u1), { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });

  const { fd, peer } = await connectedAddonSocket();

  t.is(n.sendFd(u1, fd, Buffer.from('hand-off')), 8);
  n.close(fd); // the receiver holds its own reference
  const got = n.recvFd(u2);
  t.is(got.data.toString(), 'hand-off');
  t.true(got.fd >= 0);
  const s = wrap(got.fd);
  t.is(await exchange(s, peer, 'through the passed fd'), 'through the passed fd');
  t.is(await exchange(peer, s, 'and back'), 'and back');

  t.is(n.sendFd(u1, u1, Buffer.from('x')), 1);
  const again = n.recvFd(u2, 16);
  t.true(again.fd >= 0);
  n.close(again.fd);
  n.close(u1);
  t.is(n.recvFd(u2).data.length, 0); // end of stream
  t.throws(() => n.sendFd(u2, 0, Buffer.alloc(0)), { code: 'EINVAL' } as never);
  n.close(u2);
  s.destroy();
  peer.destroy();
});
