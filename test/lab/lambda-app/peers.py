#!/usr/bin/env python3
"""An unmodified program for the Lambda end-to-end test (test/lab/lambda-e2e.test.ts): it knows nothing of
Boxer but the member list file a cluster program reads for its peers. It serves its name on TCP port 9000,
connects to every other member by name and reads theirs, prints what it got, then (all but the member named
in $CUT, which runs until its function's deadline stops it) waits until $CUT leaves the member list and prints
when it saw that, as epoch milliseconds. Every wait is bounded."""
import os
import socket
import sys
import threading
import time

PORT = 9000
me = os.environ['BOXER_NAME']
cut = os.environ['CUT']
nodes_file = os.environ['BOXER_NODES_FILE']


def names():
    with open(nodes_file) as f:
        return [line.split()[2] for line in f if len(line.split()) >= 3]


def serve(srv):
    while True:
        c, _ = srv.accept()
        c.sendall(me.encode())
        c.close()


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('0.0.0.0', PORT))
srv.listen(16)
threading.Thread(target=serve, args=(srv,), daemon=True).start()

talked = 0
peers = [n for n in names() if n != me]
for peer in peers:
    got, err = None, None
    for _ in range(100):  # the peer may not listen yet: 100 tries, 0.1 s apart
        try:
            with socket.create_connection((peer, PORT), timeout=5) as c:
                got = c.recv(64).decode()
            break
        except OSError as e:
            err = e
            time.sleep(0.1)
    print(f'{me} got {got!r} from {peer}' if got else f'{me} could not reach {peer}: {err}', flush=True)
    talked += got == peer

if me == cut:
    time.sleep(3600)  # stopped by the handler before the function's deadline

for _ in range(1200):  # at most 60 s
    if cut not in names():
        print(f'{me} saw {cut} leave at {int(time.time() * 1000)}', flush=True)
        sys.exit(0 if talked == len(peers) else 3)
    time.sleep(0.05)
print(f'{me} never saw {cut} leave', flush=True)
sys.exit(4)
