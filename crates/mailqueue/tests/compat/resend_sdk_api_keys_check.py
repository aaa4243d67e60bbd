#!/usr/bin/env python3
"""Drives mailqueue's /v1/api-keys and key permissions with the official
Resend Python SDK (resend.ApiKeys.create, list and remove).

RESEND_API_URL (http://host:port/v1) and RESEND_API_KEY (a full-access key)
come from the environment. Exits non-zero on the first failed check.
"""

import os

import resend
from resend.exceptions import ResendError, ValidationError

FROM = "Acme <noreply@acme.test>"


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"ok - {what}")


def refused(call, code, error_type):
    try:
        call()
    except ResendError as e:
        return e.code == code and e.error_type == error_type
    raise AssertionError(f"expected {code} {error_type}, but the call succeeded")


def main():
    full_key = os.environ["RESEND_API_KEY"]

    created = resend.ApiKeys.create({"name": "sdk full"})
    check(len(created["id"]) == 36 and created["token"].startswith("mq_"), "create answers an id and a token")
    sending = resend.ApiKeys.create({"name": "sdk sending", "permission": "sending_access"})
    check(sending["token"] != created["token"], "a sending_access key is created")

    listed = resend.ApiKeys.list()
    check(listed["object"] == "list" and listed["has_more"] is False, "list answers a list without more pages")
    by_name = {k["name"]: k for k in listed["data"]}
    check({"sdk full", "sdk sending"} <= set(by_name), "list has both new keys")
    check(by_name["sdk full"]["id"] == created["id"], "list gives the key's id")
    check(all("token" not in k for k in listed["data"]), "list never shows a token")
    check(resend.ApiKeys.list({"limit": 1})["has_more"] is True, "list pages with limit")

    resend.api_key = sending["token"]
    sent = resend.Emails.send({"from": FROM, "to": "k@example.com", "subject": "from a sending key", "text": "x"})
    check(len(sent["id"]) == 36, "a sending_access key sends")
    check(refused(lambda: resend.Emails.get(sent["id"]), 403, "restricted_api_key"), "it cannot read an email")
    check(refused(lambda: resend.ApiKeys.list(), 403, "restricted_api_key"), "nor list keys")
    check(refused(lambda: resend.ApiKeys.remove(created["id"]), 403, "restricted_api_key"), "nor delete a key")
    resend.api_key = full_key

    removed = resend.ApiKeys.remove(created["id"])
    check(
        (removed["object"], removed["id"], removed["deleted"]) == ("api_key", created["id"], True),
        "remove answers Resend's object",
    )
    check(refused(lambda: resend.ApiKeys.remove(created["id"]), 404, "not_found"), "removing it again is 404")
    names = [k["name"] for k in resend.ApiKeys.list()["data"]]
    check("sdk full" not in names, "a removed key is no longer listed")
    resend.api_key = created["token"]
    check(refused(lambda: resend.ApiKeys.list(), 403, "invalid_api_key"), "a removed key is refused")
    resend.api_key = full_key

    try:
        resend.ApiKeys.create({"name": "bad", "permission": "admin"})
        raise AssertionError("an unknown permission must fail")
    except ValidationError as e:
        check(e.code == 422 and "permission" in e.message, "an unknown permission raises ValidationError")

    print("all Resend SDK api-keys checks passed")


if __name__ == "__main__":
    main()
