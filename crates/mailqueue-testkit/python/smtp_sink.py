#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) for mailqueue's tests.

It listens on 127.0.0.1, prints its port on the first line of stdout, and
writes every message it accepts to DIR/<n>.json (envelope and raw bytes,
base64), atomically. Every DATA it receives, accepted or not, is appended to
DIR/attempts.log with the reply it got.

  --replies 451,250   answer the 1st DATA with 451, the 2nd with 250, then 250
  --delay-ms N        wait N ms before answering DATA (to catch sends in flight)
  --tls-cert F --tls-key F
                      offer STARTTLS (required before MAIL) with this certificate
  --implicit-tls      speak TLS from the first byte instead (smtps)
  --auth USER:PASS    require AUTH PLAIN/LOGIN with these credentials (over
                      TLS when TLS is offered, in the clear otherwise)

Each stored message also says whether its session was encrypted and who
logged in.
"""

import argparse
import asyncio
import base64
import json
import os
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult

REPLY_TEXT = {
    250: "2.0.0 Ok: queued",
    421: "4.3.2 Service not available, closing channel",
    450: "4.2.0 Mailbox temporarily unavailable",
    451: "4.3.0 Temporary failure, try again later",
    452: "4.3.1 Insufficient system storage",
    550: "5.1.1 Mailbox unavailable",
    552: "5.3.4 Message too big",
    554: "5.7.1 Rejected by policy",
}


class Handler:
    def __init__(self, directory, replies, delay_ms):
        self.directory = directory
        self.replies = replies
        self.delay_ms = delay_ms
        self.data_count = 0
        self.accepted = 0

    async def handle_DATA(self, server, session, envelope):
        self.data_count += 1
        n = self.data_count
        code = self.replies[n - 1] if n <= len(self.replies) else 250
        if self.delay_ms:
            await asyncio.sleep(self.delay_ms / 1000)
        with open(os.path.join(self.directory, "attempts.log"), "a") as log:
            log.write(f"{n} {code} {','.join(envelope.rcpt_tos)}\n")
        if code != 250:
            return f"{code} {REPLY_TEXT.get(code, 'Rejected')}"
        self.accepted += 1
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": base64.b64encode(envelope.original_content or envelope.content).decode(),
            "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
            "login": session.auth_data.decode() if isinstance(session.auth_data, bytes) else session.auth_data,
        }
        name = os.path.join(self.directory, f"{self.accepted:08d}.json")
        with open(name + ".tmp", "w") as f:
            json.dump(record, f)
        os.replace(name + ".tmp", name)
        return f"250 {REPLY_TEXT[250]}"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--replies", default="")
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--auth")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    replies = [int(r) for r in args.replies.split(",") if r.strip()]
    handler = Handler(args.dir, replies, args.delay_ms)
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    options = {"data_size_limit": None, "enable_SMTPUTF8": True, "ident": "mailqueue-test-sink"}
    if context and not args.implicit_tls:
        options.update(tls_context=context, require_starttls=True)
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login.decode() == user and auth_data.password.decode() == password
            # handled=False: aiosmtpd itself answers a failure with 535.
            return AuthResult(success=ok, handled=False, auth_data=auth_data.login.decode() if ok else None)

        # With implicit TLS aiosmtpd cannot tell the session is encrypted;
        # without any TLS (a loopback sink) AUTH is allowed in the clear.
        warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
        options.update(authenticator=authenticate, auth_required=True,
                       auth_require_tls=context is not None and not args.implicit_tls)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, **options),
        host="127.0.0.1",
        port=args.port,
        reuse_address=True,
        ssl=context if args.implicit_tls else None,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
