"""Django's ASGI handler (``mysite.asgi:application``): a view's exception reaches the JSON log as under WSGI."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import LiveServer
from realapp import DEADLINE, edit, get, make_django_project, user_env
from test_django_devmode import URLS, request_record

VIEWS = '''
from django.http import HttpResponse


def index(request):
    return HttpResponse("catalog index one")


def broken(request):
    shelf = "third shelf"
    raise ValueError(f"no book on the {shelf}")
'''


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "no-debug"])
def test_a_django_asgi_view_that_raises_keeps_djangos_page_and_reaches_the_log(tmp_path: Path, debug: bool) -> None:
    project = make_django_project(tmp_path, "mysite", "catalog", {"catalog/views.py": VIEWS, "catalog/urls.py": URLS})
    if not debug:
        edit(project / "mysite/settings.py", "DEBUG = True", "DEBUG = False")
        edit(project / "mysite/settings.py", "ALLOWED_HOSTS = []", "ALLOWED_HOSTS = ['127.0.0.1']")
    server = LiveServer(["--workers", "2", "--log-format", "json", "mysite.asgi:application"], project,
                        user_env()).start(timeout=DEADLINE)
    try:
        status, _, body = get(server, "/catalog/")
        assert (status, body) == (200, "catalog index one")
        status, _, body = get(server, "/catalog/broken/")
        assert status == 500
        # Django's own page stays: the technical one with DEBUG, its plain one without.
        assert ("ValueError at /catalog/broken/" in body) is debug
        record = request_record(server, "/catalog/broken/")
        assert "no book on the third shelf" in record["traceback"]
        report = record["error_report"]
        assert report["exception"] == "ValueError: no book on the third shelf"
        raising = report["frames"][-1]
        assert raising["filename"].endswith("catalog/views.py") and raising["function"] == "broken"
        assert ["shelf", "'third shelf'"] in raising["locals"]
    finally:
        server.stop()
