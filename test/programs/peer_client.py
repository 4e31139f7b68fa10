"""N connections one after another to HOST:PORT (from local port LPORT+i when given), each reading the line the
server answers; prints "SEEN <line>" per distinct answer address, then "DONE <n> <ms>" (n answered, total ms),
all within MAX_S seconds. With RETRY=1 a refused connection is tried again (the server may not listen yet), at
most REFUSED_TRIES times, and the clock starts at the first answer."""
import os, socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lport = int(sys.argv[4]) if len(sys.argv) > 4 else 0
MAX_S = 60
REFUSED_TRIES = 100
if os.environ.get('RETRY') == '1':
    for _ in range(REFUSED_TRIES):
        try:
            socket.create_connection((host, port), timeout=10).close()
            break
        except ConnectionRefusedError:
            time.sleep(0.2)
seen, ok, t0 = set(), 0, time.monotonic()
for i in range(n):
    if time.monotonic() - t0 > MAX_S:
        break
    c = socket.socket(socket.AF_INET)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.settimeout(10)
    if lport:
        c.bind(('0.0.0.0', lport + i))
    try:
        c.connect((host, port))
        line = c.makefile('r').readline().strip()
    except OSError as e:
        print('ERROR', e, flush=True)
        continue
    finally:
        c.close()
    ok += 1
    addr = line.split(' ')[0]
    if addr not in seen:
        seen.add(addr)
        print('SEEN', line, flush=True)
print('DONE', ok, round((time.monotonic() - t0) * 1000), flush=True)
