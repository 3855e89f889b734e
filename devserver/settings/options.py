"""The settings, read off the command line's option table (argparse), and how a value in a file or a variable becomes one.

Every option of the parser is a setting unless it acts and exits
(``--help``, ``--version``, ``--print-*``) or picks a subcommand, so an option
added to the parser is settable in pyproject.toml and the environment with no
code here.  A setting's key is its argparse ``dest`` with ``-`` for ``_``
(``allowed-host``, ``app-dir``; ``reload-strategy`` is ``--reload``); a
``--no-x`` flag is the setting ``x``, true unless the flag is given.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NamedTuple

from devserver.kit import interpreter

TRUE = frozenset({"true", "1", "yes", "on"})
FALSE = frozenset({"false", "0", "no", "off"})


class BadValue(ValueError):
    """A value a setting does not take; the message says what was expected (the caller says where)."""


class Option(NamedTuple):
    """One setting: its key, where argparse keeps it, and how its values are read."""

    key: str  # canonical spelling: dashes
    dest: str
    kind: str  # "flag", "negated" (a --no-x flag), "list" (repeatable) or "value"
    action: argparse.Action

    @property
    def variable(self) -> str:
        return "DEVSERVER_" + self.key.replace("-", "_").upper()

    def from_toml(self, value: object) -> object:
        """The namespace value for ``value`` from TOML (raises BadValue)."""
        return FROM_TOML[self.kind](self, value)

    def from_text(self, text: str) -> object:
        """The namespace value for an environment variable's ``text`` (raises BadValue)."""
        return FROM_TEXT[self.kind](self, text)

    def shown(self, value: object) -> object:
        """The namespace value as the setting means it (a --no-x flag's value turned round)."""
        return (not value) if self.kind == "negated" else value

    def one(self, text: str) -> object:
        """One value through the option's own type and choices: the command line's checks, word for word."""
        convert: Callable[[str], object] = self.action.type or str  # type: ignore[assignment]
        try:
            value = convert(text)
        except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
            message = str(exc) if isinstance(exc, argparse.ArgumentTypeError) else f"not {text!r}"
            raise BadValue(message) from None
        choices = self.action.choices
        if choices is not None and value not in choices:
            raise BadValue(f"expected one of {', '.join(map(str, choices))}, got {text!r}")
        return value


def _bool_from_toml(value: object) -> bool:
    if not isinstance(value, bool):
        raise BadValue(f"expected true or false, got {value!r}")
    return value


def _bool_from_text(text: str) -> bool:
    word = text.strip().lower()
    if word not in TRUE | FALSE:
        raise BadValue(f"expected true or false, got {text!r}")
    return word in TRUE


def _scalar(option: Option, value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadValue(f"expected a single value, got {value!r}")
    return option.one(str(value))


def _list_from_toml(option: Option, value: object) -> list[object]:
    if not isinstance(value, list):
        raise BadValue(f"expected a list (e.g. [\"a\", \"b\"]), got {value!r}")
    return [_scalar(option, item) for item in value]


def _list_from_text(option: Option, text: str) -> list[object]:
    return [option.one(item.strip()) for item in text.split(",") if item.strip()]


FROM_TOML: dict[str, Callable[[Option, object], object]] = {
    "flag": lambda option, value: _bool_from_toml(value),
    "negated": lambda option, value: not _bool_from_toml(value),
    "list": _list_from_toml,
    "value": _scalar,
}
FROM_TEXT: dict[str, Callable[[Option, str], object]] = {
    "flag": lambda option, text: _bool_from_text(text),
    "negated": lambda option, text: not _bool_from_text(text),
    "list": _list_from_text,
    "value": lambda option, text: option.one(text),
}

# argparse's action classes -> the kind of setting (the others are not settings: they act, or only set a constant
# another option keeps, as --no-env-file does for env-file).
def _action_class(action: str) -> type[argparse.Action]:
    """The class argparse makes an ``action=`` string into (its classes have private names only)."""
    return type(argparse.ArgumentParser(add_help=False).add_argument("--x", action=action))


KINDS: dict[type[argparse.Action], str] = {
    _action_class("store_true"): "flag",
    _action_class("append"): "list",
    _action_class("store"): "value",
}


def is_setting(action: argparse.Action) -> bool:
    """False for what acts and exits (--help, --version, --print-*) and for store_const helpers."""
    long = [name for name in action.option_strings if name.startswith("--")]
    return type(action) in KINDS and not (long and long[0].startswith("--print-"))


def options_of(parser: argparse.ArgumentParser) -> tuple[Option, ...]:
    """Every setting of ``parser``, in the order of its --help."""
    found: dict[str, Option] = {}
    for action in interpreter.parser_actions(parser):
        if not is_setting(action) or action.dest in found:
            continue
        kind = KINDS[type(action)]
        name = action.dest
        if kind == "flag" and name.startswith("no_"):
            kind, name = "negated", name[3:]
        found[action.dest] = Option(name.replace("_", "-"), action.dest, kind, action)
    return tuple(found.values())
