"""Server settings shared by the supervisor and its workers (picklable)."""

from __future__ import annotations

import os

from devserver.ipc.defaults import DEFAULT_BACKLOG, DEFAULT_HOST, DEFAULT_PORT
from devserver.kit.frozen import record


@record
class Config:
    """Everything a worker needs to serve; paths are absolute."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    root: str = "html_page"
    dynamic: str = "dynamic"
    app: str | None = None  # "module:callable" looked up in ``dynamic``, or a project APP (see app_dir)
    app_dir: str | None = None  # set: APP is a project app (appspec.py) imported from this folder
    reload_include: tuple[str, ...] = ()  # globs of project files whose change reloads the app
    reload_exclude: tuple[str, ...] = ()  # globs of project files that never do
    reload_strategy: str = "auto"  # "auto" (in place unless it cannot be correct) or "restart"
    lifespan: str = "auto"  # ASGI lifespan: "auto" (unless the app lacks it), "on" or "off" (handlers/lifespan.py)
    preload: tuple[str, ...] = ()  # third-party modules the app imports: preloaded in the warm template
    workers: int = 2
    threads: int = 32  # WSGI calls in flight per worker
    tui: bool = True
    # Request events carry the request's and response's headers and the lines the app wrote while serving it:
    # the dashboard and JSON lines show them; the text console shows neither and turns this off.
    request_detail: bool = True
    # Workers record what each request did inside the app (SQL, outbound calls, templates: devserver.probes) for
    # the dashboard and JSON lines; the plain console turns it off unless asked, so that nobody pays for it unseen.
    record_inside: bool = True
    reload: bool = True
    livereload: bool = True
    log_format: str = "text"
    max_body: int = 100 * 1024 * 1024
    max_request_line: int = 8 * 1024
    max_header_bytes: int = 64 * 1024
    max_header_count: int = 100
    header_timeout: float = 10.0
    keepalive_timeout: float = 15.0
    shutdown_timeout: float = 5.0
    queue_size: int = 10_000
    backlog: int = DEFAULT_BACKLOG
    log_rows: int = 10_000
    export_dir: str = ""  # where the dashboard saves copied commands and HAR files ("": the user's data folder)
    capture_dir: str = ""  # where workers record bodies for the dashboard ("": not recorded)
    body_cap: int = 1024 * 1024  # bytes kept of each request and response body
    body_store: int = 64 * 1024 * 1024  # bytes of recorded bodies kept in all, oldest dropped first
    allowed_hosts: tuple[str, ...] = ()  # Host names answered besides the loopback ones ("*": any)
    env_files: tuple[str, ...] = ()  # .env files applied to the environment (settings/envfile.py): watched
    # TLS (--https, or --ssl-certfile/--ssl-keyfile): the files each worker loads; "" serves plain HTTP.
    tls_certfile: str = ""
    tls_keyfile: str = ""
    tls_cafile: str = ""  # the CA a client should trust (devserver's own, with --https); "": not known
    notices: tuple[str, ...] = ()  # one-line notes shown with "listening" (e.g. which folders are served)

    def resolved(self) -> Config:
        """Return a copy whose folders are absolute, real paths."""
        from dataclasses import replace

        return replace(self, root=os.path.realpath(self.root), dynamic=os.path.realpath(self.dynamic))

    @property
    def secure(self) -> bool:
        """Served over TLS: URLs are https://, apps see the https (wss) scheme."""
        return bool(self.tls_certfile)

    @property
    def scheme(self) -> str:
        return "https" if self.secure else "http"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/"
