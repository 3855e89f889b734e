"""A Django project made by ``django-admin startproject`` plus a polls app, served by the real devserver command.

Django keeps its URL resolver, app registry and settings in the process, so
its changes are applied by a warm restart; the test checks the new code
answers and that no request fails or is refused meanwhile.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LiveServer
from realapp import (
    DEADLINE,
    KeepAliveLoad,
    LiveReloadStream,
    SteadyLoad,
    assert_all_fresh,
    edit,
    get,
    live_in_group,
    make_django_project,
    user_env,
    wait_for_body,
)

VIEWS = '''
from django.http import HttpResponse
from django.shortcuts import render


def index(request):
    return HttpResponse("polls index one")


def detail(request, question_id):
    return render(request, "polls/detail.html", {"question_id": question_id})
'''

URLS = '''
from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("<int:question_id>/", views.detail),
]
'''

TEMPLATE = '''<!DOCTYPE html>
<html><body><h1>Question {{ question_id }}</h1><p>detail template one</p></body></html>
'''


def make_project(root: Path, views: str = VIEWS) -> Path:
    return make_django_project(root, "mysite", "polls", {
        "polls/views.py": views, "polls/urls.py": URLS, "polls/templates/polls/detail.html": TEMPLATE})


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("djangoproject"))


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator:
    env = user_env()
    env["SLOW_MARKER"] = str(project.parent / f"{project.name}-slow-import")  # see the last test
    live = LiveServer(["--workers", "2", "mysite.wsgi:application"], project, env).start(timeout=DEADLINE)
    yield live
    live.stop()


def test_serves_the_project(server) -> None:
    assert get(server, "/polls/")[2] == "polls index one"
    status, headers, body = get(server, "/polls/7/")
    assert status == 200 and "Question 7" in body and "/__devserver__/livereload.js" in body
    assert int(headers["content-length"]) == len(body.encode())


def test_view_edit_warm_restarts_with_no_failed_or_refused_request(server, project: Path) -> None:
    mark = len(server.lines)
    with SteadyLoad(server, "/polls/") as load:
        edit(project / "polls/views.py", "polls index one", "polls index two", server)
        wait_for_body(server, "/polls/", "polls index two")
    assert_all_fresh(server, "/polls/", "polls index two")
    load.assert_clean()
    server.wait_for(r"warm restart \(Django keeps URLs, settings and apps in the process\)", start=mark)
    assert list((project / "polls/__pycache__").glob("views.*.pyc")), "bytecode writing was off"


def test_template_edit_is_served_in_place_with_no_restart(server, project: Path) -> None:
    """A template Django's loaders read: their caches are reset in every worker (as runserver does), no restart."""
    assert "detail template one" in get(server, "/polls/3/")[2]  # read by the loaders of this run's workers
    mark = len(server.lines)
    with SteadyLoad(server, "/polls/3/") as load:
        edit(project / "polls/templates/polls/detail.html", "detail template one", "detail template two", server)
        wait_for_body(server, "/polls/3/", "detail template two")
    assert_all_fresh(server, "/polls/3/", "detail template two")
    load.assert_clean()
    server.wait_for(r"reload in place \(/polls/templates/polls/detail\.html changed\): template caches cleared",
                    start=mark)
    assert not [line for line in server.lines[mark:] if "warm restart" in line]


def test_keepalive_clients_lose_no_request_across_warm_restarts_of_each_kind(server, project: Path) -> None:
    """Clients reusing their connections (as requests and browsers do) while views, templates and models are saved.

    Each warm restart retires the workers those connections are open on; a
    retired worker hands them to the new workers rather than close them, so
    no request meets a close without an answer, and the same connection is
    then answered by the new code.
    """
    views, detail = project / "polls/views.py", project / "polls/templates/polls/detail.html"
    models = project / "polls/models.py"
    with KeepAliveLoad(server, "/polls/") as index, KeepAliveLoad(server, "/polls/4/", pause=0.02) as page, \
            SteadyLoad(server, "/polls/") as fresh:
        for n in range(1, 4):
            edit(views, f"polls index {'two' if n == 1 else f'ka{n - 1}'}", f"polls index ka{n}", server)
            wait_for_body(server, "/polls/", f"polls index ka{n}")
            edit(detail, f"detail template {'two' if n == 1 else f'ka{n - 1}'}", f"detail template ka{n}", server)
            wait_for_body(server, "/polls/4/", f"detail template ka{n}")
        for n in range(1, 3):  # models.py was read by django.setup(): a new warm template each time
            mark = len(server.lines)
            models.write_text(models.read_text() + f"\n# model edit {n}\n")
            server.wait_for(r"reloaded polls\.models", timeout=DEADLINE, start=mark)
        mark = len(server.lines)
        edit(views, "polls index ka3", "polls index ka4", server)  # and one more restart after the model's
        wait_for_body(server, "/polls/", "polls index ka4")
    index.assert_clean()
    page.assert_clean()
    fresh.assert_clean()
    assert index.crossed("polls index ka3", "polls index ka4") or index.crossed("polls index ka1", "polls index ka2"), \
        f"no connection of the keep-alive client outlived a restart: {index.answers[-5:]}"
    assert sum(reused for _, reused, _ in page.answers) > len(page.answers) // 2, "the client did not keep its connection"
    server.wait_for(r"warm restart", start=mark)


def test_one_connection_making_gets_across_saves_gets_every_answer(server, project: Path) -> None:
    """One http.client connection, requests spaced out, six saves: every request answered, on the same connection."""
    views = project / "polls/views.py"
    text = "polls index ka4"
    with KeepAliveLoad(server, "/polls/", pause=0.05) as client:
        for n in range(1, 7):
            edit(views, text, f"polls index one-conn {n}", server)
            text = f"polls index one-conn {n}"
            wait_for_body(server, "/polls/", text)
            seen = len(client.answers)
            deadline = time.monotonic() + DEADLINE
            while not any(text in body for _, _, body in client.answers[seen:]):  # the client has had the new code
                assert time.monotonic() < deadline, f"the client never got {text!r}: {dict(client.outcomes)}"
                time.sleep(0.02)
    client.assert_clean()
    assert {number for number, _, _ in client.answers} == {1}, "the connection was closed by the server"


def test_browser_is_told_to_reload_only_once_the_restarted_workers_answer(server, project: Path) -> None:
    stream = LiveReloadStream(server)
    try:
        views = project / "polls/views.py"
        shown = re.search(r'"(polls index [^"]*)"', views.read_text())
        assert shown is not None
        edit(views, shown.group(1), "polls index refreshed", server)  # whatever the tests before it left
        stream.wait_app_changed()
        assert "polls index refreshed" in get(server, "/polls/")[2]
    finally:
        stream.close()


def test_urls_edit_adds_a_route(server, project: Path) -> None:
    assert get(server, "/polls/about/")[0] == 404
    edit(project / "polls/views.py", "def detail(", "def about(request):\n    return HttpResponse('about polls')\n\n\ndef detail(", server)
    edit(project / "polls/urls.py", 'path("", views.index),', 'path("", views.index),\n    path("about/", views.about),', server)
    wait_for_body(server, "/polls/about/", "about polls")
    assert_all_fresh(server, "/polls/about/", "about polls")


def test_a_model_edit_rebuilds_the_warm_template_and_is_served(server, project: Path) -> None:
    """models.py is read by django.setup(), which the warm template ran: its change needs a new template."""
    (project / "polls/models.py").write_text(
        (project / "polls/models.py").read_text() + '\nLABEL = "model label one"\n')
    edit(project / "polls/views.py", "def detail(",
         "def label(request):\n    from .models import LABEL\n    return HttpResponse(LABEL)\n\n\ndef detail(")
    edit(project / "polls/urls.py", 'path("", views.index),', 'path("", views.index),\n    path("label/", views.label),',
         server)
    wait_for_body(server, "/polls/label/", "model label one")
    mark = len(server.lines)
    with SteadyLoad(server, "/polls/label/") as load:
        edit(project / "polls/models.py", "model label one", "model label two", server)
        wait_for_body(server, "/polls/label/", "model label two")
    assert_all_fresh(server, "/polls/label/", "model label two")
    load.assert_clean()
    server.wait_for(r"reloaded polls\.models", start=mark)


SLOW_VIEWS = '''
import os
import time

from django.http import HttpResponse

TEXT = "slow page 0"
# Takes a while to import (after saying so): the edits below land while restarted workers load it.
open(os.environ["SLOW_MARKER"] + "-" + TEXT.split()[-1], "w").close()
time.sleep(1.0)


def page(request):
    return HttpResponse(TEXT)
'''


def test_edits_arriving_while_a_restart_loads_are_applied_once_with_the_last_one(server, project: Path) -> None:
    """Edits made while restarted workers load supersede them: one more restart loads the last edit; nothing fails."""
    slow = project / "polls/slowviews.py"
    slow.write_text(SLOW_VIEWS.lstrip())
    edit(project / "polls/urls.py", "from . import views", "from . import slowviews, views", server)
    edit(project / "polls/urls.py", 'path("", views.index),', 'path("", views.index),\n    path("slow/", slowviews.page),',
         server)
    wait_for_body(server, "/polls/slow/", "slow page 0")
    marker = Path(server.env["SLOW_MARKER"] + "-1")
    with SteadyLoad(server, "/polls/slow/") as load:
        mark = len(server.lines)
        edit(slow, "slow page 0", "slow page 1")
        deadline = time.monotonic() + DEADLINE
        while not marker.exists():  # a restarted worker is importing edit 1
            assert time.monotonic() < deadline, "no worker imported edit 1"
            time.sleep(0.01)
        for n in range(2, 6):
            edit(slow, f"slow page {n - 1}", f"slow page {n}")
        wait_for_body(server, "/polls/slow/", "slow page 5")
        assert_all_fresh(server, "/polls/slow/", "slow page 5")
    load.assert_clean()
    server.wait_for(r"newer changes came in while the new workers loaded", start=mark)
    served = [line for line in server.lines[mark:] if re.search(r"warm restart \(.*ready in", line)]
    assert len(served) == 1, "the workers that loaded edit 1 served, or edits 2-5 took several restarts:\n" + "\n".join(served)


# Each import of the views says so (a file named by the importing pid), then takes a while: a stop
# can be sent while a restart's new workers load them.
SLOW_IMPORT_VIEWS = VIEWS + '''
import os as _os
import time as _time

open(_os.path.join(_os.environ["IMPORT_MARKS"], str(_os.getpid())), "w").close()
_time.sleep(1.0)
'''


@pytest.fixture(scope="module")
def slow_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("djangoslow"), SLOW_IMPORT_VIEWS)


@pytest.mark.parametrize(("when", "how"), [
    ("loading", "SIGINT"), ("loading", "SIGINT to the group"), ("loading", "SIGTERM"),
    (0.05, "SIGINT"), (0.15, "SIGINT"), (0.3, "SIGINT"), (0.15, "SIGINT to the group"),
])
def test_stopping_right_after_a_save_leaves_no_process_and_nothing_listening(slow_project: Path, tmp_path: Path,
                                                                            when: float | str, how: str) -> None:
    """Ctrl-C while a save's warm restart is under way: once devserver has exited, none of its processes remains.

    The restart's new workers (loading, or about to take the socket), its
    standbys and warm templates, and old workers still draining all end
    before the supervisor does, and the port refuses connections.
    ``when``: "loading" stops once a new worker has begun importing the saved
    views (they take a second); a number is the seconds after the save (a
    stimulus: the restart is at a different step each time).
    """
    env = user_env()
    env["IMPORT_MARKS"] = str(tmp_path)
    live = LiveServer(["--workers", "2", "mysite.wsgi:application"], slow_project, env, preexec=os.setsid)
    live.start(timeout=DEADLINE)
    pgid = live.proc.pid
    try:
        assert get(live, "/polls/")[0] == 200
        imported = len(list(tmp_path.iterdir()))
        views = slow_project / "polls/views.py"
        views.write_text(views.read_text() + f"\n# saved before {how} at {when}\n")
        if when == "loading":
            deadline = time.monotonic() + DEADLINE
            while len(list(tmp_path.iterdir())) <= imported:
                assert time.monotonic() < deadline, "no new worker imported the saved views"
                time.sleep(0.01)
        else:
            time.sleep(float(when))
        if how == "SIGINT to the group":
            os.killpg(pgid, signal.SIGINT)
        else:
            live.proc.send_signal(signal.SIGTERM if how == "SIGTERM" else signal.SIGINT)
        live.proc.wait(DEADLINE)
        deadline = time.monotonic() + 10  # processes that are exiting as the supervisor returns
        while live_in_group(pgid):
            assert time.monotonic() < deadline, f"left running after devserver exited: {live_in_group(pgid)}\n" \
                + "\n".join(live.lines[-30:])
            time.sleep(0.05)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", live.port), timeout=5).close()
    finally:
        if live_in_group(pgid):
            os.killpg(pgid, signal.SIGKILL)  # the group this test started, whatever is left of it


# Each import of the views says so (a file named by the importing pid), then waits while the gate file is
# missing: the test saves files while a restart's new workers are loading them.
GATED_VIEWS = VIEWS + '''
import os as _os
import time as _time

open(_os.path.join(_os.environ["IMPORT_MARKS"], str(_os.getpid())), "w").close()
_deadline = _time.monotonic() + 60
while not _os.path.exists(_os.environ["IMPORT_GATE"]) and _time.monotonic() < _deadline:
    _time.sleep(0.01)
'''


def test_a_template_saved_while_a_restart_loads_does_not_stall_the_new_workers(tmp_path: Path) -> None:
    """A template save is applied in place (a Reload, a new generation) while a view save's new workers load.

    They started with the generation before it: the Reload must reach them
    too, or their first request waits for it for ever (``Worker.catch_up``).
    """
    project, marks, gate = tmp_path / "site", tmp_path / "marks", tmp_path / "gate"
    project.mkdir()
    make_project(project, GATED_VIEWS)
    marks.mkdir()
    gate.touch()
    env = user_env()
    env["IMPORT_MARKS"], env["IMPORT_GATE"] = str(marks), str(gate)
    live = LiveServer(["--workers", "2", "mysite.wsgi:application"], project, env).start(timeout=DEADLINE)
    try:
        assert "detail template one" in get(live, "/polls/3/")[2]  # the watcher learns it is a template
        gate.unlink()
        imported = len(list(marks.iterdir()))
        mark = len(live.lines)
        edit(project / "polls/views.py", "polls index one", "polls index two")
        deadline = time.monotonic() + DEADLINE
        while len(list(marks.iterdir())) <= imported:  # a restarted worker is importing the saved views
            assert time.monotonic() < deadline, "no new worker imported the saved views"
            time.sleep(0.01)
        edit(project / "polls/templates/polls/detail.html", "detail template one", "detail template two")
        live.wait_for(r"template caches cleared", timeout=DEADLINE, start=mark)
        gate.touch()
        live.wait_for(r"warm restart \(.*ready in", timeout=DEADLINE, start=mark)
        wait_for_body(live, "/polls/", "polls index two")
        assert_all_fresh(live, "/polls/", "polls index two")
        assert_all_fresh(live, "/polls/3/", "detail template two")
    finally:
        live.stop()
