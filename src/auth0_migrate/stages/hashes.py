"""Stage 2: join the support-ticket hash file onto the exported users, through an index on disk.

`load_hashes` streams the file into the ledger's `hashes` table (only rows of the source
connection's name; a large file parsed by worker processes, `auth0_migrate.workers`) before the
export is read; the export then joins each user on `user_id == "auth0|" + (alt_id or _id.$oid)` as
it reads it (`Ledger.hashes_for`, a piece of the export at a time), so a user's row is written once.
`join_hashes` then settles the rest in SQL: the email only as a fallback, and only when exactly
one unclaimed hash row and exactly one unmatched user share it. Both directions are reported:
users with no hash, hashes with no user. The table is emptied once the join is done, so hashes
live only on the rows of users still waiting to be imported. Each hash travels with its line's
`password_set_date`, for the transform to hold back a hash older than the user's last password change.

A user id on two or more lines (`settle_repeats`): lines with the same hash are one hash, and the
repeats are reported by line. Lines that disagree are never settled silently, since one of them
may be an old password: by default (`--duplicate-hash hold`) the user is held back,
`CONFLICTING_HASHES`, named with every line number and never with a hash; the owner may choose
`first` or `last` instead, and each such choice is reported by line.

Choices where Auth0 is silent
-----------------------------
- A line with no `passwordHash` and a line with one, for the same user id, disagree: the first may
  mean "this user has no password any more".
- `last` means the last line in the file, not the latest `password_set_date`: the file's order is
  what support gives, and a date that is missing or equal would leave the choice open again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .. import workers
from ..errors import InputError
from ..formats.hash_file import (
    LineProblem,
    hash_line_credential,
    iter_hash_piece_lines,
    plain_credential_json,
    read_hash_pieces,
)
from ..ledger import HashRepeat, Ledger, dumps
from .context import Migration


def load_hashes(migration: Migration) -> None:
    """Index the hash file's rows of the source connection in the ledger (one transaction); a large file is
    parsed by worker processes (`auth0_migrate.workers`) while this process writes."""
    ledger = migration.ledger
    path = migration.options.password_hashes
    if ledger.phase_done("hashes-loaded") or not path:
        return
    if not os.path.isfile(path):
        raise InputError(f"--password-hashes {path}: no such file")
    migration.reporter.phase("load password hashes")
    connection = migration.source_connection.name
    with ledger.tx(), ledger.indexes_deferred("hashes_email"):
        ledger.reset_hashes()
        other_connections = 0
        for piece in hash_pieces(path, connection):
            ledger.add_problems(piece.problems)
            ledger.add_hashes(piece.rows)
            other_connections += piece.other_connections
        settle_repeats(ledger, path, migration.options.duplicate_hash)
        ledger.set_meta("hash_file", {"other_connections": other_connections})
        ledger.mark_phase("hashes-loaded")


@dataclass
class HashPiece:
    """What a piece of the hash file gives: rows of the source connection (user id, email, credential JSON,
    line number, password_set_date), its lines' problems, and how many lines name another connection."""

    rows: list[tuple[str, str | None, str | None, int, str | None]]
    problems: list[tuple[str, str | None, str]]
    other_connections: int


def hash_pieces(path: str, connection: str) -> Iterator[HashPiece]:
    """`_hash_piece` of each piece of the hash file, in order: here, or by worker processes for a large file."""
    pieces = read_hash_pieces(path)
    count = workers.worker_count(path)
    if count == 0:
        return (_hash_piece(path, connection, piece, first) for first, piece in pieces)
    return workers.in_workers(f"{__name__}:hash_job", (path, connection), pieces, count)


def hash_job(path: str, connection: str) -> Callable[[bytes, int], HashPiece]:
    """A worker's job (`workers.in_workers`): `_hash_piece` of each piece."""
    return lambda piece, first: _hash_piece(path, connection, piece, first)


def _hash_piece(path: str, connection: str, piece: bytes, first: int) -> HashPiece:
    found = HashPiece([], [], 0)
    rows = found.rows
    for item in iter_hash_piece_lines(piece, first):
        if isinstance(item, LineProblem):
            whose = f" (user {item.user_id})" if item.user_id else ""
            found.problems.append(("hash-file", str(item.line_no), f"{path}, {item}{whose}"))
        elif item[3] != connection:
            found.other_connections += 1
        else:
            line_no, user_id, email, _, password_hash, plain, set_date = item
            # (the credential as `dumps` writes it: a plain one without building and encoding it)
            credential = None if password_hash is None else plain_credential_json(password_hash) if plain else\
                dumps(hash_line_credential(item))
            rows.append((user_id, email, credential, line_no, set_date))
    return found


def settle_repeats(ledger: Ledger, path: str, rule: str) -> None:
    """User ids on more than one line: the same hash is used once; different ones follow `rule`.

    `hold` keeps the user's row with no credential and lists it in `hash_held`, for `join_hashes`
    to hold the user back by name; `first` keeps the row as loaded; `last` takes the last line's.
    """
    repeats: dict[str, list[HashRepeat]] = {}
    for row in ledger.hash_repeats():
        repeats.setdefault(row.user_id, []).append(row)
    for user_id, rows in repeats.items():
        first_line = rows[0].first_line
        lines = [first_line, *(r.line_no for r in rows)]
        if all(r.credential == r.first_credential for r in rows):
            ledger.add_problems(("hash-repeat", str(r.line_no), f"{path}, line {r.line_no}: repeats line "
                                 f"{first_line} for user {user_id} (the same hash); used once") for r in rows)
            continue
        listed = ", ".join(map(str, lines[:-1])) + f" and {lines[-1]}"
        if rule == "hold":
            ledger.hold_hash(user_id, listed)
            continue
        used = rows[-1] if rule == "last" else None
        if used is not None:
            ledger.use_hash_line(user_id, used.credential, used.line_no, used.set_date)
        ledger.add_problem("hash-repeat", str(lines[-1] if used else first_line),
                           f"{path}, lines {listed} give user {user_id} different password hashes; line "
                           f"{lines[-1] if used else first_line} was used (--duplicate-hash {rule})")
    ledger.forget_hash_repeats()


def join_hashes(migration: Migration) -> None:
    """The email fallback for users the export could not join by id, and the reports both ways."""
    ledger = migration.ledger
    path = migration.options.password_hashes
    if ledger.phase_done("hashes") or not path:
        return
    migration.reporter.phase("join password hashes")
    connection = migration.source_connection.name
    other_connections = (ledger.get_meta("hash_file") or {}).get("other_connections", 0)
    with ledger.tx():
        # 0. users whose hash lines disagree: held back by name (`settle_repeats`), never given either hash
        ledger.hold_back_conflicting_hashes(
            (f"{path}, lines {held.lines} give {held.user_id} different password hashes; held back (left in the "
             "source) rather than given one that may be old. Correct the file, or choose with --duplicate-hash "
             "first|last (with a new --state: users already moved are recognised)", held.user_id)
            for held in ledger.held_hashes())
        # 1. by id, 2. by email when unambiguous on both sides
        ledger.join_hashes()
        # Rows that matched a user but carry no passwordHash: named by line, so the held-back user can be traced.
        ledger.add_problems(("hash-without-password", str(r.line_no),
                             f"{path}, line {r.line_no}: no passwordHash (user {r.user_id})")
                            for r in ledger.hash_lines_without_password())
        # Hashes with no user: reported by id and line, never with the hash.
        orphans = ledger.hashes_without_user()
        ledger.add_problems(("hash-without-user", r.user_id,
                             f"hash file line {r.line_no}: {r.user_id} is not a selected user of {connection}")
                            for r in orphans)
        ledger.set_meta("hashes", {"rows": ledger.hash_count(), "other_connections": other_connections,
                                   "without_user": len(orphans)})
        ledger.forget_hashes()
        ledger.mark_phase("hashes")

