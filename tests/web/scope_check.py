"""Schemathesis hooks (SCHEMATHESIS_HOOKS=scope_check): a check that a scoped user's API
answers leak nothing outside its scope. Loaded by tests/web/fuzz.sh for each user.

Issue 13's rule for the `domain` role: a user sees the messages whose sender or any
recipient is in its domains, and of those only the recipient rows that are in scope
(the row's recipient or original recipient in a domain, or the message's sender).
The check applies it twice, independently of pftrack's SQL:

1. Row rule: every JSON object with a `recipient` is a recipient row; it must be in
   scope by its own recipient / orig_recipient or by the sender of the object (or of
   the nearest enclosing object that has one, for a message's recipients).
2. Address oracle: every string in the answer that is a whole e-mail address (outside
   Message-ID fields) must be in PFTRACK_FUZZ_VISIBLE_ADDRESSES, the file of the
   addresses the user may see, computed by the test straight from the tables with the
   same rule (tests/web_e2e.rs).

Environment: PFTRACK_FUZZ_SCOPE_DOMAINS (comma-separated; empty or unset: no check,
the admin run), PFTRACK_FUZZ_VISIBLE_ADDRESSES (a file, one lower-case address a line).
"""

import csv
import io
import json
import os
import re

import schemathesis

ADDRESS = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+$")
# Fields holding Message-IDs (they look like addresses but are none).
NOT_ADDRESS_KEYS = {"message_id", "id"}


def _domains():
    raw = os.environ.get("PFTRACK_FUZZ_SCOPE_DOMAINS", "")
    return {d.strip().lower() for d in raw.split(",") if d.strip()}


def _visible():
    path = os.environ.get("PFTRACK_FUZZ_VISIBLE_ADDRESSES")
    if not path:
        return None
    with open(path, encoding="utf-8") as f:
        return {line.strip() for line in f if line.strip()}


DOMAINS = _domains()
VISIBLE = _visible()


def domain_of(address):
    if not isinstance(address, str) or "@" not in address:
        return None
    return address.rsplit("@", 1)[1].lower()


def in_scope(address):
    return domain_of(address) in DOMAINS


def leaks(value, seen, sender=None, path="$"):
    """Every leak in a decoded JSON answer, as readable strings; `seen` collects the
    recipient rows inspected (so a run that never saw one can be told apart)."""
    found = []
    if isinstance(value, dict):
        if isinstance(value.get("sender"), str):
            sender = value["sender"]
        if isinstance(value.get("recipient"), str):
            row = [value.get("recipient"), value.get("orig_recipient"), sender]
            seen.add(tuple(str(a) for a in row))
            if not any(in_scope(a) for a in row):
                found.append(
                    f"{path}: recipient row out of scope (recipient {value.get('recipient')!r}, "
                    f"orig_recipient {value.get('orig_recipient')!r}, sender {sender!r})"
                )
        for k, v in value.items():
            if k in NOT_ADDRESS_KEYS and isinstance(v, str):
                continue
            found += leaks(v, seen, sender, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += leaks(v, seen, sender, f"{path}[{i}]")
    elif isinstance(value, str) and VISIBLE is not None and ADDRESS.match(value):
        if value.lower() not in VISIBLE:
            found.append(f"{path}: address {value!r} is not visible to this user")
    return found


def _csv_leaks(text, seen):
    """CSV export: every address-shaped cell must be visible, and every row in scope."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    found = []
    for n, row in enumerate(rows[1:], start=2):
        record = dict(zip(header, row))
        if "recipient" in record:
            trio = (record.get("recipient"), record.get("orig_recipient"), record.get("sender"))
            seen.add(tuple(str(a) for a in trio))
            if not any(in_scope(a) for a in trio):
                found.append(f"CSV line {n}: recipient row out of scope {trio}")
        for k, cell in record.items():
            if k in NOT_ADDRESS_KEYS:
                continue
            if VISIBLE is not None and ADDRESS.match(cell or "") and cell.lower() not in VISIBLE:
                found.append(f"CSV line {n}: address {cell!r} is not visible to this user")
    return found


def _header(response, name):
    value = response.headers.get(name, [""])
    return value[0] if isinstance(value, list) and value else (value or "")


@schemathesis.check
class scope_no_leak:  # noqa: N801 (the check's name on the command line)
    """A scoped user's answers name only what its scope covers; and the run must have
    inspected recipient rows, or the check proved nothing."""

    def __init__(self):
        self.rows_seen = set()

    def after_response(self, ctx, response, case):
        if not DOMAINS or response.status_code >= 300:
            return None
        content_type = _header(response, "content-type")
        if "csv" in content_type:
            found = _csv_leaks(response.text, self.rows_seen)
        elif "json" in content_type:
            try:
                body = json.loads(response.text)
            except ValueError:
                return None  # not JSON: the schema checks report it
            found = leaks(body, self.rows_seen)
        else:
            return None
        if found:
            raise AssertionError("scope leak: " + "; ".join(found[:5]))
        return None

    def after_run(self, ctx):
        if DOMAINS and not self.rows_seen:
            raise AssertionError(
                "the scope check saw no recipient row in any answer: the fuzzing never "
                "reached data, so it proved nothing about scopes"
            )
        if DOMAINS:
            print(f"scope_no_leak: {len(self.rows_seen)} distinct recipient rows inspected, no leak")
