"""Save -> fresh for template and view edits of real Flask, Django and Bottle projects served by devserver.

For each case the project is built in a temporary folder, served by the
checkout (``python -m devserver``, 2 workers, bytecode writing on), and
``--edits`` times a token in one file is rewritten; a prober polls the page
on new connections until the new token is served.  Printed per case: median
and max milliseconds from the end of the write to the end of the first fresh
answer, and the load average.

    python bench/template_reload.py [--edits 10] [--cases flask-view,flask-base,flask-leaf,django-leaf,django-base,bottle]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FLASK = {
    "shop/__init__.py": "from flask import Flask\n\n\ndef create_app():\n    app = Flask(__name__)\n"
                        "    from .views import main\n    app.register_blueprint(main)\n    return app\n",
    "shop/views.py": "from flask import Blueprint, render_template\n\nmain = Blueprint('main', __name__)\n\n\n"
                     "@main.route('/')\ndef index():\n    return render_template('index.html', token='view-0')\n",
    "shop/templates/base.html": "<!DOCTYPE html><html><head><title>base-0</title></head>"
                                "<body>{% block body %}{% endblock %}</body></html>\n",
    "shop/templates/index.html": "{% extends 'base.html' %}{% block body %}<p>leaf-0 {{ token }}</p>{% endblock %}\n",
}
DJANGO = {
    "catalog/views.py": "from django.shortcuts import render\n\n\ndef index(request):\n"
                        "    return render(request, 'catalog/index.html', {'token': 'view-0'})\n",
    "catalog/urls.py": "from django.urls import path\n\nfrom . import views\n\nurlpatterns = [path('', views.index)]\n",
    "catalog/templates/catalog/base.html": "<!DOCTYPE html><html><head><title>base-0</title></head>"
                                           "<body>{% block body %}{% endblock %}</body></html>\n",
    "catalog/templates/catalog/index.html": "{% extends 'catalog/base.html' %}{% block body %}<p>leaf-0 {{ token }}</p>"
                                            "{% endblock %}\n",
}
BOTTLE = {
    "app.py": "import bottle\n\napp = bottle.Bottle()\n\n\n@app.route('/')\ndef index():\n"
              "    return bottle.template('page', token='view-0')\n",
    "views/page.tpl": "<!DOCTYPE html><html><body><p>tpl-0 {{token}}</p></body></html>\n",
}
# case -> (project, APP, URL, file edited, token prefix)
CASES = {
    "flask-view": ("flask", "shop:create_app()", "/", "shop/views.py", "view"),
    "flask-base": ("flask", "shop:create_app()", "/", "shop/templates/base.html", "base"),
    "flask-leaf": ("flask", "shop:create_app()", "/", "shop/templates/index.html", "leaf"),
    "django-view": ("django", "locallibrary.wsgi:application", "/catalog/", "catalog/views.py", "view"),
    "django-base": ("django", "locallibrary.wsgi:application", "/catalog/", "catalog/templates/catalog/base.html",
                    "base"),
    "django-leaf": ("django", "locallibrary.wsgi:application", "/catalog/", "catalog/templates/catalog/index.html",
                    "leaf"),
    "bottle": ("bottle", "app:app", "/", "views/page.tpl", "tpl"),
}


def env() -> dict[str, str]:
    e = dict(os.environ)
    e.pop("PYTHONDONTWRITEBYTECODE", None)
    e["PYTHONPATH"] = str(REPO)
    return e


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def make(kind: str, root: Path) -> None:
    if kind == "django":
        subprocess.run([sys.executable, "-m", "django", "startproject", "locallibrary", str(root)], check=True, env=env())
        subprocess.run([sys.executable, "manage.py", "startapp", "catalog"], cwd=root, check=True, env=env())
        write(root, DJANGO)
        settings = root / "locallibrary/settings.py"
        settings.write_text(settings.read_text().replace("INSTALLED_APPS = [", "INSTALLED_APPS = [\n    'catalog',"))
        urls = root / "locallibrary/urls.py"
        urls.write_text(urls.read_text().replace("from django.urls import path", "from django.urls import include, path")
                        .replace("urlpatterns = [", "urlpatterns = [\n    path('catalog/', include('catalog.urls')),"))
    else:
        write(root, FLASK if kind == "flask" else BOTTLE)


def fetch(port: int, path: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return ""
    finally:
        conn.close()


def measure(case: str, edits: int) -> list[float]:
    kind, app, url, file, prefix = CASES[case]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        make(kind, root)
        proc = subprocess.Popen([sys.executable, "-m", "devserver", "--no-tui", "--port", "0", "--workers", "2", app],
                                cwd=root, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            port = 0
            assert proc.stdout is not None
            for line in proc.stdout:
                match = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", line)
                if match:
                    port = int(match.group(1))
                    break
            threading_drain(proc)
            deadline = time.monotonic() + 60
            while f"{prefix}-0" not in fetch(port, url):
                assert time.monotonic() < deadline, "never served"
            for _ in range(10):
                fetch(port, url)  # every worker has read its templates
            times = []
            path = root / file
            for n in range(1, edits + 1):
                text = path.read_text().replace(f"{prefix}-{n - 1}", f"{prefix}-{n}")
                path.write_text(text)
                saved = time.perf_counter()
                while f"{prefix}-{n}" not in fetch(port, url):
                    if time.perf_counter() - saved > 30:
                        raise RuntimeError(f"{case}: edit {n} never served")
                times.append((time.perf_counter() - saved) * 1000)
                time.sleep(0.3)  # settle: the watcher's message for this edit lands before the next
            return times
        finally:
            proc.terminate()
            proc.wait(20)


def threading_drain(proc: subprocess.Popen[str]) -> None:
    import threading

    threading.Thread(target=lambda: [None for _ in proc.stdout or ()], daemon=True).start()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    print(f"{'case':<12} {'median ms':>10} {'max ms':>8}   (save -> fresh over {args.edits} edits)")
    for case in args.cases.split(","):
        times = measure(case, args.edits)
        print(f"{case:<12} {statistics.median(times):>10.1f} {max(times):>8.1f}")
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
