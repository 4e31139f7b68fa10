"""Keepalive check: connects to NAME:PORT, exchanges a line, stays idle IDLE seconds, then exchanges another.
With KEEPALIVE=off the program sets SO_KEEPALIVE to 0 itself (which turns the shim's keepalive off).
Prints FIRST ok, then SECOND ok or SECOND failed: <reason>."""
import os, socket, sys, time
name, port, idle = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
for attempt in range(20):
    try:
        c = socket.create_connection((name, port), timeout=10)
        break
    except OSError:
        time.sleep(0.5)
if os.environ.get('KEEPALIVE') == 'off':
    c.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 0)
c.sendall(b'one\n')
print('FIRST', 'ok' if c.recv(100) == b'one\n' else 'bad', flush=True)
time.sleep(idle)
try:
    c.settimeout(6)
    c.sendall(b'two\n')
    print('SECOND', 'ok' if c.recv(100) == b'two\n' else 'bad', flush=True)
except OSError as e:
    print('SECOND failed:', type(e).__name__, e, flush=True)
