#!/usr/bin/env python3
"""Manages a sending domain with the official Resend Python SDK
(resend.Domains.create, update, remove) and checks the domain.created,
domain.updated and domain.deleted webhooks each change sends: Resend's
payload ({type, created_at, data: {id, name, status, created_at, region,
records}}), verified by the Standard Webhooks library and by the SDK's
resend.Webhooks.verify, and listed by resend.Webhooks.list_events with no
email.

RESEND_API_URL (http://host:port/v1) and RESEND_API_KEY (a full-access
key) come from the environment; the server must allow private endpoints
and hold MAILQUEUE_SECRET_KEY. Exits non-zero on the first failed check.
"""

import json
import time

import resend
from standardwebhooks import Webhook

from hook_receiver import check, received, start_receiver


def next_event(secret):
    """The next delivery, verified by both verifiers: (svix-id, payload)."""
    headers, body = received.get(timeout=20)
    std = {
        "webhook-id": headers["svix-id"],
        "webhook-timestamp": headers["svix-timestamp"],
        "webhook-signature": headers["svix-signature"],
    }
    payload = Webhook(secret).verify(body, std)
    sdk = resend.Webhooks.verify(
        {
            "payload": body,
            "headers": {
                "id": std["webhook-id"],
                "timestamp": std["webhook-timestamp"],
                "signature": std["webhook-signature"],
            },
            "webhook_secret": secret,
        }
    )
    check(sdk == payload, f"both verifiers accept {payload['type']}")
    return headers["svix-id"], payload


def check_shape(payload, kind, domain_id):
    check(payload["type"] == kind, f"{kind}: its type")
    check(payload["created_at"].endswith("Z"), f"{kind}: created_at {payload['created_at']}")
    data = payload["data"]
    check(data["id"] == domain_id and data["name"] == "events.example", f"{kind}: id and name")
    check(data["region"] == "us-east-1" and "created_at" in data, f"{kind}: region and created_at")
    kinds = sorted(r["record"] for r in data["records"])
    check("DKIM" in kinds and "SPF" in kinds, f"{kind}: the records ({kinds})")
    for r in data["records"]:
        check(
            {"record", "name", "type", "value", "ttl", "status"} <= set(r),
            f"{kind}: record {r['record']} {r['type']} has Resend's fields",
        )
    return data


def main():
    endpoint = start_receiver("/domains")
    hook = resend.Webhooks.create(
        {"endpoint": endpoint, "events": ["domain.created", "domain.updated", "domain.deleted"]}
    )
    secret = hook["signing_secret"]

    created = resend.Domains.create({"name": "events.example"})
    domain_id = created["id"]
    first_id, payload = next_event(secret)
    data = check_shape(payload, "domain.created", domain_id)
    check(data["status"] == "not_started", "domain.created: not_started")
    check(
        [r["value"] for r in data["records"]] == [r["value"] for r in created["records"]],
        "domain.created: the records the create answered",
    )

    resend.Domains.update({"id": domain_id, "tls": "enforced", "open_tracking": True})
    _, payload = next_event(secret)
    data = check_shape(payload, "domain.updated", domain_id)
    check(data["tls"] == "enforced" and data["open_tracking"] is True, "domain.updated: the new settings")

    resend.Domains.update({"id": domain_id, "tls": "enforced", "open_tracking": True})
    time.sleep(1)
    check(received.empty(), "an update that changes nothing sends nothing")

    resend.Domains.remove(domain_id)
    _, payload = next_event(secret)
    check_shape(payload, "domain.deleted", domain_id)

    events = resend.Webhooks.list_events(hook["id"])
    types = sorted(e["type"] for e in events["data"])
    check(types == ["domain.created", "domain.deleted", "domain.updated"], f"list_events: {types}")
    check(all(e["email_id"] is None for e in events["data"]), "list_events: no email")
    deadline = time.time() + 10
    while True:
        event = resend.Webhooks.get_event(hook["id"], first_id)
        if event["status"] == "success" or time.time() > deadline:
            break
        time.sleep(0.1)
    check(event["status"] == "success", "get_event: delivered")
    check(event["payload"]["type"] == "domain.created", "get_event: the payload as POSTed")
    check(json.dumps(event["payload"]["data"]["records"]) != "[]", "get_event: with its records")
    print("all Resend SDK domain events checks passed")


if __name__ == "__main__":
    main()
