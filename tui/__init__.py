"""Textual dashboard for devserver.

``tui`` imports ``devserver`` (events and config); ``devserver`` never imports
``tui``.  The entry point is :func:`tui.run.run_dashboard`; the app itself is
:class:`tui.app.DashboardApp`, fed from the supervisor's event thread through
its thread-safe :meth:`~tui.app.DashboardApp.feed`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Control", "DashboardApp", "run_dashboard"]


def __getattr__(name: str) -> Any:
    # Lazy: the entry point imports tui.run, which starts the server before it imports Textual.
    if name == "DashboardApp":
        from tui.app import DashboardApp

        return DashboardApp
    if name == "Control":
        from tui.control import Control

        return Control
    if name == "run_dashboard":
        from tui.run import run_dashboard

        return run_dashboard
    raise AttributeError(name)
