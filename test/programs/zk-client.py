"""A ZooKeeper client member: asks every server of $ENSEMBLE `srvr` (a four-letter word, over the virtual
network) until one is the leader and the others follow, then writes and reads a znode with zkCli.sh (the real
client protocol), prints the outcome, and does it all again each time the file $PHASE.N appears (N = 2, 3, ...),
until $STOP appears. Bounded: each round gives up after ROUND_S seconds."""
import os, socket, subprocess, sys, time

ENSEMBLE = os.environ['ENSEMBLE'].split()
ROUND_S = 100


def srvr(name):
    try:
        with socket.create_connection((name, 2181), timeout=3) as s:
            s.sendall(b'srvr')
            data = b''
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        for line in data.decode(errors='replace').splitlines():
            if line.startswith('Mode:'):
                return line.split(':', 1)[1].strip()
        return 'no-mode'
    except OSError as e:
        return 'error:%s' % (e.strerror or e)


def zkcli(*args):
    cmd = ['/usr/share/zookeeper/bin/zkCli.sh', '-server', ','.join('%s:2181' % n for n in ENSEMBLE)] + list(args)
    env = dict(os.environ, CLIENT_JVMFLAGS='-Xmx64m -XX:+UseSerialGC -XX:TieredStopAtLevel=1', ZOO_LOG4J_PROP='ERROR,CONSOLE')
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    return r.returncode, r.stdout + r.stderr


def round_(n):
    start = time.time()
    modes = {}
    while time.time() - start < ROUND_S:
        modes = {name: srvr(name) for name in ENSEMBLE}
        if sorted(modes.values()) == sorted(['leader'] + ['follower'] * (len(ENSEMBLE) - 1)):
            break
        time.sleep(1)
    print('ROUND %d QUORUM %s %.1fs' % (n, ' '.join('%s=%s' % kv for kv in sorted(modes.items())), time.time() - start), flush=True)
    if n == 1:
        code, out = zkcli('create', '/boxer', 'written-in-round-1')
        print('ROUND 1 CREATE rc=%d %s' % (code, 'Created /boxer' in out), flush=True)
    code, out = zkcli('get', '/boxer')
    print('ROUND %d GET rc=%d %s' % (n, code, 'written-in-round-1' in out), flush=True)
    print('ROUND %d DONE' % n, flush=True)


round_(1)
n = 2
while not os.path.exists(os.environ['STOP']):
    if os.path.exists('%s.%d' % (os.environ['PHASE'], n)):
        round_(n)
        n += 1
    time.sleep(0.2)
