"""A line echo server on PORT (threads; one per connection), until $STOP exists."""
import os, socket, sys, threading, time
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('::', int(sys.argv[1])))
s.listen(16)
def serve(c):
    f = c.makefile('rb')
    for line in f:
        c.sendall(line)
def loop():
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
threading.Thread(target=loop, daemon=True).start()
stop = os.environ.get('STOP')
end = time.time() + 300
while time.time() < end and not (stop and os.path.exists(stop)):
    time.sleep(0.2)
