"""worker/inline.py in memory: which WSGI routes are called on the loop, from their calls' times.

The policy is told each call's app time and whether it ran inline; these tests give it the times, so no
test here depends on how fast this machine is.
"""

from __future__ import annotations

import asyncio

import pytest

from devserver.ipc.control import ArmProfile
from devserver.kit import interpreter
from devserver.probes import profile
from devserver.worker import inline
from devserver.worker.inline import EARN, MAX_DEMOTIONS, SLOW, InlinePolicy

HOME = ("GET", "/")
FAST = SLOW / 100
A_BIT_SLOW = SLOW * 0.9  # a pool thread's time includes its waits for the GIL
APP = object()


def policy() -> InlinePolicy:
    return InlinePolicy(mode="record")


def earn(rules: InlinePolicy, times: int, key: tuple[str, str] = HOME, app: object = APP) -> None:
    for _ in range(times):
        rules.took(key, app, FAST, False)


def test_a_route_is_called_inline_once_its_last_calls_in_the_pool_were_all_under_slow() -> None:
    rules = policy()
    assert not rules.inline(HOME, APP)  # never seen: the pool
    earn(rules, EARN - 1)
    assert not rules.inline(HOME, APP)
    earn(rules, 1)
    assert rules.inline(HOME, APP)


def test_one_slow_call_in_the_pool_starts_the_count_over_one_a_little_slow_does_not() -> None:
    rules = policy()
    earn(rules, EARN - 2)
    rules.took(HOME, APP, A_BIT_SLOW, False)
    rules.took(HOME, APP, SLOW, False)
    earn(rules, EARN - 1)
    assert not rules.inline(HOME, APP)
    earn(rules, 1)
    assert rules.inline(HOME, APP)


def slow_inline_call(rules: InlinePolicy) -> None:
    assert rules.inline(HOME, APP)
    rules.took(HOME, APP, SLOW, True)


def test_an_inline_call_of_slow_or_more_sends_the_next_call_to_the_pool_as_a_check() -> None:
    rules = policy()
    earn(rules, EARN)
    rules.took(HOME, APP, A_BIT_SLOW, True)  # under SLOW: no check
    slow_inline_call(rules)
    assert not rules.inline(HOME, APP)  # the check: to the pool


def test_a_check_as_slow_sends_the_route_back_to_the_pool() -> None:
    rules = policy()
    earn(rules, EARN)
    slow_inline_call(rules)
    rules.took(HOME, APP, SLOW, False)
    assert not rules.inline(HOME, APP)
    earn(rules, EARN)  # and earning takes twice as many calls now
    assert not rules.inline(HOME, APP)
    earn(rules, EARN)
    assert rules.inline(HOME, APP)


def test_a_quick_check_puts_the_route_back_on_the_loop_the_machine_was_slow_not_the_route() -> None:
    rules = policy()
    earn(rules, EARN)
    slow_inline_call(rules)
    rules.took(HOME, APP, A_BIT_SLOW, False)
    assert rules.inline(HOME, APP)
    slow_inline_call(rules)  # as often as it happens: no return to the pool was counted
    rules.took(HOME, APP, FAST, False)
    assert rules.inline(HOME, APP) and rules.routes[HOME].demotions == 0


def test_each_return_to_the_pool_doubles_the_quick_calls_needed_and_the_last_one_is_for_good() -> None:
    rules = policy()
    for demotions in range(MAX_DEMOTIONS):
        needed = EARN << demotions
        earn(rules, needed - 1)
        assert not rules.inline(HOME, APP), demotions
        earn(rules, 1)
        slow_inline_call(rules)
        rules.took(HOME, APP, SLOW, False)  # the check
        assert not rules.inline(HOME, APP)
    earn(rules, EARN << (MAX_DEMOTIONS + 2))
    assert not rules.inline(HOME, APP)


def test_a_reloaded_app_starts_every_route_over_in_the_pool() -> None:
    rules = policy()
    earn(rules, EARN)
    reloaded = object()
    assert not rules.inline(HOME, reloaded)
    earn(rules, EARN - 1, app=reloaded)
    assert not rules.inline(HOME, reloaded)
    earn(rules, 1, app=reloaded)
    assert rules.inline(HOME, reloaded)
    assert not rules.inline(HOME, APP)  # the old object's record is gone with it


def test_a_route_is_its_method_and_path() -> None:
    rules = policy()
    earn(rules, EARN)
    assert rules.inline(HOME, APP)
    assert not rules.inline(("POST", "/"), APP)
    assert not rules.inline(("GET", "/other"), APP)


def test_while_a_profile_is_armed_every_call_goes_to_the_pool() -> None:
    rules = policy()
    earn(rules, EARN)
    profile.arm(ArmProfile("GET /elsewhere"))
    try:
        assert not rules.inline(HOME, APP)
    finally:
        profile.arm(ArmProfile(None))
    assert rules.inline(HOME, APP)


def test_the_table_starts_over_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inline, "MAX_ROUTES", 3)
    rules = policy()
    earn(rules, EARN)
    for path in ("/a", "/b", "/c"):
        earn(rules, 1, ("GET", path))
    assert len(rules.routes) <= 3
    assert not rules.inline(HOME, APP)


@pytest.mark.parametrize(("value", "mode"), [("", "record"), ("1", "record"), ("0", "off"), ("always", "always")])
def test_devserver_inline_sets_the_mode(monkeypatch: pytest.MonkeyPatch, value: str, mode: str) -> None:
    monkeypatch.setenv("DEVSERVER_INLINE", value)
    assert InlinePolicy().mode == mode


def test_off_no_route_is_ever_inline_and_always_every_one_is() -> None:
    off = InlinePolicy(mode="off")
    earn(off, EARN * 4)
    assert not off.inline(HOME, APP)
    assert InlinePolicy(mode="always").inline(HOME, APP)


def test_where_the_running_loop_cannot_be_hidden_every_call_stays_in_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interpreter, "hides_running_loop", lambda: False)
    monkeypatch.setenv("DEVSERVER_INLINE", "always")
    rules = InlinePolicy()
    assert rules.mode == "off"
    earn(rules, EARN)
    assert not rules.inline(HOME, APP)


def test_one_call_per_turn_of_the_loop_runs_inline_the_others_of_that_turn_go_to_the_pool() -> None:
    async def turns() -> list[bool]:
        rules = InlinePolicy(asyncio.get_running_loop(), mode="record")
        earn(rules, EARN)
        first_turn = [rules.inline(HOME, APP) for _ in range(3)]
        await asyncio.sleep(0)  # the next turn
        return [*first_turn, rules.inline(HOME, APP)]

    assert asyncio.run(turns()) == [True, False, False, True]


def test_no_call_runs_inline_while_a_call_of_the_pool_is_in_flight() -> None:
    rules = policy()
    earn(rules, EARN)
    rules.in_pool = 1  # another request is being answered: the pool's batches are cheaper than the loop
    assert not rules.inline(HOME, APP)
    rules.in_pool = 0
    assert rules.inline(HOME, APP)
