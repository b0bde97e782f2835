"""`--config auth0-migrate.toml`: the flags a team repeats across rehearsal and production, in one file.

The file's keys are the command's long flags without the dashes (`target-connection = "New-DB"`,
`delete-source-users = true`; `target_connection` is read the same). Top-level keys apply to every
command that takes them; a `[plan]`, `[run]` or `[verify]` table holds keys for that command only,
and wins over the top level. A flag given on the command line wins over the file: the file's values
are put before the command line's own, and argparse keeps the last value of a flag.

    # auth0-migrate.toml
    target-connection = "New-DB"
    source-connection = "Legacy-DB"
    user-ids = "prefix"
    id-prefix = "legacy-"

    [run]
    delete-source-users = true

Secrets come only from the environment (`AUTH0_CLIENT_SECRET`, `TARGET_AUTH0_CLIENT_SECRET`): a
client secret in the file is refused, with a message that says why and never quotes the value. A
configuration file is meant to be shared (in version control, between rehearsal and production),
and a secret in it ends up wherever the file goes.

Choices where the tool's own conventions decide (no Auth0 behaviour is involved):
- Paths in the file (`password-hashes`, `from-file`, `users`, `state`...) are read like the flags they
  stand for: relative to the folder the command runs in, not to the file's folder. The file reads as
  the command line it replaces.
- A key no migration command knows is an error naming the key and the file (a typo must not silently
  drop a setting); a top-level key that another command knows but this one does not (`refresh` for
  `verify`) is skipped, so one file serves every command.
- `false` for an on/off flag leaves it off (the command line cannot turn off a flag the file turns on:
  the file should then not turn it on).
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Sequence
from typing import Any

from .errors import UsageError

#: The commands that read `--config`, and so the tables a file may have.
COMMANDS = ("plan", "run", "verify")

#: Flags whose value is a secret: refused in the file, only from the environment.
SECRET_FLAGS = {"--client-secret": "AUTH0_CLIENT_SECRET", "--target-client-secret": "TARGET_AUTH0_CLIENT_SECRET"}


def _flag_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in a.option_strings if s.startswith("--")}


def _command_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            return {name: sub for name, sub in action.choices.items() if name in COMMANDS}
    return {}


def _config_path(argv: Sequence[str]) -> str | None:
    path = None
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
    return path


def expand(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """`argv` with the `--config` file's flags put right after the command name (so the command line wins)."""
    argv = list(argv)
    path = _config_path(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if path is None or command not in COMMANDS:
        return argv
    commands = _command_parsers(parser)
    values = _read(path)
    known_anywhere = {flag for sub in commands.values() for flag in _flag_actions(sub)}
    actions = _flag_actions(commands[command])
    settings: dict[str, tuple[str, Any]] = {}
    for table, items in [(None, values), *((name, values.get(name, {})) for name in COMMANDS)]:
        if table is not None and table != command:
            continue
        for key, value in items.items():
            if table is None and key in COMMANDS:
                if not isinstance(value, dict):
                    raise UsageError(f"--config {path}: {key} must be a table ([{key}]) of that command's flags")
                continue
            flag = "--" + key.replace("_", "-")
            where = f"[{table}] {key}" if table else key
            if flag in SECRET_FLAGS:
                raise UsageError(
                    f"--config {path}: {where} is a secret, and secrets are read only from the environment: a "
                    "configuration file is shared (version control, rehearsal and production), and a secret in it "
                    f"goes wherever the file goes. Remove it from the file and set {SECRET_FLAGS[flag]} instead.")
            if flag == "--config" or flag not in known_anywhere:
                raise UsageError(f"--config {path}: unknown key {where!r} (keys are the long flags of plan, run "
                                 "and verify without the dashes, e.g. target-connection)")
            if flag not in actions:
                if table is not None:
                    raise UsageError(f"--config {path}: [{table}] {key}: `{table}` takes no {flag}")
                continue
            settings[flag] = (where, value)
    insert = [arg for flag, (where, value) in settings.items() for arg in _as_args(path, where, flag, value,
                                                                                    actions[flag])]
    at = argv.index(command) + 1
    return argv[:at] + insert + argv[at:]


def _read(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise UsageError(f"--config {path}: no such file")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--config {path}: not a TOML file: {exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--config {path}: not a TOML file (TOML is UTF-8 text)") from None


def _as_args(path: str, where: str, flag: str, value: Any, action: argparse.Action) -> list[str]:
    takes_value = action.nargs != 0
    if not takes_value:
        if not isinstance(value, bool):
            raise UsageError(f"--config {path}: {where} is an on/off flag: write {where.split()[-1]} = true or false")
        return [flag] if value else []
    if isinstance(value, bool) or isinstance(value, (dict, list)) and not isinstance(action, argparse._AppendAction):
        raise UsageError(f"--config {path}: {where} takes one value (a string or a number), as {flag} does")
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        if isinstance(item, (bool, dict, list)):
            raise UsageError(f"--config {path}: {where} takes strings or numbers, as {flag} does")
        out.append(f"{flag}={item}")  # one word: a value that starts with '-' stays a value
    return out
