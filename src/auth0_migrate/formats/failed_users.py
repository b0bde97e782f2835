"""The retry file (`--failed-users FILE`): the users a run did not carry, in a shape `run` takes back.

* Users exported from a source connection: a `--users` list, one user id a line, the reason after
  `#` on the same line (the `--users` reader ignores what follows `#`):

      auth0|abc  # held_back hashes/NO_PASSWORD_HASH: no password hash for auth0|abc in hashes.ndjson; ...

* Users of a `--from-file` run: the import shape (NDJSON, one user a line, exactly the record the
  file gave), each preceded by a `#` line with its reason (the `--from-file` reader skips `#`
  lines). Password hashes are left out unless the owner asks (`include_hashes`, `--include-hashes`):
  a file of hashes is a file to guard, and often the retry is to correct a profile field.

The file is created 0600 from its first byte, whatever the umask (it names users, and may hold hashes).
A header (`#` lines) says what the file is and how to use it; a run that carried everyone writes the
header alone.

Choices where Auth0 is silent (the tool's own format)
------------------------------------------------------
* The `--from-file` records are taken again from the input file, not from the ledger: the ledger
  keeps no hash of a user that was not imported, and the owner's own record (not the tool's
  transformed one) is what they correct and feed back.
* A reason is one line: line breaks in a message become spaces, so the reader's comment rule holds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import IO, Any, NamedTuple

import orjson

from .users_file import iter_users_file, source_key

__all__ = ["RetryUser", "write_failed_users"]

HASH_KEYS = ("password_hash", "custom_password_hash")


class RetryUser(NamedTuple):
    """A user to retry: its ledger key (`auth0|...`, or `email:...` for a file user without id) and why."""

    source_id: str
    email: str | None
    status: str
    stage: str | None
    code: str | None
    message: str | None

    @property
    def reason(self) -> str:
        where = "/".join(part for part in (self.stage, self.code) if part)
        text = f"{self.status} {where}: {self.message or ''}".strip()
        return " ".join(text.split())


def _open_private(path: str) -> IO[str]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT: made private here
    return open(fd, "w", encoding="utf-8")


def write_failed_users(path: str, users: Iterable[RetryUser], *, from_file: str | None = None,
                       include_hashes: bool = False) -> int:
    """Write the retry file; returns how many users it holds.

    `from_file`: the run's `--from-file` (its users are written in the import shape, read again from it);
    None for exported users (a `--users` list).
    """
    todo = list(users)
    with _open_private(path) as out:
        out.write(f"# auth0-migrate retry file: {len(todo)} users the run did not carry, each with its reason.\n")
        if from_file is None:
            out.write("# A --users list: run the same command with --users THIS_FILE (and a new --state) to retry.\n")
            for user in todo:
                out.write(f"{user.source_id}  # {user.reason}\n")
            return len(todo)
        hashes = "with their password hashes" if include_hashes else \
            "without password hashes (--include-hashes keeps them)"
        out.write(f"# Users of {from_file} in the import shape, {hashes}: correct them, then run with "
                  "--from-file THIS_FILE (and a new --state) to retry.\n")
        wanted = {u.source_id: u for u in todo}
        written = 0
        for item in iter_users_file(from_file):
            if not isinstance(item, tuple):
                continue  # a line that was not a user is named in the run's problems, by line
            _, record = item
            key = source_key(record)
            if key not in wanted:
                continue
            user = wanted.pop(key)
            out.write(f"# {user.reason}\n")
            out.write(orjson.dumps(_without_hashes(record) if not include_hashes else record).decode() + "\n")
            written += 1
        for user in wanted.values():  # no longer in the file (changed since the run): named, with its reason
            out.write(f"# {user.source_id} is no longer in {from_file}: {user.reason}\n")
        return written


def _without_hashes(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in HASH_KEYS}
