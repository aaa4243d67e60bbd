#!/usr/bin/env python3
"""Drives mailqueue's /v1/suppressions with the official Resend Python SDK
(resend.Suppressions.add, list, get, remove and batch add/remove).

RESEND_API_URL (http://host:port/v1) and RESEND_API_KEY (a full-access key)
come from the environment. Exits non-zero on the first failed check.
"""

import resend
from resend.exceptions import ResendError


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
    added = resend.Suppressions.add({"email": "gone@Example.COM"})
    check(added["object"] == "suppression" and len(added["id"]) == 36, "add answers the entry's id")
    again = resend.Suppressions.add({"email": "gone@example.com"})
    check(again["id"] == added["id"], "adding a listed address answers its entry (domain without case)")

    by_id = resend.Suppressions.get(added["id"])
    check(by_id["email"] == "gone@example.com" and by_id["origin"] == "manual", "get by id")
    check(by_id["source_id"] is None and by_id["created_at"], "the entry has Resend's fields")
    by_email = resend.Suppressions.get("gone@example.com")
    check(by_email["id"] == added["id"], "get by address")

    batch = resend.Suppressions.Batch.add({"emails": ["b1@example.com", "b2@example.com", "b1@example.com"]})
    check(len(batch["data"]) == 2, "batch add collapses duplicates")
    listed = resend.Suppressions.list({"origin": "manual", "limit": 2})
    check(listed["object"] == "list" and listed["has_more"] is True, "list pages")
    check([e["email"] for e in listed["data"]] == ["b2@example.com", "b1@example.com"] or
          [e["email"] for e in listed["data"]] == ["b1@example.com", "b2@example.com"], "newest first")
    rest = resend.Suppressions.list({"limit": 2, "after": listed["data"][-1]["id"]})
    check([e["email"] for e in rest["data"]] == ["gone@example.com"], "the next page")
    check(resend.Suppressions.list({"origin": "bounce"})["data"] == [], "filter by origin")

    removed = resend.Suppressions.remove("gone@example.com")
    check(removed["deleted"] is True and removed["id"] == added["id"], "remove by address")
    check(refused(lambda: resend.Suppressions.get(added["id"]), 404, "not_found"), "a removed entry is gone")
    check(refused(lambda: resend.Suppressions.remove("gone@example.com"), 404, "not_found"),
          "removing it again is not found")
    gone = resend.Suppressions.Batch.remove({"emails": ["b1@example.com", "never@example.com"]})
    check([e["deleted"] for e in gone["data"]] == [True], "batch remove answers what it removed")
    b2 = resend.Suppressions.get("b2@example.com")
    gone = resend.Suppressions.Batch.remove({"ids": [b2["id"]]})
    check(gone["data"][0]["id"] == b2["id"], "batch remove by id")
    check(resend.Suppressions.list()["data"] == [], "the list is empty again")

    check(refused(lambda: resend.Suppressions.add({"email": "not an address"}), 422, "validation_error"),
          "an invalid address is refused")
    too_many = [f"u{i}@example.com" for i in range(101)]
    check(refused(lambda: resend.Suppressions.Batch.add({"emails": too_many}), 422, "validation_error"),
          "more than 100 are refused")
    check(resend.Suppressions.list()["data"] == [], "nothing was stored by refused requests")
    print("all Resend SDK suppressions checks passed")


if __name__ == "__main__":
    main()
