"""Answers every connection on PORT with the peer address accept() gave ("IP PORT\n"), one connection at a
time (a slow accept() would hold up every client behind it), until $STOP exists."""
import os, socket, sys, threading, time
s = socket.socket(socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', int(sys.argv[1])))
s.listen(64)
print('LISTENING', flush=True)
def loop():
    while True:
        c, peer = s.accept()
        try:
            c.sendall(f'{peer[0]} {peer[1]}\n'.encode())
        finally:
            c.close()
threading.Thread(target=loop, daemon=True).start()
stop = os.environ.get('STOP')
end = time.time() + 300
while time.time() < end and not (stop and os.path.exists(stop)):
    time.sleep(0.2)
