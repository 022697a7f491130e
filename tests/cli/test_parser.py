"""The ``carewire`` parser: every group of the command table registered, ``--help`` everywhere."""

from __future__ import annotations

import argparse
import re

import pytest

from carewire.cli import COMMANDS, CommandGroup, build_parser, main
from carewire.cli.runtime import add_data_dir

#: Every top-level command, in the order ``carewire --help`` lists them.
TOP_LEVEL = [
    "init",
    "serve",
    "health",
    "migrate",
    "demo",
    "user",
    "org",
    "group",
    "directory",
    "scim",
    "dataset",
    "records",
    "token",
    "assignments",
    "rules",
    "adapter",
    "cert",
    "s2s",
    "audit",
    "keys",
    "purge",
    "coverage",
    "console",
    "mail",
    "backup",
    "restore",
]


def _sub_commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """``parser``'s sub-commands by name, in order (none for a leaf command)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _registered_by(group: CommandGroup) -> list[str]:
    """The top-level commands one group of the table registers on a parser of its own."""
    parser = argparse.ArgumentParser(prog="carewire")
    group.register(parser.add_subparsers(dest="command"), add_data_dir)
    return list(_sub_commands(parser))


def test_build_parser_registers_every_group_of_the_table() -> None:
    registered = [_registered_by(group) for group in COMMANDS]
    assert all(registered), "a command group registers no command"
    assert [name for names in registered for name in names] == TOP_LEVEL
    assert list(_sub_commands(build_parser())) == TOP_LEVEL


def test_help_lists_every_top_level_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    listed = re.findall(r"^ {4}(\S+)", capsys.readouterr().out, re.MULTILINE)
    assert listed == TOP_LEVEL


def test_every_command_has_a_handler() -> None:
    def leaves(parser: argparse.ArgumentParser, path: list[str]) -> list[list[str]]:
        subs = _sub_commands(parser)
        if not subs:
            assert callable(parser.get_default("func")), path
            return [path]
        return [leaf for name, sp in subs.items() for leaf in leaves(sp, [*path, name])]

    assert len(leaves(build_parser(), [])) >= len(TOP_LEVEL)


def test_help_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for args in (
        ["--help"],
        ["init", "--help"],
        ["serve", "--help"],
        ["user", "--help"],
        ["user", "import", "--help"],
    ):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(args)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--c2s-tls-port" in out and "login,password" in out
