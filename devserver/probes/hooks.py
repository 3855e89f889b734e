"""Which hook goes with which module, installed once that module is loaded (never before: nothing is imported here).

The worker installs what is loaded when it starts serving; a framework the app imports later (a ``/name.py``
module's first request, a view's lazy import) is hooked at the start of the next app call, which checks the
modules still missing (a dict lookup each).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

from devserver.ipc.config import Config
from devserver.probes import outbound, recorder, source, sql, templates

# module name -> its hook, in the order installed: a framework's before the driver under it.
HOOKS: dict[str, Callable[[], None]] = {
    "django.db": sql.install_django,
    "django.template.base": templates.install_django_templates,
    "sqlalchemy.engine": sql.install_sqlalchemy,
    "sqlite3": sql.install_sqlite3,
    "psycopg": sql.install_psycopg,
    "http.client": outbound.install_http_client,
    "httpx": outbound.install_httpx,
    "aiohttp": outbound.install_aiohttp,
    "jinja2": templates.install_jinja2,
}

_pending: dict[str, Callable[[], None]] = dict(HOOKS)  # each hook installed once: popped when it is
_lock = threading.Lock()


def install(config: Config) -> bool:
    """With Config.record_inside, hook what is loaded and switch recording on (the rest waits for its import);
    whether recording is on.  Off, nothing of any library is replaced."""
    if not config.record_inside:
        return False
    source.set_roots(*(root for root in (config.app_dir, config.dynamic, config.root) if root))
    catch_up()
    recorder.switch_on(catch_up)
    return True


_modules_seen = 0  # len(sys.modules) at the last look: an import adds to it, most app calls import nothing


def catch_up() -> None:
    """Install the hooks of the modules loaded since the last call."""
    global _modules_seen
    if not _pending or len(sys.modules) == _modules_seen:
        return
    _modules_seen = len(sys.modules)
    if not any(name in sys.modules for name in _pending):
        return
    with _lock:
        for name in [name for name in _pending if name in sys.modules]:
            try:
                _pending.pop(name)()
            except Exception:  # noqa: BLE001 - a version whose internals differ: that hook is left out, requests go on
                pass
