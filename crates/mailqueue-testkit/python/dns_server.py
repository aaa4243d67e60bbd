"""An authoritative DNS server for tests, on dnslib.

It answers from a zone kept as JSON in a file, read again on every query, so
a test publishes, changes and removes records by rewriting the file:

    {"name.example.": {"TXT": ["v=spf1 mx ~all"], "MX": [[10, "mx.example."]]}}

Long TXT values are split into 255-octet strings, as DNS requires. A name
whose entry is {"SERVFAIL": true} answers SERVFAIL. Prints its UDP/TCP port
on stdout once it listens.
"""

import argparse
import json
import os
import socket
import sys
import time

from dnslib import MX, QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSServer


class ZoneFile(BaseResolver):
    def __init__(self, path):
        self.path = path

    def zone(self):
        try:
            with open(self.path, encoding="utf-8") as f:
                return {k.lower(): v for k, v in json.load(f).items()}
        except (OSError, ValueError):
            return {}

    def resolve(self, request, handler):
        reply = request.reply()
        reply.header.aa = 1
        name = str(request.q.qname).lower()
        qtype = QTYPE[request.q.qtype]
        entry = self.zone().get(name)
        if entry is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if entry.get("SERVFAIL"):
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        for value in entry.get(qtype, []):
            if qtype == "TXT":
                data = value.encode()
                chunks = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
                rdata = TXT(chunks)
            elif qtype == "MX":
                rdata = MX(value[1], value[0])
            else:
                continue
            reply.add_answer(RR(request.q.qname, request.q.qtype, rdata=rdata, ttl=1))
        return reply


def free_port():
    # The same port must be free for UDP and TCP.
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise SystemExit("no free port")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--zone", required=True)
    args = parser.parse_args()
    resolver = ZoneFile(args.zone)
    port = free_port()
    udp = DNSServer(resolver, port=port, address="127.0.0.1")
    tcp = DNSServer(resolver, port=port, address="127.0.0.1", tcp=True)
    udp.start_thread()
    tcp.start_thread()
    print(port, flush=True)
    # dnslib logs every query to stdout, which nobody reads past the port.
    sys.stdout = open(os.devnull, "w", encoding="utf-8")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
