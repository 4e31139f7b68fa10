"""Connects to NAME:PORT where nothing listens: blocking, then non-blocking with select + SO_ERROR; prints errno names."""
import errno, select, socket, sys
name, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
s.settimeout(30)
try:
    s.connect((name, port))
    print('BLOCKING connected')
except OSError as e:
    print('BLOCKING', errno.errorcode.get(e.errno, e))
n = socket.socket()
n.setblocking(False)
rc = n.connect_ex((socket.gethostbyname(name), port))
select.select([], [n], [], 30)
print('NONBLOCKING', errno.errorcode.get(rc, rc), errno.errorcode.get(n.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), 'OK'))
