"""Reading the shell commands out of the docs, and checking them against the real command-line interfaces.

A fenced block whose info string is ``sh checked`` is run by the runbook test; every other ``sh`` block
is only parsed: each ``fo-assets`` command by fo-assets' own argument parser, each ``dagster``,
``dagster-daemon`` and ``dagster-webserver`` command by Dagster's own click commands (unknown options,
missing arguments and unknown subcommands fail), without running anything.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import click

FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=indent)```", re.S | re.M)
# A command of ours where a shell command starts (a line, or after `|`, `;`, `&&`, `(`, `$(`), up to the
# next of those or the end of the line (a comment is cut first).
COMMAND = re.compile(r"(?:^|[|;&(])\s*(?P<command>(?:fo-assets|dagster-daemon|dagster-webserver|dagster)\s[^|;&)]*)")
DAGSTER_CLIS = {"dagster": "dagster._cli", "dagster-daemon": "dagster._daemon.cli",
                "dagster-webserver": "dagster_webserver.cli"}


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int
    checked: bool
    body: str


def shell_blocks(doc: Path) -> list[Block]:
    text = doc.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        info = match["info"].split()
        if info[:1] != ["sh"]:
            continue
        body = textwrap.dedent(match["indent"] + match["body"]) if match["indent"] else match["body"]
        blocks.append(Block(doc, text.count("\n", 0, match.start()) + 1, "checked" in info[1:], body))
    return blocks


def commands(block: Block) -> list[list[str]]:
    """The fo-assets and Dagster commands of a block, as argument lists (continuations joined).

    A `#` after a space starts a comment: the docs quote no `#` in a command.
    """
    found = []
    for line in block.body.replace("\\\n", " ").splitlines():
        code = re.split(r"(?:^|\s)#", line, maxsplit=1)[0]
        found += [shlex.split(match["command"]) for match in COMMAND.finditer(code)]
    return found


def parse(argv: list[str]) -> None:
    """Raise if the command's options or subcommands do not exist (nothing is executed)."""
    program, args = argv[0], argv[1:]
    if program == "fo-assets":
        from fo_assets.cli import build_parser

        try:
            build_parser().parse_args(args)
        except SystemExit as exc:
            raise AssertionError(f"fo-assets rejects {shlex.join(argv)}") from exc
        return
    command: click.Command = import_module(DAGSTER_CLIS[program]).cli
    name = program
    try:
        while True:
            context = command.make_context(name, list(args), resilient_parsing=False)
            if not isinstance(command, click.Group):
                return
            rest = [*context._protected_args, *context.args]  # what a group hands to its subcommand
            if not rest:
                return
            found, sub, args = command.resolve_command(context, rest)
            assert found and sub is not None, f"{program} has no command {rest[0]!r}"
            name, command = found, sub
    except click.ClickException as exc:
        raise AssertionError(f"{program} rejects {shlex.join(argv)}: {exc.format_message()}") from exc
