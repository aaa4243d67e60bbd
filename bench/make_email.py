#!/usr/bin/env python3
"""Prints a JSON email of about SIZE bytes (default 2048), the body the
benchmarks send."""
import json
import sys

size = int(sys.argv[1]) if len(sys.argv) > 1 else 2048
email = {
    "from": "Acme Billing <billing@acme.test>",
    "to": ["customer@example.com"],
    "subject": "Your invoice for November",
    "text": "",
    "tags": [{"name": "kind", "value": "invoice"}],
}
filler = "Thank you for your order. Your invoice is attached below. "
base = len(json.dumps(email))
text = (filler * (size // len(filler) + 1))[: max(0, size - base)]
email["text"] = text
extra = sys.argv[2] if len(sys.argv) > 2 else None
if extra:
    email["scheduled_at"] = extra
print(json.dumps(email))
