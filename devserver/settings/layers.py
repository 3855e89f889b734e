"""The layers, in rising order: defaults < ``[tool.devserver]`` in pyproject.toml < ``DEVSERVER_*`` < the command line.

:func:`resolve` parses the command line with the parser as it is (its
errors are argparse's one line), learns which options it gave (a second
parse with every default suppressed), and fills each other setting from the
environment, else the pyproject table, else its default.  Every layer is
checked, even one a higher layer overrides: a bad value is a mistake in
that file or variable all the same.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from devserver.kit import interpreter
from devserver.settings.environ import values_for
from devserver.settings.options import BadValue, Option, options_of
from devserver.settings.pyproject import FILE, WHERE, ConfigError, read_table

DEFAULT = "default"
COMMAND_LINE = "command line"


class Resolved(NamedTuple):
    """The arguments with every layer applied, and where each setting's value came from."""

    args: argparse.Namespace
    options: tuple[Option, ...]
    sources: Mapping[str, str]  # dest -> "default", "pyproject.toml", "DEVSERVER_X" or "command line"


def given_on_command_line(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Only what the command line gave (a repeatable option without its default list in front)."""
    saved = [(action, action.default) for action in interpreter.parser_actions(parser)]
    try:
        for action, _ in saved:
            action.default = argparse.SUPPRESS
        return parser.parse_args(argv)
    finally:
        for action, default in saved:
            action.default = default


def _table_values(options: tuple[Option, ...], table: Mapping[str, object]) -> dict[str, object]:
    """dest -> value for each key of the table; '_' is read as '-'; an unknown key is an error."""
    by_key = {option.key: option for option in options}
    values: dict[str, object] = {}
    for raw, value in table.items():
        key = raw.replace("_", "-")
        option = by_key.get(key)
        if option is None:
            import difflib  # here: only a mistake pays for it

            near = difflib.get_close_matches(key.removeprefix("no-"), list(by_key), 1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise ConfigError(f"{WHERE}: unknown key {raw!r}{hint}")
        try:
            values[option.dest] = option.from_toml(value)
        except BadValue as exc:
            raise ConfigError(f"{WHERE} {raw}: {exc}") from None
    return values


def _environment_values(options: tuple[Option, ...], environ: Mapping[str, str]) -> dict[str, tuple[str, object]]:
    by_dest = {option.dest: option for option in options}
    values: dict[str, tuple[str, object]] = {}
    for dest, (variable, text) in values_for(options, environ).items():
        try:
            values[dest] = variable, by_dest[dest].from_text(text)
        except BadValue as exc:
            raise ConfigError(f"{variable}: {exc}") from None
    return values


def resolve(parser: argparse.ArgumentParser, argv: Sequence[str] | None, environ: Mapping[str, str],
            folder: str) -> Resolved:
    """The settings for this run; raises ConfigError (one line) for a bad file or variable."""
    args = parser.parse_args(argv)
    given = vars(given_on_command_line(parser, argv))
    options = options_of(parser)
    table = _table_values(options, read_table(folder))
    environment = _environment_values(options, environ)
    sources: dict[str, str] = {}
    for option in options:
        if option.dest in given:
            setattr(args, option.dest, given[option.dest])  # a list as given, not appended to the default
            sources[option.dest] = COMMAND_LINE
        elif option.dest in environment:
            sources[option.dest], value = environment[option.dest]
            setattr(args, option.dest, value)
        elif option.dest in table:
            setattr(args, option.dest, table[option.dest])
            sources[option.dest] = FILE
        else:
            sources[option.dest] = DEFAULT
    return Resolved(args, options, sources)
