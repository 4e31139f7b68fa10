// The real broker and shim server with the real LD_PRELOAD shim, two members on this host's loopback: the
// direct path with verified bytes and virtual addresses on both ends, ECONNREFUSED for a closed virtual port,
// EHOSTUNREACH for an unknown member, names and services. The members' control plane is replaced by an
// in-memory network. (The punched path needs NATs that drop the first SYN: it is tested in the lab.)
import test from 'ava';
import os from 'node:os';
import path from 'node:path';
import { Broker, type VnetNetwork, type VnetMessage } from '../../src/vnet/broker';
import { ShimServer } from '../../src/ipc/shim-server';
import type { MemberInfo, NatKind } from '../../src/wire/messages';
import { native, tmpDir, PyProcess, runPython, shimEnv, ensureBuilt } from '../support/native';

interface Node {
  info: MemberInfo;
  broker: Broker;
  server: ShimServer;
}

async function twoMembers(natOfB: NatKind) {
  ensureBuilt();
  const dir = tmpDir('boxer-vnet-');
  const infos: MemberInfo[] = [
    { id: 1, name: 'a', addr: '100.96.0.1', services: [], ext: { ip: '127.0.0.1', port: 1 }, priv: [], lport: 0, nat: 'preserving', key: new Uint8Array(32) },
    { id: 2, name: 'b', addr: '100.96.0.2', services: ['web'], ext: { ip: '127.0.0.1', port: 2 }, priv: [], lport: 0, nat: natOfB, key: new Uint8Array(32) },
  ];
  const nodes: Node[] = [];
  for (const info of infos) {
    const netw: VnetNetwork = {
      self: () => ({ id: info.id, addr: info.addr }),
      members: () => infos,
      predictOwn: (p) => ({ ip: '127.0.0.1', port: p }),
      linkPath: () => undefined,
      ensureLink: async () => 'direct',
      seedIp: () => null,
      send: (to: number, msg: VnetMessage) => setImmediate(() => nodes.find((n) => n.info.id === to)!.broker.onMessage(info.id, msg)),
    };
    const broker = new Broker(netw, native());
    const server = new ShimServer(path.join(dir, `${info.name}.sock`), broker, native());
    await server.start();
    nodes.push({ info, broker, server });
  }
  return nodes;
}

const SERVER = `
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.bind(('::', 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
c, peer = s.accept()
data = b''
while len(data) < 100000:
    d = c.recv(65536)
    if not d: break
    data += d
c.sendall(data[::-1])
print(peer[0], peer[1], c.getsockname()[0], flush=True)
c.close()
`;

const CLIENT = `
import socket, sys, os
payload = os.urandom(100000)
c = socket.create_connection(('100.96.0.2', int(sys.argv[1])), timeout=10)
c.sendall(payload)
back = b''
while len(back) < len(payload):
    d = c.recv(65536)
    if not d: break
    back += d
print('ok' if back == payload[::-1] else 'MISMATCH', c.getsockname()[0], c.getsockname()[1], c.getpeername()[0])
`;

for (const nat of ['open'] as const) {
  test('direct path: bytes verified, both ends see virtual addresses that agree', async (t) => {
    const [a, b] = await twoMembers(nat);
    const srv = new PyProcess(SERVER, shimEnv(b.server.path, b.info.addr));
    try {
      const port = Number(await srv.line());
      // The direct path connects to B's "external" address at the virtual port: on loopback that is port itself.
      const r = await runPython(CLIENT, shimEnv(a.server.path, a.info.addr), 20000, [String(port)]);
      t.is(r.code, 0, r.stderr);
      const [verdict, clientAddr, clientPort, clientPeer] = r.stdout.trim().split(' ');
      t.is(verdict, 'ok');
      t.is(clientAddr, '100.96.0.1');
      t.is(clientPeer, '100.96.0.2');
      const [peerAddr, peerPort, serverLocal] = (await srv.line()).split(' ');
      t.is(peerAddr, '::ffff:100.96.0.1', 'the server sees the client virtual address (v4-mapped)');
      t.is(peerPort, clientPort, 'the two ends agree on the client port');
      t.is(serverLocal, '::ffff:100.96.0.2');
      t.is(a.broker.stats.direct, 1);
    } finally {
      srv.stop();
      for (const n of [a, b]) {
        n.broker.close();
        await n.server.close();
      }
    }
  });
}

test('a closed virtual port: ECONNREFUSED, blocking and non-blocking; an unknown member: EHOSTUNREACH', async (t) => {
  const [a, b] = await twoMembers('open');
  try {
    const r = await runPython(
      `
import socket, errno, select
s = socket.socket()
try:
    s.connect(('100.96.0.2', 9))
    print('connected')
except OSError as e:
    print(errno.errorcode[e.errno])
n = socket.socket(); n.setblocking(False)
rc = n.connect_ex(('100.96.0.2', 9))
print(errno.errorcode.get(rc, rc))
select.select([], [n], [], 10)
print(errno.errorcode.get(n.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), 'OK'))
u = socket.socket()
try:
    u.connect(('100.96.0.77', 9))
except OSError as e:
    print(errno.errorcode[e.errno])
`,
      shimEnv(a.server.path, a.info.addr),
    );
    t.is(r.code, 0, r.stderr);
    t.deepEqual(r.stdout.trim().split('\n'), ['ECONNREFUSED', 'EINPROGRESS', 'ECONNREFUSED', 'EHOSTUNREACH']);
  } finally {
    for (const n of [a, b]) {
      n.broker.close();
      await n.server.close();
    }
  }
});

test('names resolve to members, services to one stable address whose members the route table lists', async (t) => {
  const infos = [1, 2, 3].map((id) => ({ id, name: `n${id}`, addr: `100.96.0.${id}`, services: id > 1 ? ['web'] : [], ext: { ip: `198.18.0.${id}`, port: 1 }, priv: [], lport: 0, nat: 'open' as const, key: new Uint8Array(32) }));
  const broker = new Broker(
    { self: () => infos[0], members: () => infos, predictOwn: () => null, linkPath: () => undefined, ensureLink: async () => 'direct' as const, seedIp: () => null, send: () => undefined },
    native(),
  );
  let written = 0;
  broker.onRoutesChanged = () => written++;
  t.deepEqual(broker.resolve('n2.boxer'), ['100.96.0.2']);
  t.deepEqual(broker.resolve('web'), ['100.96.255.254']);
  t.is(written, 1, 'the route table is written before the program has the address');
  t.deepEqual(broker.resolve('web.boxer'), ['100.96.255.254'], 'stable');
  t.is(written, 1);
  t.deepEqual(broker.resolve('nope'), []);
  t.regex(broker.routes(), /^2 100\.96\.255\.254 svc 100\.96\.0\.2 0 0 0 0\n3 100\.96\.255\.254 svc 100\.96\.0\.3 0 0 0 0\n$/m);
  // A shim without a table asks the agent: its CONNECTs to the address go to the members in turn.
  const picked = [];
  for (let i = 0; i < 4; i++) picked.push((await broker.connect('100.96.255.254', 80, 40000)).real?.ip);
  t.deepEqual(picked.sort(), ['198.18.0.2', '198.18.0.2', '198.18.0.3', '198.18.0.3'], 'per connection, in turn');
  // The members leave the service: the address stays, the table says it has none, connects are refused.
  for (const m of infos) m.services = [];
  t.regex(broker.routes(), /^0 100\.96\.255\.254 svc 0\.0\.0\.0 0 0 0 0$/m);
  t.is((await broker.connect('100.96.255.254', 80, 40000)).errno, os.constants.errno.ECONNREFUSED);
  broker.close();
});
