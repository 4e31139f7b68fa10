"""Answers every connection on PORT with NAME ("NAME\n"), a thread per connection, after DELAY_MS (a request
that takes time, so that some are in flight when the member drains), until $STOP exists or SIGTERM."""
import os, signal, socket, sys, threading, time
name, port = sys.argv[1], int(sys.argv[2])
delay = int(os.environ.get('DELAY_MS', '0')) / 1000
s = socket.socket(socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', port))
s.listen(128)
print('START', int(time.time() * 1000), flush=True)
def serve(c):
    try:
        time.sleep(delay)
        c.sendall(f'{name}\n'.encode())
    finally:
        c.close()
def loop():
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
threading.Thread(target=loop, daemon=True).start()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
stop = os.environ.get('STOP')
end = time.time() + 300
while time.time() < end and not (stop and os.path.exists(stop)):
    time.sleep(0.2)
