#!/usr/bin/env python3
"""Latency tools of `npm run bench`, run inside the lab's namespaces (natively, or as a Boxer application).

  netbench.py serve-echo PORT MAX_S     echo server (TCP_NODELAY), one connection at a time, exits after MAX_S
  netbench.py serve-byte PORT MAX_S     accept, send 1 byte, close (time-to-first-byte server)
  netbench.py rtt HOST PORT N SIZE MAX_S   N round trips of SIZE bytes over one TCP_NODELAY connection
  netbench.py ttfb HOST PORT N MAX_S       N times: connect, read 1 byte, close
  netbench.py resolve NAME MAX_S        the virtual address of member NAME from $BOXER_NODES_FILE (polled)

Clients print one JSON object on stdout: {"us": [...], "errors": E, "truncated": bool}.
Servers print "ready" once listening. Every loop is bounded by a count and by MAX_S seconds.
"""
import json
import os
import socket
import sys
import time


def listener(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(128)
    print("ready", flush=True)
    return s


def serve(port, max_s, handle):
    deadline = time.monotonic() + max_s
    srv = listener(port)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        srv.settimeout(left)
        try:
            c, _ = srv.accept()
        except (socket.timeout, OSError):
            return
        try:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.settimeout(max(0.1, deadline - time.monotonic()))
            handle(c)
        except OSError:
            pass
        finally:
            c.close()


def echo(c):
    while True:
        d = c.recv(65536)
        if not d:
            return
        c.sendall(d)


def one_byte(c):
    c.sendall(b"x")


def connect(host, port, timeout):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def rtt(host, port, n, size, max_s):
    deadline = time.monotonic() + max_s
    s = connect(host, port, 5)
    msg = b"b" * size
    us, truncated = [], False
    for i in range(n + 10):  # the first 10 rounds warm up and are not recorded
        if time.monotonic() > deadline:
            truncated = True
            break
        t0 = time.perf_counter_ns()
        s.sendall(msg)
        got = 0
        while got < size:
            d = s.recv(size - got)
            if not d:
                raise OSError("echo server closed the connection")
            got += len(d)
        t1 = time.perf_counter_ns()
        if i >= 10:
            us.append((t1 - t0) / 1000)
    s.close()
    return {"us": us, "errors": 0, "truncated": truncated}


def ttfb(host, port, n, max_s):
    deadline = time.monotonic() + max_s
    us, errors, truncated, first = [], 0, False, None
    for _ in range(n):
        if time.monotonic() > deadline:
            truncated = True
            break
        t0 = time.perf_counter_ns()
        try:
            s = socket.create_connection((host, port), timeout=5)
            try:
                if s.recv(1) != b"x":
                    raise OSError("no byte")
                t1 = time.perf_counter_ns()
            finally:
                s.close()
            us.append((t1 - t0) / 1000)
        except OSError as e:
            errors += 1
            first = first or f"{host}:{port}: {e}"
            if errors > 10:
                break
    return {"us": us, "errors": errors, "truncated": truncated, "error": first}


def resolve(name, max_s):
    deadline = time.monotonic() + max_s
    path = os.environ.get("BOXER_NODES_FILE")
    if not path:
        sys.exit("resolve: BOXER_NODES_FILE is not set (not a Boxer application?)")
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3 and parts[2] == name:
                        return parts[1]
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"resolve: no member {name} after {max_s} s")


def main(a):
    cmd = a[0] if a else ""
    if cmd == "serve-echo":
        serve(int(a[1]), float(a[2]), echo)
    elif cmd == "serve-byte":
        serve(int(a[1]), float(a[2]), one_byte)
    elif cmd == "rtt":
        print(json.dumps(rtt(a[1], int(a[2]), int(a[3]), int(a[4]), float(a[5]))))
    elif cmd == "ttfb":
        print(json.dumps(ttfb(a[1], int(a[2]), int(a[3]), float(a[4]))))
    elif cmd == "resolve":
        print(resolve(a[1], float(a[2])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
