"""Which imported modules are a folder's (devserver/ownmodules.py), in memory with modules of our making."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest

from devserver.apps.ownmodules import OwnModules


def module(name: str, file: str | None) -> types.ModuleType:
    made = types.ModuleType(name)
    if file is not None:
        made.__file__ = file
    return made


@pytest.fixture
def installed() -> Iterator[dict[str, types.ModuleType]]:
    """Modules put into sys.modules for one test, removed after it."""
    added: dict[str, types.ModuleType] = {}
    yield added
    for key in added:
        sys.modules.pop(key, None)


def test_owned_modules_are_those_whose_file_the_predicate_accepts(installed) -> None:
    installed["ownmods_page"] = sys.modules["ownmods_page"] = module("ownmods_page", "/site/dynamic/page.py")
    installed["ownmods_lib"] = sys.modules["ownmods_lib"] = module("ownmods_lib", "/usr/lib/python3/lib.py")
    installed["ownmods_builtin"] = sys.modules["ownmods_builtin"] = module("ownmods_builtin", None)
    own = OwnModules(lambda file: file.startswith("/site/dynamic/"))
    assert [key for key, _ in own.items()] == ["ownmods_page"]
    assert own.owned("ownmods_page", sys.modules["ownmods_page"])
    assert not own.owned("ownmods_lib", sys.modules["ownmods_lib"])
    assert not own.owned("missing", None)


def test_a_module_from_elsewhere_is_judged_once_and_a_new_one_under_its_key_afresh(installed) -> None:
    asked: list[str] = []

    def owns(file: str) -> bool:
        asked.append(file)
        return file.startswith("/site/dynamic/")

    installed["ownmods_site"] = sys.modules["ownmods_site"] = module("ownmods_site", "/usr/lib/python3/site.py")
    own = OwnModules(owns)
    for _ in range(3):
        assert "ownmods_site" not in dict(own.items())
    assert asked.count("/usr/lib/python3/site.py") == 1  # remembered: the walks of a reload cost a lookup each
    # The page of that name imported under the key (after the other was removed): another object, judged afresh.
    sys.modules["ownmods_site"] = module("ownmods_site", "/site/dynamic/site.py")
    assert "ownmods_site" in dict(own.items())
    # The folder's own modules are judged every time (a link among them may be pointed elsewhere).
    dict(own.items())
    assert asked.count("/site/dynamic/site.py") == 2
