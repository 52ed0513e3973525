"""Every option of every command says what it does and its default (issue 20).

Walks the whole ``scorer`` command tree (the core's commands and those the packages beside it
register: replay, record, eval) and the ``python -m streams`` commands. An option fails when
it has no help text, or, unless it is required, when its help does not name its default (a
flag's default is off: "(default: off)" or any wording with "default"). A positional needs
help text only; an option hidden on purpose (help=SUPPRESS) is left alone. The failure
names the command and the option.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator

import pytest

from scorer import cli as scorer_cli
from streams import __main__ as streams_main


class _Parsed(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def _parser_of(main: Callable[[list[str]], object], argv: list[str]) -> argparse.ArgumentParser:
    """The parser a ``main(argv)`` builds, taken at its parse_args call (nothing runs)."""
    original = argparse.ArgumentParser.parse_args

    def capture(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> argparse.Namespace:
        raise _Parsed(self)

    argparse.ArgumentParser.parse_args = capture  # type: ignore[assignment,method-assign]
    try:
        main(argv)
    except _Parsed as parsed:
        return parsed.parser
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
    raise AssertionError(f"{main.__module__}.main({argv}) built no parser")


def _commands(parser: argparse.ArgumentParser, name: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _commands(sub, f"{name} {sub_name}")


def _problem(action: argparse.Action) -> str | None:
    text = action.help or ""
    if text == argparse.SUPPRESS:  # an internal option, hidden from users on purpose
        return None
    if not text.strip():
        return "no help text"
    if action.option_strings and not action.required and "default" not in text.lower():
        return f"help does not say its default ({action.default!r}): {text!r}"
    return None


ENTRY_POINTS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "scorer": scorer_cli._parser,
    "python -m streams": lambda: _parser_of(streams_main.main, []),
    "python -m streams incidents": lambda: _parser_of(streams_main.main, ["incidents"]),
    "python -m streams bench-incidents": lambda: _parser_of(streams_main.main, ["bench-incidents"]),
}


@pytest.mark.parametrize("program", sorted(ENTRY_POINTS))
def test_every_option_has_help_with_its_default(program: str) -> None:
    commands = list(_commands(ENTRY_POINTS[program](), program))
    assert commands
    problems = [
        f"{command} {'/'.join(action.option_strings) or action.dest}: {why}"
        for command, parser in commands
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
        and (why := _problem(action)) is not None
    ]
    assert not problems, f"{len(problems)} option(s) without proper help:\n" + "\n".join(problems)


def test_the_walk_finds_the_commands_of_the_packages_beside_the_core() -> None:
    names = {command for command, _ in _commands(scorer_cli._parser(), "scorer")}
    assert {"scorer models validate", "scorer rules list", "scorer bench", "scorer replay"} <= names
