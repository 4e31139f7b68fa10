"""A fault-injection client: every ROUND seconds, for ROUNDS rounds, it opens a fresh connection to each target
NAME:PORT (an echo server), sends a line and reads it back; and it keeps one long-lived connection per target on
which it does the same each round (HOLD=0 turns that off). One JSON line per attempt on stdout:
{"round", "t" (wall clock), "to", "kind" ("new" or "held"), "ok", "err" (errno name or reason), "ms"}. Every wait
is bounded (TIMEOUT seconds per connect or read), then DONE, then it idles until $STOP exists."""
import errno, json, os, socket, time

targets = os.environ['TARGETS'].split()
rounds = int(os.environ.get('ROUNDS', '20'))
period = float(os.environ.get('ROUND', '1'))
timeout = float(os.environ.get('TIMEOUT', '20'))
hold = os.environ.get('HOLD', '1') != '0'
start_after = os.environ.get('START_FILE')


def addr(t):
    n, p = t.rsplit(':', 1)
    return n, int(p)


def name(e):
    # An errno first: socket.timeout is TimeoutError, which an OSError with ETIMEDOUT also is.
    if getattr(e, 'errno', None):
        return errno.errorcode.get(e.errno, str(e.errno))
    return 'timeout' if isinstance(e, socket.timeout) else type(e).__name__


def exchange(c, line):
    c.settimeout(timeout)
    c.sendall(line)
    got = b''
    while not got.endswith(b'\n'):
        d = c.recv(100)
        if not d:
            raise ConnectionResetError(errno.ECONNRESET, 'closed by the far end')
        got += d
    if got != line:
        raise ValueError('echo mismatch')


def report(r, t, kind, ok, err, t0):
    print(json.dumps({'round': r, 't': round(t0, 3), 'to': t, 'kind': kind, 'ok': ok, 'err': err, 'ms': round((time.time() - t0) * 1000, 1)}), flush=True)


held = {}
for t in targets:
    for attempt in range(60):
        try:
            held[t] = socket.create_connection(addr(t), timeout=timeout)
            break
        except OSError:
            time.sleep(0.5)
print('READY', flush=True)
if start_after:
    end = time.time() + 120
    while not os.path.exists(start_after) and time.time() < end:
        time.sleep(0.05)
for r in range(rounds):
    t_round = time.time()
    for t in targets:
        t0 = time.time()
        try:
            c = socket.create_connection(addr(t), timeout=timeout)
            exchange(c, b'new %d\n' % r)
            c.close()
            report(r, t, 'new', True, None, t0)
        except (OSError, ValueError) as e:
            report(r, t, 'new', False, name(e), t0)
        if hold and t in held:
            t0 = time.time()
            try:
                exchange(held[t], b'held %d\n' % r)
                report(r, t, 'held', True, None, t0)
            except (OSError, ValueError) as e:
                report(r, t, 'held', False, name(e), t0)
                held.pop(t).close()
    time.sleep(max(0, period - (time.time() - t_round)))
print('DONE', flush=True)
stop = os.environ.get('STOP')
end = time.time() + 300
while time.time() < end and not (stop and os.path.exists(stop)):
    time.sleep(0.2)
