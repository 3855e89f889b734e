"""The servers under test: one builder per name, each returning a ServerSpec.

Every server listens on 127.0.0.1 and runs with its own defaults except
where noted; WSGI peers serve the fixture through ``fileapp:application``
(static files) or the site's own ``dynamic/hello.py`` (hello world).
"""

from __future__ import annotations

import shutil

from common import BENCH_DIR, ONE_K, ONE_M, HOST, ServerSpec, Site, nginx_config, python_argv

STATIC_PATHS = {"1k": f"/{ONE_K}", "1m": f"/{ONE_M}"}
GUNICORN_THREADS = 8
KEEP_ALIVE = 5  # seconds, for the peers that take it as an option


def _file_app_env(site: Site) -> dict[str, str]:
    return {"PYTHONPATH": str(BENCH_DIR), "BENCH_FILE_ROOT": str(site.html_page)}


def _hello_env(site: Site) -> dict[str, str]:
    return {"PYTHONPATH": str(site.dynamic)}


def devserver(site: Site, port: int, workers: int) -> ServerSpec:
    """devserver as a user runs it, console log included (to a file)."""
    return ServerSpec(
        name="devserver",
        argv=python_argv("-m", "devserver", "--no-tui", "--port", str(port), "--workers", str(workers),
                         "--root", str(site.html_page), "--dynamic", str(site.dynamic)),
        port=port, paths={**STATIC_PATHS, "hello": "/hello.py"}, ready_path=f"/{ONE_K}", cwd=site.base,
        note=f"{workers} worker processes; logs every request to its console (written to a file)",
    )


def _gunicorn(name: str, worker_class: str, app: str, env: dict[str, str], paths: dict[str, str], ready: str,
              port: int, workers: int, note: str) -> ServerSpec:
    argv = ["-m", "gunicorn", "--bind", f"{HOST}:{port}", "--workers", str(workers),
            "--worker-class", worker_class, "--keep-alive", str(KEEP_ALIVE)]
    if worker_class == "gthread":
        argv += ["--threads", str(GUNICORN_THREADS)]
    return ServerSpec(name=name, argv=python_argv(*argv, app), port=port, paths=paths, ready_path=ready,
                      env=env, note=note)


def gunicorn_sync(site: Site, port: int, workers: int) -> ServerSpec:
    return _gunicorn("gunicorn-sync", "sync", "fileapp:application", _file_app_env(site), STATIC_PATHS,
                     f"/{ONE_K}", port, workers,
                     f"-w {workers}, fileapp; the sync worker closes every connection (no keep-alive)")


def gunicorn_gthread(site: Site, port: int, workers: int) -> ServerSpec:
    return _gunicorn("gunicorn-gthread", "gthread", "fileapp:application", _file_app_env(site), STATIC_PATHS,
                     f"/{ONE_K}", port, workers, f"-w {workers} --threads {GUNICORN_THREADS}, fileapp (sendfile)")


def http_server(site: Site, port: int, workers: int) -> ServerSpec:
    return ServerSpec(
        name="http.server",
        argv=python_argv("-m", "http.server", str(port), "--bind", HOST, "--directory", str(site.html_page)),
        port=port, paths=STATIC_PATHS, ready_path=f"/{ONE_K}",
        note="single process (threading), HTTP/1.0: a new connection per request; --workers does not apply",
    )


def gunicorn_gthread_hello(site: Site, port: int, workers: int) -> ServerSpec:
    return _gunicorn("gunicorn-gthread", "gthread", "hello:application", _hello_env(site), {"hello": "/"}, "/",
                     port, workers, f"-w {workers} --threads {GUNICORN_THREADS}")


def waitress(site: Site, port: int, workers: int) -> ServerSpec:
    return ServerSpec(
        name="waitress",
        argv=python_argv("-m", "waitress", f"--listen={HOST}:{port}", "hello:application"),
        port=port, paths={"hello": "/"}, ready_path="/", env=_hello_env(site),
        note="single process, 4 threads (its default); --workers does not apply",
    )


def werkzeug(site: Site, port: int, workers: int) -> ServerSpec:
    return ServerSpec(
        name="werkzeug",
        argv=python_argv(str(BENCH_DIR / "run_werkzeug.py"), HOST, str(port), "hello:application"),
        port=port, paths={"hello": "/"}, ready_path="/", env=_hello_env(site),
        note="run_simple(threaded=True): single process, a thread per connection, HTTP/1.1 keep-alive, "
             "logs every request; --workers does not apply",
    )


def uvicorn(site: Site, port: int, workers: int) -> ServerSpec:
    return ServerSpec(
        name="uvicorn",
        argv=python_argv("-m", "uvicorn", "--interface", "wsgi", "--host", HOST, "--port", str(port),
                         "--workers", str(workers), "--timeout-keep-alive", str(KEEP_ALIVE), "hello:application"),
        port=port, paths={"hello": "/"}, ready_path="/", env=_hello_env(site),
        note=f"--interface wsgi --workers {workers}, access log on (its default)",
    )


def nginx(site: Site, port: int, workers: int) -> ServerSpec:
    conf = nginx_config(site, port, workers)
    return ServerSpec(
        name="nginx",
        argv=(shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(site.base), "-c", str(conf),
              "-e", str(site.base / "nginx-error.log")),
        port=port, paths={"1m": f"/{ONE_M}"}, ready_path=f"/{ONE_M}",
        note=f"worker_processes {workers}, sendfile on, access_log off",
    )
