#!/usr/bin/env python3
"""Simulated open dashboards, for measuring what they cost the coordinator (not used by tests).

Each client does what the page does: follows /api/events (Server-Sent Events) and, on every update,
fetches the job table's first page, the Pareto points and (at most every 2 s) the parallel
coordinates. Reconnects when the server goes away (as EventSource does).
    scripts/dashboard-clients.py http://127.0.0.1:8080/ 10 [seconds] [token]
Prints, at the end, requests made and bytes received per client.
"""
import http.client, signal, sys, threading, time, urllib.parse

base, n = sys.argv[1], int(sys.argv[2])
duration = float(sys.argv[3]) if len(sys.argv) > 3 else 1e9
token = sys.argv[4] if len(sys.argv) > 4 else None
u = urllib.parse.urlparse(base)
headers = {"Authorization": "Bearer " + token} if token else {}
stop = time.time() + duration
stats = [[0, 0] for _ in range(n)]

def fetch(i, path):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    c.request("GET", path, headers=headers)
    body = c.getresponse().read()
    c.close()
    stats[i][0] += 1
    stats[i][1] += len(body)

def client(i):
    last_parallel = 0
    while time.time() < stop:
        try:
            for p in ["/", "/api/sweeps", "/api/summary?sweep=0"]:
                fetch(i, p)
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            c.request("GET", "/api/events?sweep=0", headers=headers)
            r = c.getresponse()
            while time.time() < stop:
                line = r.fp.readline()
                if not line:
                    break
                stats[i][1] += len(line)
                if line.startswith(b"event: update"):
                    fetch(i, "/api/jobs?sweep=0&page=0&size=50&sort=seq&dir=asc")
                    fetch(i, "/api/pareto?sweep=0")
                    if time.time() - last_parallel > 2:
                        fetch(i, "/api/parallel?sweep=0")
                        last_parallel = time.time()
            c.close()
        except Exception:
            time.sleep(0.5)

def finish(*_):
    raise KeyboardInterrupt
signal.signal(signal.SIGTERM, finish)  # a background job ignores SIGINT; TERM ends it with its figures
signal.signal(signal.SIGINT, finish)

threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
for t in threads:
    t.start()
try:
    while time.time() < stop:
        time.sleep(0.5)
except KeyboardInterrupt:
    pass
print("dashboard clients: %d, requests %d, bytes %d" % (n, sum(s[0] for s in stats), sum(s[1] for s in stats)), flush=True)
