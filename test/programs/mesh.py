"""A member program for the data-path tests: an echo-digest server on PORT, then a client round to every other
member (by name, through the shim): sends a random payload, half-closes, and checks the SHA-256 the server
returns, and that the server saw this member's virtual address and port. One JSON line per target on stdout,
then it keeps serving until the file $STOP exists (bounded by LIFETIME seconds)."""
import hashlib, json, os, socket, sys, threading, time

PORT = int(os.environ.get('MESH_PORT', '7000'))
PAYLOAD = int(os.environ.get('MESH_BYTES', '262144'))
LIFETIME = 300
me = os.environ['BOXER_NAME']


def serve_one(c):
    try:
        peer = c.getpeername()
        h = hashlib.sha256()
        while True:
            d = c.recv(65536)
            if not d:
                break
            h.update(d)
        c.sendall(f"{peer[0]} {peer[1]} {h.hexdigest()}\n".encode())
    finally:
        c.close()


def server():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('::', PORT))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve_one, args=(c,), daemon=True).start()


threading.Thread(target=server, daemon=True).start()
time.sleep(float(os.environ.get('MESH_SETTLE', '3')))
names = [l.split()[2] for l in open(os.environ['BOXER_NODES_FILE']) if l.strip()]
targets = [n for n in (os.environ.get('MESH_TARGETS') or ' '.join(names)).split() if n != me]
for n in targets:
    r = {'from': me, 'to': n}
    t0 = time.time()
    try:
        data = os.urandom(PAYLOAD)
        c = socket.create_connection((n, PORT), timeout=15)
        local = c.getsockname()
        r['local'] = f"{local[0]}:{local[1]}"
        r['peer'] = c.getpeername()[0]
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        reply = b''
        while not reply.endswith(b'\n'):
            d = c.recv(4096)
            if not d:
                break
            reply += d
        c.close()
        ip, port, digest = reply.decode().split()
        r['seen_as'] = f"{ip.replace('::ffff:', '')}:{port}"
        r['ok'] = digest == hashlib.sha256(data).hexdigest() and r['seen_as'] == r['local'] and r['peer'] == socket.gethostbyname(n)
        if digest != hashlib.sha256(data).hexdigest():
            r['err'] = 'payload digest mismatch'
    except OSError as e:
        r['ok'] = False
        r['err'] = f"{type(e).__name__}: {e}"
    r['ms'] = round((time.time() - t0) * 1000, 1)
    print(json.dumps(r), flush=True)
print('DONE', flush=True)
stop = os.environ.get('STOP')
end = time.time() + LIFETIME
while time.time() < end and not (stop and os.path.exists(stop)):
    time.sleep(0.2)
