"""Sends one message through mailqueue's submission port with aiosmtplib,
as an asyncio application would. Reads {port, tls: "starttls" | "implicit",
ca, key, from, to, subject, text} as JSON on stdin; prints the server's
reply to the message as JSON."""

import asyncio
import json
import ssl
import sys
from email.message import EmailMessage

import aiosmtplib


async def main():
    spec = json.load(sys.stdin)
    message = EmailMessage()
    message["From"] = spec["from"]
    message["To"] = ", ".join(spec["to"])
    message["Subject"] = spec["subject"]
    message.set_content(spec["text"])
    context = ssl.create_default_context(cafile=spec["ca"])
    implicit = spec["tls"] == "implicit"
    errors, response = await aiosmtplib.send(
        message,
        hostname="localhost",
        port=spec["port"],
        username="resend",
        password=spec["key"],
        use_tls=implicit,
        start_tls=not implicit,
        tls_context=context,
        timeout=60,
    )
    print(json.dumps({"refused": list(errors), "response": response}))


asyncio.run(main())
