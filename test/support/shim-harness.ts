/**
 * What the shim's tests share: two members' virtual addresses, the python prelude and echo server the programs
 * under the shim run, and a fake agent (fake-agent.ts) whose programs are stopped after each test.
 */
import { FakeAgent } from './fake-agent';
import { PyProcess, shimEnv } from './native';

export const A = '100.96.0.2';
export const B = '100.96.0.3';

/** Imports and output helpers of every python program under the shim. */
export const PRELUDE = `
import socket, json, os, sys, select, errno, time, fcntl, threading
def out(**kw): print(json.dumps(kw), flush=True)
def ename(e): return errno.errorcode.get(e, str(e))
`;

/** Member B's server: listens on 0.0.0.0 (or :: with FAM=6), prints its port, then for each connection prints
 * what accept()/getpeername()/getsockname() say and echoes upper-cased data. */
export const ECHO_SERVER = `${PRELUDE}
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

/** Runs `fn` with a fresh fake agent; the programs it hands to `stop` are stopped afterwards. */
export async function withAgent(fn: (fake: FakeAgent, stop: (p: PyProcess) => void) => Promise<void>): Promise<void> {
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

/** Starts member `vaddr`'s echo server under the shim (the member added if new); its port. */
export async function startEcho(fake: FakeAgent, vaddr: string, own: (p: PyProcess) => void, extra: Record<string, string> = {}) {
  const m = fake.members.get(vaddr) ?? (await fake.addMember(vaddr));
  const p = new PyProcess(ECHO_SERVER, shimEnv(m.sockPath, vaddr, extra));
  own(p);
  const { port } = await p.json<{ port: number }>();
  return { p, port };
}
