"""kit/frozen.record: a frozen slots record that behaves as ``@dataclass(frozen=True, slots=True)`` does.

Each test builds the same class both ways and holds the record to what the
dataclass does: construction with defaults and factories, equality, hash,
repr, the refusal to change, pickling and copying, ``fields``, ``replace``,
``asdict``, pattern matching.  A class a record cannot stand for is refused
at its definition.
"""

from __future__ import annotations

import copy
import pickle
from dataclasses import FrozenInstanceError, asdict, dataclass, field, fields, replace

import pytest

from devserver.ipc.control import Go, PageChanged
from devserver.ipc.events import LogEvent, ServerEvent
from devserver.kit.frozen import record


@record
class Point:
    """A record with a required field, a default and a factory."""

    x: int
    label: str = "origin"
    tags: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class PointDataclass:
    """The same fields as a dataclass."""

    x: int
    label: str = "origin"
    tags: tuple[str, ...] = field(default_factory=tuple)


@record
class Empty:
    """No fields at all, as the control messages Go, Serve and Pause."""


@record
class One:
    """One field: its values are still a tuple."""

    value: object


def test_a_record_is_made_compared_and_hashed_by_its_field_values_as_a_dataclass_is() -> None:
    made, twin = Point(1, tags=("a",)), PointDataclass(1, tags=("a",))
    assert (made.x, made.label, made.tags) == (twin.x, twin.label, twin.tags) == (1, "origin", ("a",))
    assert made == Point(1, "origin", ("a",)) and made != Point(2) and made != twin
    assert hash(made) == hash(Point(1, tags=("a",))) == hash(twin)
    assert len({Point(1), Point(1), Point(2)}) == 2
    assert Empty() == Empty() and hash(Empty()) == hash(()) and One([1]) == One([1]) and One(1) != One(2)
    assert One.__eq__(One(1), 1) is NotImplemented


def test_a_record_shows_as_the_dataclass_does() -> None:
    assert repr(Point(1, tags=("a",))) == repr(PointDataclass(1, tags=("a",))).replace("PointDataclass", "Point")
    assert repr(Empty()) == "Empty()" and repr(One("x")) == "One(value='x')"
    assert repr(LogEvent(1.0, 2, "text")) == "LogEvent(time=1.0, worker_pid=2, text='text', level='info', request_id='')"


def test_a_record_refuses_to_change_and_holds_only_its_fields() -> None:
    made = Point(1)
    with pytest.raises(FrozenInstanceError, match="cannot assign to field 'x'"):
        made.x = 2  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError, match="cannot delete field 'label'"):
        del made.label  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        made.other = 3  # type: ignore[attr-defined]
    assert Point.__slots__ == ("x", "label", "tags") and not hasattr(made, "__dict__")
    assert made == Point(1)


def test_a_record_pickles_and_copies_as_it_crosses_the_pipes() -> None:
    for made in (Point(3, "p", ("t",)), Empty(), One(("nested", Point(1))), Go(), PageChanged("css", ("a.css",)),
                 ServerEvent(1.0, "listening", "http://127.0.0.1:8000", 2, ("note",))):
        for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
            back = pickle.loads(pickle.dumps(made, protocol))
            assert back == made and type(back) is type(made)
        assert copy.copy(made) == made and copy.deepcopy(made) == made


def test_the_dataclass_helpers_and_patterns_work_on_a_record() -> None:
    made = Point(1, tags=("a",))
    assert [f.name for f in fields(made)] == ["x", "label", "tags"]
    assert replace(made, label="moved") == Point(1, "moved", ("a",))
    assert asdict(made) == asdict(PointDataclass(1, tags=("a",))) == {"x": 1, "label": "origin", "tags": ("a",)}
    assert Point.__match_args__ == ("x", "label", "tags")
    match made:
        case Point(1, "origin"):
            matched = True
        case _:
            matched = False
    assert matched


def test_a_class_a_record_cannot_stand_for_is_refused_where_it_is_defined() -> None:
    with pytest.raises(TypeError, match="field takes a default or a default_factory only"):
        @record
        class Hidden:
            shown: int
            kept: int = field(default=0, compare=False)

    with pytest.raises(TypeError, match="methods are its own"):
        @record
        class Checked:
            value: int

            def __post_init__(self) -> None:
                pass

    with pytest.raises(TypeError, match="methods are its own"):
        @record
        class Shown:
            value: int

            def __repr__(self) -> str:
                return "mine"
