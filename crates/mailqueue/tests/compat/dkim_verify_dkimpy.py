"""Verifies DKIM signatures with dkimpy, an implementation independent of
mailqueue's. Reads {"dns_port", "messages": [base64]} on stdin; the public
keys come from the test's DNS server through dnspython. Prints a list of
{"valid", "domain", "selector", "algorithm"} as JSON."""

import base64
import json
import sys

import dkim
import dns.resolver


def main():
    request = json.load(sys.stdin)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = request["dns_port"]
    resolver.cache = None
    dns.resolver.default_resolver = resolver
    results = []
    for encoded in request["messages"]:
        message = base64.b64decode(encoded)
        verifier = dkim.DKIM(message)
        try:
            valid = verifier.verify(idx=0)
        except dkim.DKIMException as e:
            valid = False
            print(f"dkimpy: {e}", file=sys.stderr)
        results.append({
            "valid": bool(valid),
            "domain": (verifier.domain or b"").decode(),
            "selector": (verifier.selector or b"").decode(),
            "algorithm": (verifier.signature_fields.get(b"a") or b"").decode(),
        })
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
