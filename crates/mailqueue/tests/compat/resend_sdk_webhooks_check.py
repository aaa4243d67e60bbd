#!/usr/bin/env python3
"""Drives mailqueue's /v1/webhooks with the official Resend Python SDK
(resend.Webhooks.create, get, list, update, rotate_signing_secret,
list_events, get_event, list_event_attempts, replay_event, remove) and
checks every delivery with two verifiers that are not ours: the Standard
Webhooks library (`standardwebhooks`, the specification's own) and the
SDK's `resend.Webhooks.verify`. A tampered body and an old timestamp must
be refused by both; after a rotation, the old and the new secret must
both verify.

RESEND_API_URL (http://host:port/v1) and RESEND_API_KEY (a full-access
key) come from the environment; the server must allow private endpoints
(the receiver here listens on 127.0.0.1). Exits non-zero on the first
failed check.
"""

import time

import resend
from resend.exceptions import ResendError
from standardwebhooks import Webhook, WebhookVerificationError

from hook_receiver import check, received, start_receiver


def next_request(event_type):
    deadline = time.time() + 20
    while time.time() < deadline:
        headers, body = received.get(timeout=max(0.1, deadline - time.time()))
        if f'"type":"{event_type}"' in body:
            return headers, body
    raise AssertionError(f"no {event_type} request arrived")


def standard_headers(headers, **changes):
    """The svix-* headers under Standard Webhooks' names, as resend-node
    hands them to the same library."""
    out = {
        "webhook-id": headers["svix-id"],
        "webhook-timestamp": headers["svix-timestamp"],
        "webhook-signature": headers["svix-signature"],
    }
    out.update(changes)
    return out


def sdk_verify(secret, headers, body):
    return resend.Webhooks.verify(
        {
            "payload": body,
            "headers": {
                "id": headers["webhook-id"],
                "timestamp": headers["webhook-timestamp"],
                "signature": headers["webhook-signature"],
            },
            "webhook_secret": secret,
        }
    )


def refused_by_both(secret, headers, body, reason):
    try:
        Webhook(secret).verify(body, headers)
        raise AssertionError(f"standardwebhooks accepted {reason}")
    except WebhookVerificationError as e:
        message = str(e)
    try:
        sdk_verify(secret, headers, body)
        raise AssertionError(f"resend.Webhooks.verify accepted {reason}")
    except ValueError:
        pass
    return message


def verified_by_both(secret, headers, body):
    payload = Webhook(secret).verify(body, headers)
    return payload == sdk_verify(secret, headers, body)


def send_email(subject):
    return resend.Emails.send(
        {"from": "Acme <noreply@acme.test>", "to": ["user@example.com"], "subject": subject, "text": "hi"}
    )["id"]


def main():
    endpoint = start_receiver("/resend")

    created = resend.Webhooks.create({"endpoint": endpoint, "events": ["email.sent"]})
    check(created["object"] == "webhook" and created["signing_secret"].startswith("whsec_"), "create answers the secret")
    webhook_id = created["id"]
    secret = created["signing_secret"]
    got = resend.Webhooks.get(webhook_id)
    check(got["endpoint"] == endpoint and got["events"] == ["email.sent"] and got["status"] == "enabled", "get")
    listed = resend.Webhooks.list({"limit": 10})
    check(listed["data"][0]["id"] == webhook_id and listed["has_more"] is False, "list")

    email_id = send_email("verified")
    headers, body = next_request("email.sent")
    std = standard_headers(headers)
    payload = Webhook(secret).verify(body, std)
    check(payload["type"] == "email.sent" and payload["data"]["email_id"] == email_id, "standardwebhooks verifies the delivery")
    check(sdk_verify(secret, std, body) == payload, "resend.Webhooks.verify agrees")

    tampered = body.replace('"verified"', '"tampered"')
    check(tampered != body, "the body was changed")
    refused_by_both(secret, std, tampered, "a tampered body")
    check(True, "a tampered body is refused by both verifiers")
    old = str(int(headers["svix-timestamp"]) - 600)
    reason = refused_by_both(secret, standard_headers(headers, **{"webhook-timestamp": old}), body, "an old timestamp")
    check("too old" in reason, f"an old timestamp is refused by both verifiers ({reason})")
    refused_by_both("whsec_" + "A" * 32, std, body, "another secret")
    check(True, "another secret is refused by both verifiers")

    events = resend.Webhooks.list_events(webhook_id)
    check(events["object"] == "list" and events["data"][0]["id"] == headers["svix-id"], "list_events")
    event = resend.Webhooks.get_event(webhook_id, headers["svix-id"])
    deadline = time.time() + 10
    while event["status"] != "success" and time.time() < deadline:
        time.sleep(0.1)
        event = resend.Webhooks.get_event(webhook_id, headers["svix-id"])
    check(event["status"] == "success" and event["payload"]["data"]["email_id"] == email_id, "get_event")
    attempts = resend.Webhooks.list_event_attempts(webhook_id, headers["svix-id"])
    check(attempts["data"][0]["http_status_code"] == 204 and attempts["data"][0]["sent_at"], "list_event_attempts")
    replayed = resend.Webhooks.replay_event(webhook_id, headers["svix-id"])
    check(replayed["id"] == headers["svix-id"], "replay_event")
    again, again_body = next_request("email.sent")
    check(again["svix-id"] == headers["svix-id"] and verified_by_both(secret, standard_headers(again), again_body),
          "the replay carries the same svix-id, signed")

    rotated = resend.Webhooks.rotate_signing_secret(webhook_id)
    new_secret = rotated["signing_secret"]
    check(new_secret.startswith("whsec_") and new_secret != secret, "rotate_signing_secret answers a new secret")
    send_email("rotated")
    headers, body = next_request("email.sent")
    std = standard_headers(headers)
    check(len(headers["svix-signature"].split(" ")) == 2, "two signatures during the grace period")
    check(verified_by_both(new_secret, std, body), "the new secret verifies")
    check(verified_by_both(secret, std, body), "the old secret still verifies during the grace period")

    updated = resend.Webhooks.update({"webhook_id": webhook_id, "status": "disabled", "events": ["email.delivered"]})
    check(updated["id"] == webhook_id, "update")
    check(resend.Webhooks.get(webhook_id)["status"] == "disabled", "the webhook is disabled")
    try:
        resend.Webhooks.create({"endpoint": endpoint, "events": ["email.nonsense"]})
        raise AssertionError("an unknown event type was accepted")
    except ResendError as e:
        check(e.code == 422, f"an unknown event type is refused ({e.code} {e.error_type})")
    removed = resend.Webhooks.remove(webhook_id)
    check(removed["deleted"] is True, "remove")
    print("all Resend SDK webhooks checks passed")


if __name__ == "__main__":
    main()
