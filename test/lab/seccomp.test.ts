/**
 * Programs the preload shim cannot see, on the virtual network through the seccomp supervisor
 * (native/seccomp, docs/seccomp.md), in the lab as the unprivileged function user behind NATs: a statically
 * linked C program (gcc -static) accepts punched, relayed and direct connections behind a translating NAT
 * and connects from behind other NATs (blocking and non-blocking connect, virtual getsockname/getpeername on
 * both ends, ECONNREFUSED for a closed port).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { labTest } from './helpers';
import { LabNet, PROGRAMS } from './labnet';

const lt = labTest();

/** Builds test/programs/static_tcp.c statically, readable by the function user. */
function buildStatic(prefix: string): string {
  const out = path.join('/tmp', `${prefix}-static_tcp`);
  execFileSync('gcc', ['-static', '-O2', '-o', out, path.join(PROGRAMS, 'static_tcp.c')], { stdio: 'pipe' });
  fs.chmodSync(out, 0o755);
  return out;
}

lt.test('a static C program connects and accepts across NATs under the seccomp supervisor', async (t, lab) => {
  t.timeout(4 * 60_000);
  const bin = buildStatic(lab.prefix);
  const net = new LabNet(lab);
  const N = 4;
  const wait = `while [ ! -e "$STOP" ]; do sleep 0.2; done`;
  // The clients are shell scripts (sh loads the shim) that exec the static program: --intercept seccomp
  // (BOXER_INTERCEPT) puts the whole script under the filter; the server is the static binary itself (auto).
  const client = (mode: string, msg: string, extra = '') => [
    'sh',
    '-c',
    `A=$(awk '$3=="srv"{print $2}' "$BOXER_NODES_FILE"); for i in 1 2 3 4 5 6 7 8 9 10; do ${bin} ${mode} "$A" 7000 ${msg} && break; sleep 1; done; ${extra} ${wait}`,
  ];
  const forced = { env: { BOXER_INTERCEPT: 'seccomp' } };
  try {
    await net.startSeed();
    const srv = net.member('fta', 'srv', N, [bin, 'serve', '7000', '100']);
    const punched = net.member('fp', 'cp', N, client('nbget', 'punched', `${bin} refused "$A" 9;`), forced);
    const relayed = net.member('fr', 'cr', N, client('get', 'relayed'), forced);
    const direct = net.member('vm1', 'cd', N, client('get', 'direct'), forced);
    let srvAddr = '';
    const accepted: string[] = [];
    for (const [c, msg] of [[punched, 'punched'], [relayed, 'relayed'], [direct, 'direct']] as const) {
      const m = await net.waitFor(c, /CONNECTED local=(\S+) peer=(\S+)\nREPLY (\S+)/);
      srvAddr ||= ((await net.status('fta')) as { self: { addr: string } }).self.addr;
      const self = ((await net.status(c.node)) as { self: { addr: string } }).self.addr;
      t.is(m[1].split(':')[0], self, `${msg}: getsockname shows the client's virtual address`);
      t.is(m[2], `${srvAddr}:7000`, `${msg}: getpeername shows the server's virtual address`);
      t.is(m[3], `echo:${msg}`, `${msg}: the bytes crossed`);
      accepted.push(m[1]);
    }
    t.regex((await net.waitFor(punched, /NBCONNECT (\S+)/))[1], /^EINPROGRESS$/, 'a non-blocking connect returns at once');
    t.regex((await net.waitFor(punched, /REFUSED (\S+) (\S+)/))[0], /REFUSED (EINPROGRESS ECONNREFUSED|ECONNREFUSED ECONNREFUSED)/);
    const out = await net.waitFor(srv, /(ACCEPTED .*\n.*\n){3}/);
    for (const a of accepted) {
      t.true(out[0].includes(`ACCEPTED local=${srvAddr}:7000 peer=${a}\nACCEPT-ADDR ${a}`), `the server named ${a} (accept and getpeername): ${out[0]}`);
    }
    t.false(/WITHOUT the virtual network/.test(srv.err() + punched.err()), 'no warning where seccomp is available');
  } catch (e) {
    for (const m of net.members) t.log(`--- ${m.name} on ${m.node}:\n${m.out()}\n${m.err()}`);
    throw e;
  } finally {
    await net.stop();
    fs.rmSync(bin, { force: true });
  }
});
