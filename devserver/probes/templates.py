"""Template hooks: Jinja2's Template.render (Flask renders through it) and Django's template engine."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from devserver.ipc.events import TemplateRecord
from devserver.probes import rounded_ms
from devserver.probes.patching import replace
from devserver.probes.recorder import Recorder, current
from devserver.probes.source import app_frame


def _rendered(recorder: Recorder, name: str, started: float, engine: str) -> None:
    recorder.template(TemplateRecord(name, rounded_ms((time.perf_counter() - started) * 1000),
                                     rounded_ms(recorder.since(started)), engine, app_frame(3)))


def install_jinja2() -> None:
    import jinja2

    # The originals as they are called here: a template's context passed through as given.
    render: Callable[..., str] = jinja2.Template.render
    render_async: Callable[..., Awaitable[str]] = jinja2.Template.render_async

    def recording_render(self: jinja2.Template, *args: object, **kwargs: object) -> str:
        recorder = current()
        if recorder is None:
            return render(self, *args, **kwargs)
        started = time.perf_counter()
        try:
            return render(self, *args, **kwargs)
        finally:
            _rendered(recorder, self.name or "<string>", started, "jinja2")

    async def recording_render_async(self: jinja2.Template, *args: object, **kwargs: object) -> str:
        recorder = current()
        if recorder is None:
            return await render_async(self, *args, **kwargs)
        started = time.perf_counter()
        try:
            return await render_async(self, *args, **kwargs)
        finally:
            _rendered(recorder, self.name or "<string>", started, "jinja2")

    replace(jinja2.Template, "render", recording_render)
    replace(jinja2.Template, "render_async", recording_render_async)


class _DjangoTemplate(Protocol):
    """What is read of django.template.base.Template (Django is untyped here)."""

    name: str | None
    origin: object  # its template_name, when it has one


def install_django_templates() -> None:
    """django.template.base.Template.render: every template rendered, included ones too (the test signal's calls)."""
    from django.template.base import Template

    render: Callable[[_DjangoTemplate, object], str] = Template.render  # a SafeString

    def recording_render(self: _DjangoTemplate, context: object) -> str:
        recorder = current()
        if recorder is None:
            return render(self, context)
        started = time.perf_counter()
        try:
            return render(self, context)
        finally:
            _rendered(recorder, str(self.name or getattr(self.origin, "template_name", None) or "<string>"), started,
                      "django")

    replace(Template, "render", recording_render)
