// Who am I under the shim, with real programs (hostname, uname, python, Java when a JDK is installed): the host
// name is the member's name, it resolves to the virtual address, and the interface lists start with `boxer0`
// carrying that address (loopback kept, the host's own IPv4 addresses left out). No agent is needed for these
// calls: the shim answers them from its settings and the member file.
import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureBuilt, SHIM } from '../support/native';

const PROGRAMS = path.resolve(__dirname, '../../../test/programs');

function run(cmd: string, args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 60_000, killSignal: 'SIGKILL' }, (e, out, err) => {
      resolve({ code: e ? Number((e as { code?: unknown }).code ?? -1) : 0, out, err });
    });
  });
}

test('hostname, hostname -I, uname, python and Java see the member: its name, its virtual address first', async (t) => {
  ensureBuilt();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-whoami-'));
  const nodes = path.join(dir, 'nodes.txt');
  fs.writeFileSync(nodes, '1 100.96.0.1 seed\n5 100.96.0.5 zk1\n');
  const shim = { LD_PRELOAD: SHIM, BOXER_SHIM_SOCK: path.join(dir, 'no-agent.sock'), BOXER_NAME: 'zk1', BOXER_ADDR: '100.96.0.5', BOXER_NODES_FILE: nodes, BOXER_NETWORK: '100.96.0.0/16' };
  const r = await run('sh', [path.join(PROGRAMS, 'whoami.sh')], shim);
  t.is(r.code, 0, r.err);
  const line = (k: string) => new RegExp(`^${k} (.*)$`, 'm').exec(r.out)?.[1]?.trim();
  t.is(line('HOSTNAME'), 'zk1');
  t.is(line('UNAME_N'), 'zk1');
  const ips = line('HOSTNAME_I')!.split(/\s+/);
  t.is(ips[0], '100.96.0.5', r.out);
  t.false(ips.some((ip) => /^\d+\.\d+\.\d+\.\d+$/.test(ip) && ip !== '100.96.0.5'), `no other IPv4 address: ${ips.join(' ')}`);
  t.is(line('PY'), 'zk1 zk1 100.96.0.5');
  if (/^JAVA_NONE/m.test(r.out)) {
    t.log('Java not checked: no JDK here (.ci/setup installs one)');
  } else {
    t.is(line('JAVA_LOCALHOST'), 'zk1 100.96.0.5', r.out);
    t.is(line('JAVA_CANONICAL'), 'zk1', r.out);
    t.regex(r.out, /^JAVA_IF boxer0 \d+ 100\.96\.0\.5\/16 up=true$/m);
    t.regex(r.out, /^JAVA_BYNAME boxer0 /m);
    // The only IPv4 addresses Java finds are the virtual one and loopback.
    const v4 = [...r.out.matchAll(/^JAVA_IF \S+ \d+ (\d+\.\d+\.\d+\.\d+)\//gm)].map((m) => m[1]).sort();
    t.deepEqual(v4, ['100.96.0.5', '127.0.0.1']);
  }
  // Without the shim's settings, the system's own answers.
  const plain = await run('hostname', [], { LD_PRELOAD: SHIM, BOXER_SHIM_SOCK: '', BOXER_NAME: 'zk1' });
  t.is(plain.out.trim(), os.hostname());
  fs.rmSync(dir, { recursive: true, force: true });
});
