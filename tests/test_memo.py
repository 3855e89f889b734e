"""devserver.kit.memo.MemoTable: worked out once per key, at most ``limit`` keys kept, a failure keeps nothing."""

from __future__ import annotations

import pytest

from devserver.kit.memo import MemoTable


def test_a_value_is_computed_once_and_the_table_stays_within_its_limit() -> None:
    calls: list[str] = []

    def compute(key: str) -> str:
        calls.append(key)
        if key == "bad":
            raise ValueError(key)
        return key.upper()

    table = MemoTable(compute, 2)
    assert [table["a"], table["a"], table["b"], table["c"], table["c"]] == ["A", "A", "B", "C", "C"]
    assert calls == ["a", "b", "c", "c"]  # "c" came past the limit: computed each time, never kept
    assert dict(table) == {"a": "A", "b": "B"}
    with pytest.raises(ValueError):
        table["bad"]
    assert "bad" not in table
