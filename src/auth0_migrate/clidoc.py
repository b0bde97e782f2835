"""The command-line reference (docs/cli.md), generated from the parser's own `--help`.

`python -m auth0_migrate.clidoc > docs/cli.md` rewrites it; a test fails when the file is stale or
when a command has no help text, so the reference cannot drift from the tool.
"""

from __future__ import annotations

import argparse
import os

from .cli import build_parser


def _commands(parser: argparse.ArgumentParser, prefix: str) -> list[tuple[str, str | None, argparse.ArgumentParser]]:
    found = [(prefix, parser.description, parser)]
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                sub.description = sub.description or helps.get(name)
                found.extend(_commands(sub, f"{prefix} {name}"))
    return found


def commands() -> list[tuple[str, str | None, argparse.ArgumentParser]]:
    return _commands(build_parser(), "auth0-migrate")


def render() -> str:
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # stable wrapping, whatever the terminal
    try:
        parts = ["# auth0-migrate command-line reference", "",
                 "Generated from `--help` by `python -m auth0_migrate.clidoc > docs/cli.md`; a test keeps it current.",
                 ""]
        for name, description, parser in commands():
            parts += [f"## {name}", ""]
            if description:
                parts += [description, ""]
            parts += ["```", parser.format_help().rstrip(), "```", ""]
        return "\n".join(parts)
    finally:  # the caller's terminal width (rich and argparse read it) is the caller's
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns


if __name__ == "__main__":
    print(render(), end="")
