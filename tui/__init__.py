"""Textual dashboard for devserver.

``tui`` imports ``devserver`` (events and config); ``devserver`` never imports
``tui``.  The entry point is :func:`tui.run.run_dashboard`; the app itself is
:class:`tui.app.DashboardApp`, fed from the supervisor's event thread through
its thread-safe :meth:`~tui.app.DashboardApp.feed`.
"""

from __future__ import annotations

from tui.app import DashboardApp
from tui.control import Control
from tui.run import run_dashboard

__all__ = ["Control", "DashboardApp", "run_dashboard"]
