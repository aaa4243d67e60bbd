#!/usr/bin/env python3
"""Loads COUNT emails of 2 KiB through POST /v1/emails/batch (100 per
request, 4 connections), all scheduled for AT (RFC 3339). With
PAD_HEADER_BYTES=N in the environment, each email carries an `X-Pad`
header line of N bytes (the size of a DKIM-Signature, for a baseline
that carries a signature's bytes without signing).

usage: load_backlog.py BASE_URL API_KEY COUNT AT
"""
import os
import http.client
import json
import subprocess
import sys
import threading
import urllib.parse

base, key, count, at = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
email = json.loads(subprocess.check_output([sys.executable, __file__.replace("load_backlog.py", "make_email.py"), "2048", at]))
pad = int(os.environ.get("PAD_HEADER_BYTES") or 0)
if pad:
    # "X-Pad: " + value + CRLF
    email.setdefault("headers", {})["X-Pad"] = "p" * (pad - len("X-Pad: \r\n"))
body = json.dumps([email] * 100).encode()
url = urllib.parse.urlparse(base)
batches = count // 100
lock = threading.Lock()
state = {"next": 0, "errors": 0}


def worker():
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    while True:
        with lock:
            if state["next"] >= batches:
                return
            state["next"] += 1
        conn.request("POST", "/v1/emails/batch", body, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status != 202:
            with lock:
                state["errors"] += 1


threads = [threading.Thread(target=worker) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if state["errors"]:
    sys.exit(f"{state['errors']} batches were refused")
