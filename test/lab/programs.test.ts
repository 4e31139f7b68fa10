/**
 * Unmodified programs from Debian and Node.js talk over the virtual network in the lab, as an unprivileged
 * user behind NATs: python3's http.server with curl (punched and relayed) and asyncio, a Node.js HTTP server
 * and client, iperf3 both ways, and the errno a native connect gives for a closed port.
 */
import { labTest } from '../lab/helpers';
import { LabNet, PROGRAMS } from './labnet';

const lt = labTest();

/** curl retries while the server's member starts (bounded). */
const CURL = 'curl -sS --retry 20 --retry-connrefused --retry-delay 1 --max-time 30';

lt.test('curl, asyncio, Node.js and iperf3 across NATs; ECONNREFUSED for a closed port', async (t, lab) => {
  t.timeout(6 * 60_000);
  const net = new LabNet(lab);
  const N = 7;
  const wait = `while [ ! -e "$STOP" ]; do sleep 0.2; done`;
  try {
    await net.startSeed();
    // Servers.
    const web = net.member('fta', 'web', N, ['sh', '-c', `head -c 1000000 /dev/urandom > blob && sha256sum blob | cut -d' ' -f1 > blob.sha && exec python3 -m http.server 8080`]);
    const nodeSrv = net.member('fsa', 'api', N, ['node', `${PROGRAMS}/node-http.js`, '8081']);
    const iperf = net.member('fp', 'perf', N, ['sh', '-c', `iperf3 -s -p 5201 & P=$!; ${wait}; kill $P`]);
    // Clients.
    const fetchBlob = (name: string) =>
      `sleep 2; want=$(${CURL} http://web:8080/blob.sha); got=$(${CURL} http://web.boxer:8080/blob | sha256sum | cut -d' ' -f1); echo "CURL want=$want got=$got"; ${wait}`;
    const punchedCurl = net.member('fla', 'c1', N, ['sh', '-c', fetchBlob('c1')]);
    const relayedCurl = net.member('fr', 'c2', N, ['sh', '-c', `${fetchBlob('c2')}`]);
    const nodeCli = net.member('vm1', 'c3', N, ['sh', '-c', `sleep 2; node ${PROGRAMS}/node-http.js get http://api:8081/; python3 ${PROGRAMS}/errno.py web 9; ${wait}`]);
    const mixed = net.member('ftb', 'c4', N, [
      'sh',
      '-c',
      `sleep 3; python3 ${PROGRAMS}/asyncio_get.py web 8080 /blob.sha; python3 ${PROGRAMS}/errno.py web 9; ` +
        `iperf3 -c perf -p 5201 -t 2 -J > fwd.json; echo "IPERF_FWD $(python3 -c "import json;print(int(json.load(open('fwd.json'))['end']['sum_received']['bytes']))")"; ` +
        `iperf3 -c perf -p 5201 -t 2 -R -J > rev.json; echo "IPERF_REV $(python3 -c "import json;print(int(json.load(open('rev.json'))['end']['sum_received']['bytes']))")"; ${wait}`,
    ]);

    for (const c of [punchedCurl, relayedCurl]) {
      const m = await net.waitFor(c, /CURL want=(\S*) got=(\S*)/);
      t.regex(m[1], /^[0-9a-f]{64}$/, `${c.name} fetched the digest`);
      t.is(m[2], m[1], `${c.name} got the 1 MB blob intact`);
    }
    const body = await net.waitFor(nodeCli, /BODY (\S+) (\d+) (\S+)/);
    t.is(body[1], '::ffff:100.96.0.' + body[1].split('.').pop(), 'Node sees a v4-mapped peer');
    const c3addr = (await net.status('vm1')) as { self: { addr: string } };
    t.is(body[1], `::ffff:${c3addr.self.addr}`, "the Node server sees the client's virtual address");
    const apiAddr = (await net.status('fsa')) as { self: { addr: string } };
    t.is(body[3], `::ffff:${apiAddr.self.addr}`, 'and its own virtual address');
    t.regex((await net.waitFor(nodeCli, /BLOCKING (\S+)/))[1], /^ECONNREFUSED$/);
    // Punched (vm1 -> fta): EINPROGRESS, then SO_ERROR; relayed (ftb -> fta, one NAT, no hairpin): the relay
    // asks the far side first, so the refusal may come at once, as Linux gives it for a local port.
    t.regex((await net.waitFor(nodeCli, /NONBLOCKING (\S+) (\S+)/))[0], /NONBLOCKING EINPROGRESS ECONNREFUSED/);
    t.regex((await net.waitFor(mixed, /NONBLOCKING (\S+) (\S+)/))[0], /NONBLOCKING (EINPROGRESS ECONNREFUSED|ECONNREFUSED OK)/);
    const digest = (await net.waitFor(punchedCurl, /CURL want=(\S*)/))[1];
    t.is((await net.waitFor(mixed, /BODY (\S+)/))[1], digest, 'asyncio got the digest');
    t.regex((await net.waitFor(mixed, /BLOCKING (\S+)/))[1], /^ECONNREFUSED$/);
    const fwd = Number((await net.waitFor(mixed, /IPERF_FWD (\d+)/))[1]);
    const rev = Number((await net.waitFor(mixed, /IPERF_REV (\d+)/))[1]);
    t.true(fwd > 1_000_000, `iperf3 forward moved ${fwd} bytes`);
    t.true(rev > 1_000_000, `iperf3 reverse moved ${rev} bytes`);
    void web;
    void nodeSrv;
    void iperf;
  } finally {
    await net.stop();
  }
});
