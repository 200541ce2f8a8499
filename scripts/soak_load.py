#!/usr/bin/env python3
"""Load for scripts/soak.sh: echo, HTTP, timed-out reads and connection churn
against the `echo` and `http_server` examples on loopback, for a bounded
time, printing the servers' RSS, fd count and the error count every 10 s.

Usage: soak_load.py SECONDS ECHO_ADDR ECHO_PID HTTP_ADDR HTTP_PID
Exit status 0 when no client saw an error and the servers' fd counts came
back to where they started; the RSS figures are for the reader to judge
(they are printed, first and last, at the end).
"""

import os
import random
import socket
import struct
import sys
import threading
import time

SECONDS = int(sys.argv[1])
ECHO = sys.argv[2].rsplit(":", 1)
ECHO = (ECHO[0], int(ECHO[1]))
ECHO_PID = int(sys.argv[3])
HTTP = sys.argv[4].rsplit(":", 1)
HTTP = (HTTP[0], int(HTTP[1]))
HTTP_PID = int(sys.argv[5])

stop = threading.Event()
lock = threading.Lock()
counts = {"echo_bytes": 0, "echo_conns": 0, "http_requests": 0, "timed_out_reads": 0,
          "churn": 0, "resets_sent": 0, "errors": 0}
errors = []


def count(key, n=1):
    with lock:
        counts[key] += n


def error(what):
    with lock:
        counts["errors"] += 1
        if len(errors) < 20:
            errors.append(what)


def connect(addr):
    s = socket.create_connection(addr, timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def reset(s):
    """Closes with a reset (SO_LINGER 0)."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    count("resets_sent")


def recv_exact(s, n):
    out = bytearray()
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise EOFError("end of stream after %d of %d bytes" % (len(out), n))
        out += chunk
    return bytes(out)


def echo_worker(seed):
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            s = connect(ECHO)
            count("echo_conns")
            for _ in range(rng.randint(1, 20)):
                data = os.urandom(rng.choice([1, 100, 1500, 4096, 20000, 65536]))
                s.sendall(data)
                if recv_exact(s, len(data)) != data:
                    error("echo: corrupted")
                    break
                count("echo_bytes", len(data))
            end = rng.random()
            if end < 0.1:
                s.sendall(os.urandom(5000))
                reset(s)  # a reset with data in flight
            elif end < 0.2:
                s.shutdown(socket.SHUT_WR)
                if s.recv(10) != b"":
                    error("echo: bytes after half-close")
                s.close()
            else:
                s.close()
        except (OSError, EOFError) as e:
            if not stop.is_set():
                error("echo: %r" % e)


REQUEST = b"GET / HTTP/1.1\r\nHost: soak\r\n\r\n"
RESPONSE_END = b"Hello, world!\n"


def read_response(s, buf):
    """Reads one response (head + 14-byte body); returns (status, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("end of stream in a response head")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("end of stream in a body")
        rest += chunk
    return status, rest[:length], rest[length:]


def http_worker(seed):
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            s = connect(HTTP)
            buf = b""
            for _ in range(rng.randint(1, 50)):
                n = rng.choice([1, 1, 1, 3])  # sometimes pipelined
                s.sendall(REQUEST * n)
                for _ in range(n):
                    status, body, buf = read_response(s, buf)
                    if status != 200 or body != RESPONSE_END:
                        error("http: %d %r" % (status, body[:40]))
                    count("http_requests")
            if rng.random() < 0.1:
                s.sendall(b"BAD REQUEST\r\n\r\n")
                status, _, buf = read_response(s, buf)
                if status != 400:
                    error("http: bad request got %d" % status)
            s.close()
        except (OSError, EOFError, ValueError, IndexError) as e:
            if not stop.is_set():
                error("http: %r" % e)


def slow_worker(seed):
    """Clients whose reads time out: a partial request head or unread echoes,
    then a wait past the client's read timeout, then a close or reset."""
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            if rng.random() < 0.5:
                s = connect(HTTP)
                s.sendall(REQUEST[: rng.randint(1, len(REQUEST) - 1)])
            else:
                s = connect(ECHO)
                s.sendall(os.urandom(rng.randint(1, 200000)))
            s.settimeout(rng.uniform(0.05, 0.5))
            try:
                while s.recv(65536):
                    pass
            except socket.timeout:
                count("timed_out_reads")
            if rng.random() < 0.5:
                reset(s)
            else:
                s.close()
        except OSError as e:
            if not stop.is_set():
                error("slow: %r" % e)


def churn_worker(seed):
    """Connections opened and closed (or reset) at once, at a bounded rate."""
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            s = connect(rng.choice([ECHO, HTTP]))
            if rng.random() < 0.5:
                reset(s)
            else:
                s.close()
            count("churn")
        except OSError as e:
            if not stop.is_set():
                error("churn: %r" % e)
        time.sleep(0.002)


def proc(pid):
    """(RSS KiB, open fds, threads) of a process."""
    rss = threads = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, len(os.listdir("/proc/%d/fd" % pid)), threads


def main():
    base = {"echo": proc(ECHO_PID), "http": proc(HTTP_PID)}
    workers = []
    for i, (fn, n) in enumerate([(echo_worker, 4), (http_worker, 4), (slow_worker, 3), (churn_worker, 2)]):
        for j in range(n):
            t = threading.Thread(target=fn, args=(i * 100 + j,), daemon=True)
            t.start()
            workers.append(t)
    start = time.time()
    samples = []
    print("   time  echo RSS KiB fds thr | http RSS KiB fds thr | echo MB  http req  timed-out  churn  resets  errors", flush=True)
    while time.time() - start < SECONDS:
        time.sleep(min(10, max(0.1, SECONDS - (time.time() - start))))
        e, h = proc(ECHO_PID), proc(HTTP_PID)
        samples.append((e, h))
        with lock:
            c = dict(counts)
        print("%6.0fs  %12d %3d %3d | %12d %3d %3d | %7.1f %8d %10d %6d %7d %7d" % (
            time.time() - start, e[0], e[1], e[2], h[0], h[1], h[2],
            c["echo_bytes"] / 1e6, c["http_requests"], c["timed_out_reads"], c["churn"],
            c["resets_sent"], c["errors"]), flush=True)
    stop.set()
    for t in workers:
        t.join(timeout=15)
    time.sleep(3)  # let the servers close what the last clients left
    end = {"echo": proc(ECHO_PID), "http": proc(HTTP_PID)}
    ok = counts["errors"] == 0
    for name in ("echo", "http"):
        b, f = base[name], end[name]
        first = samples[min(5, len(samples) - 1)][0 if name == "echo" else 1]
        print("%s: fds %d at start, %d at the end; RSS %d KiB at start, %d after the first minute, %d at the end"
              % (name, b[1], f[1], b[0], first[0], f[0]))
        if f[1] != b[1]:
            ok = False
            print("%s: fd count did not come back" % name)
    for e in errors:
        print("error:", e)
    print("soak %s: %d errors" % ("passed" if ok else "FAILED", counts["errors"]))
    sys.exit(0 if ok else 1)


main()
