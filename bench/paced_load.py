#!/usr/bin/env python3
"""Offers RATE emails of 2 KiB per second for SECONDS, open loop: a batch
of BATCH (20) through POST /v1/emails/batch at fixed instants, whatever
the answers before it took (8 connections), so a slower server meets the
same load. Prints the emails accepted and the batches that started more
than 100 ms late.

usage: paced_load.py BASE_URL API_KEY RATE SECONDS
"""
import http.client
import json
import queue
import subprocess
import sys
import threading
import time
import urllib.parse

base, key, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
BATCH = 20
email = json.loads(subprocess.check_output([sys.executable, __file__.replace("paced_load.py", "make_email.py"), "2048"]))
body = json.dumps([email] * BATCH).encode()
url = urllib.parse.urlparse(base)
due = queue.Queue()
lock = threading.Lock()
state = {"accepted": 0, "refused": 0, "late": 0}


def worker():
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    while True:
        at = due.get()
        if at is None:
            return
        if time.monotonic() - at > 0.1:
            with lock:
                state["late"] += 1
        conn.request("POST", "/v1/emails/batch", body, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        ok = 200 <= r.status < 300
        with lock:
            state["accepted" if ok else "refused"] += BATCH if ok else 1


threads = [threading.Thread(target=worker) for _ in range(8)]
for t in threads:
    t.start()
start = time.monotonic()
interval = BATCH / rate
for i in range(int(seconds * rate / BATCH)):
    at = start + i * interval
    time.sleep(max(0.0, at - time.monotonic()))
    due.put(at)
for _ in threads:
    due.put(None)
for t in threads:
    t.join()
if state["refused"]:
    sys.exit(f"{state['refused']} batches were refused")
print(f"accepted={state['accepted']} late={state['late']}")
