"""Resolves SERVICE once, then connects to it every PAUSE_MS (WORKERS threads), reading one line per
connection: prints "R <epoch ms> <line>" per answer and "F <epoch ms> <error>" per failure, for SECONDS or
until $STOP exists; then "DONE <answers> <failures>"."""
import os, socket, sys, threading, time
service, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
pause = int(os.environ.get('PAUSE_MS', '20')) / 1000
workers = int(os.environ.get('WORKERS', '1'))
addr = socket.getaddrinfo(service, port, socket.AF_INET, socket.SOCK_STREAM)[0][4]
print('RESOLVED', addr[0], flush=True)
stop = os.environ.get('STOP')
end = time.time() + seconds
lock = threading.Lock()
counts = [0, 0]
def out(kind, text):
    with lock:
        counts[0 if kind == 'R' else 1] += 1
        print(kind, int(time.time() * 1000), text, flush=True)
def work():
    while time.time() < end and not (stop and os.path.exists(stop)):
        c = socket.socket(socket.AF_INET)
        c.settimeout(10)
        try:
            c.connect(addr)
            line = c.makefile('r').readline().strip()
            out('R', line) if line else out('F', 'empty answer')
        except OSError as e:
            out('F', e)
        finally:
            c.close()
        time.sleep(pause)
ts = [threading.Thread(target=work) for _ in range(workers)]
for t in ts: t.start()
for t in ts: t.join()
print('DONE', counts[0], counts[1], flush=True)
