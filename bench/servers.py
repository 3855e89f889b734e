"""The servers under test: one builder per name, each returning a ServerSpec.

Every server listens on 127.0.0.1 and runs with its own defaults except
where noted; WSGI peers serve the fixture through ``fileapp:application``
(static files) or the site's own ``dynamic/hello.py`` (hello world).
"""

from __future__ import annotations

import shutil
from dataclasses import replace

from common import BENCH_DIR, HOST, ONE_K, ONE_M, ServerSpec, Site, nginx_config, python_argv

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
        port=port, paths={**STATIC_PATHS}, ready_path=f"/{ONE_M}",
        note=f"worker_processes {workers}, sendfile on, tcp_nopush on, access_log off",
    )


# ---------------------------------------------------------------- interleaved rounds (rounds.py)
#
# Each builder serves every case it can under the same case names: "hello" (the hello-world app), "flask" (the
# Flask template app), "1k" (the 1 KiB static file).  devserver runs in two ways: with the app named as APP
# (`devserver hello:application`, which answers every path that is not a file) and as a script (`/hello.py`).


def _devserver_argv(site: Site, port: int, workers: int, app: str | None, dashboard: bool) -> tuple[str, ...]:
    args = ["-m", "devserver", *([app] if app else []), "--port", str(port), "--workers", str(workers),
            "--root", str(site.html_page), "--dynamic", str(site.dynamic)]
    return python_argv(*args, *([] if dashboard else ["--no-tui"]))


def devserver_app(site: Site, port: int, workers: int, dashboard: bool = False) -> ServerSpec:
    """``devserver hello:application``: the path users run most (files under --root win)."""
    return ServerSpec(
        name="devserver-dashboard" if dashboard else "devserver-app",
        argv=_devserver_argv(site, port, workers, "hello:application", dashboard),
        port=port, paths={"hello": "/", "1k": f"/{ONE_K}"}, ready_path="/", cwd=site.base, tty=dashboard,
        note=f"APP hello:application, {workers} workers, " +
             ("dashboard on a 160x48 pseudo-terminal" if dashboard else "console log of every request to a file"),
    )


def devserver_script(site: Site, port: int, workers: int) -> ServerSpec:
    """The same app served as the script ``/hello.py`` from --dynamic."""
    return ServerSpec(
        name="devserver-script", argv=_devserver_argv(site, port, workers, None, False),
        port=port, paths={"hello": "/hello.py", "1k": f"/{ONE_K}"}, ready_path="/hello.py", cwd=site.base,
        note=f"/hello.py from --dynamic, {workers} workers, console log of every request to a file",
    )


def devserver_flask(site: Site, port: int, workers: int) -> ServerSpec:
    return ServerSpec(
        name="devserver-flask", argv=_devserver_argv(site, port, workers, "flaskapp:app", False),
        port=port, paths={"flask": "/"}, ready_path="/", cwd=site.base,
        note=f"APP flaskapp:app, {workers} workers; live reload adds its script to the page (the default)",
    )


def devserver_app_pool(site: Site, port: int, workers: int) -> ServerSpec:
    """``devserver-app`` with every call in the thread pool (``DEVSERVER_INLINE=0``): what inline calls save."""
    return _pool_only(devserver_app(site, port, workers))


def devserver_flask_pool(site: Site, port: int, workers: int) -> ServerSpec:
    return _pool_only(devserver_flask(site, port, workers))


def _pool_only(spec: ServerSpec) -> ServerSpec:
    return replace(spec, name=f"{spec.name}-pool", env={**spec.env, "DEVSERVER_INLINE": "0"},
                   note=f"{spec.note}; DEVSERVER_INLINE=0: every WSGI call in the thread pool")


def gunicorn_gthread_app(site: Site, port: int, workers: int) -> ServerSpec:
    return _gunicorn("gunicorn-gthread", "gthread", "hello:application", _hello_env(site), {"hello": "/"}, "/",
                     port, workers, f"-w {workers} --threads {GUNICORN_THREADS}")


def gunicorn_sync_app(site: Site, port: int, workers: int) -> ServerSpec:
    return _gunicorn("gunicorn-sync", "sync", "hello:application", _hello_env(site), {"hello": "/"}, "/",
                     port, workers, f"-w {workers} sync worker (closes every connection)")


def gunicorn_gthread_flask(site: Site, port: int, workers: int) -> ServerSpec:
    return _gunicorn("gunicorn-gthread-flask", "gthread", "flaskapp:app", _hello_env(site), {"flask": "/"}, "/",
                     port, workers, f"-w {workers} --threads {GUNICORN_THREADS}")


def gunicorn_gthread_files(site: Site, port: int, workers: int) -> ServerSpec:
    return _gunicorn("gunicorn-gthread-files", "gthread", "fileapp:application", _file_app_env(site),
                     {"1k": f"/{ONE_K}"}, f"/{ONE_K}", port, workers,
                     f"-w {workers} --threads {GUNICORN_THREADS}, fileapp")


def _granian(name: str, app: str, env: dict[str, str], paths: dict[str, str], ready: str, port: int, workers: int,
             extra: tuple[str, ...] = (), note: str = "") -> ServerSpec:
    argv = python_argv("-m", "granian", "--interface", "wsgi", "--host", HOST, "--port", str(port),
                       "--workers", str(workers), *extra, app)
    return ServerSpec(name=name, argv=argv, port=port, paths=paths, ready_path=ready, env=env,
                      note=note or f"--interface wsgi --workers {workers} (Rust HTTP core), no access log")


def granian(site: Site, port: int, workers: int) -> ServerSpec:
    return _granian("granian", "hello:application", _hello_env(site), {"hello": "/"}, "/", port, workers)


def granian_flask(site: Site, port: int, workers: int) -> ServerSpec:
    return _granian("granian-flask", "flaskapp:app", _hello_env(site), {"flask": "/"}, "/", port, workers)


def granian_static(site: Site, port: int, workers: int) -> ServerSpec:
    """granian's Rust static files (mounted at /static; the app behind it never runs for them)."""
    return _granian("granian-static", "hello:application", _hello_env(site), {case: f"/static{path}" for case, path in STATIC_PATHS.items()}, "/",
                    port, workers, ("--static-path-route", "/static", "--static-path-mount", str(site.html_page)),
                    f"--workers {workers}, --static-path-mount (files served by Rust)")


def bjoern(site: Site, port: int, workers: int) -> ServerSpec:
    return ServerSpec(
        name="bjoern", argv=python_argv(str(BENCH_DIR / "run_bjoern.py"), HOST, str(port), str(workers),
                                        "hello:application"),
        port=port, paths={"hello": "/"}, ready_path="/", env=_hello_env(site),
        note=f"C server on libev; {workers} processes forked after listen (bjoern has no worker option)",
    )


def waitress_app(site: Site, port: int, workers: int) -> ServerSpec:
    return waitress(site, port, workers)


def devserver_files(site: Site, port: int, workers: int) -> ServerSpec:
    """devserver with no APP, for the static-file case."""
    return ServerSpec(
        name="devserver", argv=_devserver_argv(site, port, workers, None, False),
        port=port, paths={**STATIC_PATHS}, ready_path=f"/{ONE_K}", cwd=site.base,
        note=f"no APP, {workers} workers, console log of every request to a file",
    )


def _devserver_asgi(name: str, app: str, case: str, path: str, site: Site, port: int, workers: int) -> ServerSpec:
    return ServerSpec(
        name=name, argv=_devserver_argv(site, port, workers, app, False),
        port=port, paths={case: path}, ready_path=path, cwd=site.dynamic,
        note=f"APP {app} (ASGI), {workers} workers, console log of every request to a file",
    )


def _uvicorn_asgi(name: str, app: str, case: str, path: str, site: Site, port: int, workers: int) -> ServerSpec:
    return ServerSpec(
        name=name,
        argv=python_argv("-m", "uvicorn", "--http", "httptools", "--loop", "asyncio", "--host", HOST,
                         "--port", str(port), "--workers", str(workers), "--timeout-keep-alive", str(KEEP_ALIVE),
                         app),
        port=port, paths={case: path}, ready_path=path, env=_hello_env(site),
        note=f"--http httptools --loop asyncio (uvloop is not installed) --workers {workers}, "
             "access log on (its default)",
    )


def _granian_asgi(name: str, app: str, case: str, path: str, site: Site, port: int, workers: int) -> ServerSpec:
    return ServerSpec(
        name=name,
        argv=python_argv("-m", "granian", "--interface", "asgi", "--host", HOST, "--port", str(port),
                         "--workers", str(workers), app),
        port=port, paths={case: path}, ready_path=path, env=_hello_env(site),
        note=f"--interface asgi --workers {workers} (Rust HTTP core), no access log (its default)",
    )


def devserver_asgi(site: Site, port: int, workers: int) -> ServerSpec:
    """``devserver asgihello:app``: an ASGI app, run on each worker's loop."""
    return _devserver_asgi("devserver-asgi", "asgihello:app", "asgi", "/", site, port, workers)


def uvicorn_asgi(site: Site, port: int, workers: int) -> ServerSpec:
    return _uvicorn_asgi("uvicorn-asgi", "asgihello:app", "asgi", "/", site, port, workers)


def granian_asgi(site: Site, port: int, workers: int) -> ServerSpec:
    return _granian_asgi("granian-asgi", "asgihello:app", "asgi", "/", site, port, workers)


def devserver_fastapi(site: Site, port: int, workers: int) -> ServerSpec:
    """``devserver fastapiapp:app``: a FastAPI JSON endpoint."""
    return _devserver_asgi("devserver-fastapi", "fastapiapp:app", "fastapi", "/items", site, port, workers)


def uvicorn_fastapi(site: Site, port: int, workers: int) -> ServerSpec:
    return _uvicorn_asgi("uvicorn-fastapi", "fastapiapp:app", "fastapi", "/items", site, port, workers)


def granian_fastapi(site: Site, port: int, workers: int) -> ServerSpec:
    return _granian_asgi("granian-fastapi", "fastapiapp:app", "fastapi", "/items", site, port, workers)
