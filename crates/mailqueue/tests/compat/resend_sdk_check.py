#!/usr/bin/env python3
"""Drives a running mailqueue with the official Resend Python SDK.

RESEND_API_URL (http://host:port/v1) and RESEND_API_KEY come from the
environment, as a user of the SDK would set them. Exits non-zero on the
first failed check.
"""

import base64
import time

import resend
from resend.exceptions import InvalidApiKeyError, ValidationError

FROM = "Acme <noreply@acme.test>"


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"ok - {what}")


def wait_for_event(email_id, events, timeout=20):
    """Polls until the email's last_event is one of `events`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        email = resend.Emails.get(email_id)
        if email["last_event"] in events:
            return email
        time.sleep(0.1)
    raise AssertionError(f"{email_id} never reached last_event in {events}")


def main():
    params = {
        "from": FROM,
        "to": ["sdk@example.com"],
        "subject": "Hello from the Resend SDK",
        "html": "<p>html <img src='cid:logo'></p>",
        "text": "text",
        "headers": {"X-Sdk": "python"},
        "tags": [{"name": "source", "value": "sdk"}],
        "attachments": [
            {"filename": "note.txt", "content": base64.b64encode(b"attached").decode()},
            {"filename": "logo.png", "content": list(b"\x89PNG"), "content_id": "logo"},
        ],
    }
    sent = resend.Emails.send(params, {"idempotency_key": "sdk-welcome-1"})
    check(isinstance(sent["id"], str) and len(sent["id"]) == 36, "send returns an id")
    again = resend.Emails.send(params, {"idempotency_key": "sdk-welcome-1"})
    check(again["id"] == sent["id"], "the same idempotency key returns the same id")

    # Accepted, and possibly delivered to the sink already.
    email = wait_for_event(sent["id"], ("sent", "delivered"))
    check(email["object"] == "email" and email["subject"] == params["subject"], "get returns the email object")
    check(email["to"] == ["sdk@example.com"], "to is a list")
    check(email["tags"] == [{"name": "source", "value": "sdk"}], "tags are kept")

    batch = resend.Batch.send(
        [
            {"from": FROM, "to": "b1@example.com", "subject": "batch 1", "text": "1"},
            {"from": FROM, "to": "b2@example.com", "subject": "batch 2", "text": "2"},
        ]
    )
    check(len(batch["data"]) == 2, "a strict batch returns two ids")
    try:
        resend.Batch.send(
            [
                {"from": FROM, "to": "ok@example.com", "subject": "fine", "text": "1"},
                {"from": FROM, "to": "not-an-address", "subject": "broken", "text": "2"},
            ]
        )
        raise AssertionError("a strict batch with an invalid item must fail")
    except ValidationError as e:
        check(e.code == 422 and "item 1" in e.message, "strict batch failure is a ValidationError naming the index")
    permissive = resend.Batch.send(
        [
            {"from": FROM, "to": "ok@example.com", "subject": "fine", "text": "1"},
            {"from": FROM, "to": "not-an-address", "subject": "broken", "text": "2"},
        ],
        {"batch_validation": "permissive"},
    )
    check(len(permissive["data"]) == 1, "a permissive batch accepts the valid item")
    check(permissive["errors"][0]["index"] == 1, "and names the invalid one")

    scheduled = resend.Emails.send(
        {"from": FROM, "to": "later@example.com", "subject": "later", "text": "x", "scheduled_at": "in 1 hour"}
    )
    check(resend.Emails.get(scheduled["id"])["last_event"] == "scheduled", "a scheduled email reads as scheduled")
    updated = resend.Emails.update({"id": scheduled["id"], "scheduled_at": "2099-01-01T00:00:00Z"})
    check(updated["object"] == "email" and updated["id"] == scheduled["id"], "update reschedules")
    check(resend.Emails.get(scheduled["id"])["scheduled_at"].startswith("2099-01-01"), "the new time is stored")
    cancelled = resend.Emails.cancel(scheduled["id"])
    check(cancelled["id"] == scheduled["id"], "cancel answers the email id")
    check(resend.Emails.get(scheduled["id"])["last_event"] == "canceled", "a cancelled email reads as canceled")

    listed = resend.Emails.list({"limit": 2})
    check(listed["object"] == "list" and len(listed["data"]) == 2 and listed["has_more"], "list pages")
    older = resend.Emails.list({"limit": 100, "after": listed["data"][1]["id"]})
    check(all(e["id"] not in [d["id"] for d in listed["data"]] for e in older["data"]), "after pages on")

    try:
        resend.Emails.send({"from": FROM, "to": "nobody", "subject": "x", "text": "y"})
        raise AssertionError("an invalid address must fail")
    except ValidationError as e:
        check(e.code == 422 and e.error_type == "validation_error", "a bad address raises ValidationError")

    resend.api_key = "mq_not_a_key"
    try:
        resend.Emails.get(sent["id"])
        raise AssertionError("a wrong key must fail")
    except InvalidApiKeyError as e:
        check(e.code == 403, "a wrong key raises InvalidApiKeyError")

    print("all Resend SDK checks passed")


if __name__ == "__main__":
    main()
