"""Talks to mailqueue's submission port with Python's smtplib, as an
application would, and prints every reply it got as JSON.

The conversation comes as JSON on stdin:
  {"port": 587, "mode": "plain" | "starttls" | "ssl", "ca": "ca.pem",
   "auth": {"mechanism": "PLAIN" | "LOGIN", "user": "resend", "password": "re_..."},
   "steps": [["mail", "a@b", ["SIZE=10"]], ["rcpt", "c@d"], ["data", "file.eml"],
             ["rset"], ["noop"], ["raw", "HELP"]]}
and stdout is {"starttls": [code, text], "auth": [code, text], "steps": [[code, text], ...]}.
"""

import json
import smtplib
import ssl
import sys


def reply(code, text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [code, text]


def main():
    spec = json.load(sys.stdin)
    context = ssl.create_default_context(cafile=spec["ca"]) if spec.get("ca") else None
    if spec["mode"] == "ssl":
        client = smtplib.SMTP_SSL("127.0.0.1", spec["port"], context=context, timeout=60)
    else:
        client = smtplib.SMTP("127.0.0.1", spec["port"], timeout=60)
    out = {"steps": []}
    client.ehlo("client.test")
    out["features"] = sorted(client.esmtp_features)
    if spec["mode"] == "starttls":
        out["starttls"] = reply(*client.starttls(context=context))
        client.ehlo("client.test")
        out["features_after_tls"] = sorted(client.esmtp_features)
    auth = spec.get("auth")
    if auth:
        client.user, client.password = auth["user"], auth["password"]
        method = client.auth_plain if auth["mechanism"] == "PLAIN" else client.auth_login
        try:
            out["auth"] = reply(*client.auth(auth["mechanism"], method, initial_response_ok=auth["mechanism"] == "PLAIN"))
        except smtplib.SMTPAuthenticationError as e:
            out["auth"] = reply(e.smtp_code, e.smtp_error)
        except smtplib.SMTPNotSupportedError as e:
            out["auth"] = reply(0, str(e))
        except smtplib.SMTPServerDisconnected as e:
            out["auth"] = reply(-1, str(e))
    for step in spec.get("steps", []):
        kind = step[0]
        try:
            if kind == "mail":
                got = client.mail(step[1], step[2] if len(step) > 2 else ())
            elif kind == "rcpt":
                got = client.rcpt(step[1])
            elif kind == "data":
                with open(step[1], "rb") as f:
                    got = client.data(f.read())
            elif kind == "rset":
                got = client.rset()
            elif kind == "noop":
                got = client.noop()
            elif kind == "raw":
                got = client.docmd(step[1])
            else:
                raise ValueError(f"unknown step {kind}")
            out["steps"].append(reply(*got))
        except smtplib.SMTPDataError as e:
            out["steps"].append(reply(e.smtp_code, e.smtp_error))
        except smtplib.SMTPServerDisconnected as e:
            out["steps"].append(reply(-1, str(e)))
            break
    try:
        client.quit()
    except smtplib.SMTPServerDisconnected:
        pass
    print(json.dumps(out))


main()
