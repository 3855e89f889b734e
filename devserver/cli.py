"""The ``devserver`` command line."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import TYPE_CHECKING, NamedTuple, NoReturn, cast

from devserver import __version__
from devserver.ipc.defaults import DEFAULT_BACKLOG, DEFAULT_HOST, DEFAULT_PORT

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from devserver.apps.projectfiles import ProjectCheck
    from devserver.ipc.config import Config
    from devserver.settings.layers import Resolved

# Only what parsing the command line needs is imported before the socket is bound (main); the rest (the
# config's dataclass, the project rules, APP's checks) is imported once the socket waits for requests.

APP_PATTERN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):([A-Za-z_][A-Za-z0-9_]*)\Z")
DASHBOARD_GROUP = "devserver.dashboard"
DEFAULT_ROOT = "html_page"
DEFAULT_DYNAMIC = "dynamic"
DEFAULT_ENV_FILES = (".env",)  # a missing one is no error: only a file asked for must exist
HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?\Z")


class Parser(argparse.ArgumentParser):
    """argparse, but a bad command line gets one line saying what is wrong, not the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Count:
    """A whole number option from ``low`` to ``high``; a bad one is told the range, whatever was wrong."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.__name__ = "count"  # argparse names the type in its own messages

    def __call__(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not self.low <= value <= self.high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {self.low} to {self.high}, not {text.strip()!r}")
        return value


# The bounds of the counting options: beyond these a start fails later and less clearly (a million workers
# run out of file descriptors while binding), or the dashboard holds more rows than it can draw.
COUNTS = {"workers": _Count(1, 128), "threads": _Count(1, 1024), "log_rows": _Count(1, 1_000_000)}
MAX_SECONDS = 3600


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535; 0 picks a free one)")
    return value


def _seconds(text: str) -> float:
    """A timeout: more than 0 (a deadline already passed would refuse every request) and at most an hour."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= MAX_SECONDS:  # nan fails this too
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_SECONDS} seconds, not {text.strip()!r}")
    return value


def _size(text: str) -> int:
    match = re.fullmatch(r"(\d+)\s*([kmg]?)i?b?", text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 10M, 512K, 1048576)")
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2)]


def _allowed_host(text: str) -> str:
    """A Host name to accept: ``*``, a name or an IP address (IPv6 in brackets, as in a Host header)."""
    name = text.strip().lower()
    if name == "*" or HOST_NAME.match(name):
        return name
    bare = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    import ipaddress  # here: only --allowed-host needs it

    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        pass
    else:
        return f"[{address}]" if address.version == 6 else str(address)
    if re.search(r":\d+\Z", name):
        raise argparse.ArgumentTypeError(f"{text!r}: give the name without a port (any port is accepted)")
    raise argparse.ArgumentTypeError(f"{text!r} is not a host name or an IP address")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="devserver",
        description="Serve html_page/ and the WSGI apps in dynamic/, or a WSGI or ASGI APP, with hot reload and a live dashboard.",
        epilog="Examples:  devserver  |  devserver --no-tui --port 8000  |  devserver site:app --workers 4",
    )
    parser.add_argument("app", nargs="?", metavar="APP",
                        help="a WSGI or ASGI app: pkg.module:app, pkg.module:create_app() or pkg.module (finds app, "
                             "application, create_app(), make_app()), imported from --app-dir; or name:callable "
                             "of --dynamic. It answers every path that is not a file under --root")
    parser.add_argument("--app-dir", default=".", help="folder put first on sys.path to import APP; its files are "
                                                       "watched (default: the current folder)")
    parser.add_argument("--reload-include", action="append", default=[], metavar="GLOB",
                        help="also reload APP when a project file matching GLOB changes (repeatable)")
    parser.add_argument("--reload-exclude", action="append", default=[], metavar="GLOB",
                        help="never reload APP for project files matching GLOB (repeatable)")
    parser.add_argument("--reload", choices=("auto", "restart"), default="auto", dest="reload_strategy",
                        help="auto: reload APP in place unless that cannot be correct (Django, settings), then "
                             "restart the workers warm; restart: always restart them (default %(default)s)")
    parser.add_argument("--lifespan", choices=("auto", "on", "off"), default="auto",
                        help="ASGI apps' lifespan startup and shutdown: auto (unless the app does not support it), "
                             "on (a failure is a failed startup), off (default %(default)s)")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default %(default)s; ::1 for IPv6)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port to listen on (default %(default)s)")
    parser.add_argument("--root", help=f"folder of static files (default {DEFAULT_ROOT}; without it and without "
                                       f"{DEFAULT_DYNAMIC}/, the current folder)")
    parser.add_argument("--dynamic", help=f"folder of Python apps served as /name.py (default {DEFAULT_DYNAMIC}, "
                                          "if there is one)")
    parser.add_argument("--allowed-host", action="append", default=[], type=_allowed_host, metavar="NAME",
                        help="also answer requests whose Host is NAME (repeatable; any port). Without it, only "
                             "localhost, 127.0.0.1 and [::1] (plus the bound address), which keeps web pages on "
                             "other domains from reading the site through DNS rebinding; '*' accepts any Host")
    parser.add_argument("--workers", type=COUNTS["workers"], default=2, help="worker processes, 1 to 128 (default %(default)s)")
    parser.add_argument("--threads", type=COUNTS["threads"], default=32, help="WSGI calls in flight per worker, 1 to 1024 (default %(default)s)")
    parser.add_argument("--no-tui", action="store_true", help="plain console log instead of the dashboard")
    parser.add_argument("--no-reload", action="store_true", help="do not reload dynamic modules when they change")
    parser.add_argument("--no-livereload", action="store_true", help="do not refresh open browser pages on change")
    parser.add_argument("--log-format", choices=("text", "json"), default="text", help="console log format (default %(default)s)")
    parser.add_argument("--max-body", type=_size, default="100M", help="largest request body accepted (default %(default)s)")
    parser.add_argument("--header-timeout", type=_seconds, default=10.0,
                        help="seconds a client has to send a request head before a 408, more than 0 and at most 3600 "
                             "(default %(default)s)")
    parser.add_argument("--keepalive-timeout", type=_seconds, default=15.0,
                        help="seconds an idle keep-alive connection stays open, more than 0 and at most 3600 "
                             "(default %(default)s)")
    parser.add_argument("--body-cap", type=_size, default="1M",
                        help="bytes of each request/response body the dashboard keeps, 0 for none (default %(default)s)")
    parser.add_argument("--body-store", type=_size, default="64M",
                        help="recorded bodies kept in all, oldest dropped first (default %(default)s)")
    parser.add_argument("--log-rows", type=COUNTS["log_rows"], default=10_000, help="rows the dashboard keeps, 1 to 1000000 (default %(default)s)")
    parser.add_argument("--export-dir", metavar="DIR",
                        help="folder where the dashboard saves copied requests (y, Y) and HAR files (W); created "
                             "if missing (default: $XDG_DATA_HOME/devserver/exports, else "
                             "~/.local/share/devserver/exports)")
    parser.add_argument("--env-file", action="append", default=list(DEFAULT_ENV_FILES), metavar="PATH",
                        help="load the variables of PATH into the app's environment before it is imported, never "
                             "overriding one already set; watched: an edit restarts the workers (repeatable, a later "
                             "file wins; default: .env, if there is one)")
    parser.add_argument("--no-env-file", action="store_const", const=[], dest="env_file",
                        help="load no .env file")
    parser.add_argument("--print-config", action="store_true",
                        help="print every setting, its value and where it came from (default, pyproject.toml "
                             "[tool.devserver], a DEVSERVER_* variable, the command line), then exit")
    parser.add_argument("--version", action="version", version=f"devserver {__version__} ({_build()})")
    add_https_options(parser)
    return parser


def _build() -> str:
    """Which build runs: the request path compiled by mypyc (bench/compiled.py, docs/bench/compiled.md) or pure Python."""
    from devserver.http import parser  # the first module a compiled build compiles

    return "pure Python" if parser.__file__.endswith(".py") else "request path compiled by mypyc"


def add_https_options(parser: argparse.ArgumentParser) -> None:
    https = parser.add_argument_group("HTTPS")
    https.add_argument("--https", action="store_true",
                       help="serve HTTPS with a certificate for localhost, 127.0.0.1, ::1 and every --allowed-host, "
                            "signed by a local CA kept in the user's data folder (trust it once: see --print-ca)")
    https.add_argument("--ssl-certfile", metavar="FILE", help="serve HTTPS with this PEM certificate (chain)")
    https.add_argument("--ssl-keyfile", metavar="FILE", help="the unencrypted PEM key of --ssl-certfile")
    https.add_argument("--print-ca", action="store_true",
                       help="print the path of the local CA's certificate (made if missing) and exit")


def tls_files(args: argparse.Namespace) -> tuple[str, str, str, tuple[str, ...]]:
    """The certificate, key and CA to serve with ("": plain HTTP), and the notice to show; a mistake is one line."""
    if not (args.https or args.ssl_certfile or args.ssl_keyfile):
        return "", "", "", ()  # a plain start imports nothing of TLS (not even ssl)
    from devserver.tls.choose import chosen_files, trust_notice
    from devserver.tls.context import TLSFilesError

    try:
        chosen = chosen_files(args.https, args.ssl_certfile, args.ssl_keyfile, tuple(args.allowed_host), args.host)
    except TLSFilesError as exc:
        _one_line_error(str(exc))
    certfile, keyfile, cafile = chosen or ("", "", "")
    return certfile, keyfile, cafile, trust_notice(cafile)


def config_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Config:
    """Validate the arguments; bad ones end in parser.error (one line, exit 2)."""
    from devserver.ipc.config import Config

    for option, folder in (("--root", args.root), ("--dynamic", args.dynamic)):
        if folder is not None and not os.path.isdir(folder):
            parser.error(f"{option} {folder!r} is not a folder")
    if args.export_dir is not None and (args.export_dir == "" or os.path.lexists(args.export_dir)
                                        and not os.path.isdir(args.export_dir)):
        parser.error(f"--export-dir {args.export_dir!r} is not a folder")
    env_files, notices = load_env_files(args.env_file)
    if args.app is None and args.root is None and args.dynamic is None and not os.path.isdir(DEFAULT_DYNAMIC):
        from devserver.apps.discover import discover

        found = discover(args.app_dir)
        if found is not None:  # as `fastapi dev` does: the folder's main.py (...) app, never its .py files as text
            args.app, notices = found.app, (*notices, found.notice())
    folders = choose_folders(args.root, args.dynamic)
    folders = folders._replace(notices=(*notices, *folders.notices))
    project = None
    if args.app is not None:
        if dynamic_app_name(args.app, folders.dynamic) is not None:
            check_app(args.app, folders.dynamic, parser.error)
        else:
            project = check_project_app(args.app, args.app_dir, _one_line_error)
            # A project's own files are never served as static files: only a --root asked for (or html_page/).
            folders = Folders(args.root or DEFAULT_ROOT, folders.dynamic, folders.has_dynamic, notices)
    use_tui = not args.no_tui and sys.stdout.isatty() and sys.stdin.isatty()
    certfile, keyfile, cafile, trust_notice = tls_files(args)
    return Config(
        host=args.host, port=args.port, root=folders.root, dynamic=folders.dynamic, app=args.app,
        workers=args.workers, threads=args.threads, tui=use_tui,
        record_inside=not args.no_tui or args.log_format == "json",  # the plain console asked for asks for none of it
        reload=not args.no_reload and (folders.has_dynamic or project is not None),
        livereload=not args.no_livereload, log_format=args.log_format, max_body=args.max_body,
        log_rows=args.log_rows, header_timeout=args.header_timeout, keepalive_timeout=args.keepalive_timeout,
        allowed_hosts=tuple(dict.fromkeys(args.allowed_host)), notices=folders.notices + trust_notice,
        app_dir=project.folder if project else None, preload=project.preload if project else (),
        reload_include=tuple(args.reload_include), reload_exclude=tuple(args.reload_exclude),
        reload_strategy=args.reload_strategy, lifespan=args.lifespan,
        body_cap=args.body_cap, body_store=args.body_store,
        export_dir=os.path.abspath(args.export_dir) if args.export_dir else "", env_files=env_files,
        tls_certfile=certfile, tls_keyfile=keyfile, tls_cafile=cafile,
    ).resolved()


def load_env_files(paths: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Put the .env files' variables in this process's environment (inherited by every worker) before APP is
    imported; returns their absolute paths (watched, even the default one while missing) and a notice."""
    from devserver.settings import envfile

    files = tuple(os.path.abspath(path) for path in paths)
    absent = envfile.missing(files)
    if absent is not None and tuple(paths) != DEFAULT_ENV_FILES:
        _one_line_error(f"env-file {os.path.relpath(absent)!r} is not a file")
    try:
        variables = envfile.apply(files)
    except envfile.ConfigError as exc:
        _one_line_error(str(exc))
    if not variables:
        return files, ()
    used = sum(not variable.overridden for variable in variables)
    names = ", ".join(sorted({os.path.relpath(variable.file) for variable in variables}))
    return files, (f"{names}: {used} of {len(variables)} variables set (values masked; ones already set win)",)


class Folders(NamedTuple):
    """What to serve: static files from ``root``, apps from ``dynamic`` (which may not exist)."""

    root: str
    dynamic: str
    has_dynamic: bool
    notices: tuple[str, ...] = ()


def choose_folders(root: str | None, dynamic: str | None) -> Folders:
    """The folders to serve, given --root and --dynamic (None: not given; given ones exist).

    Run in a folder without the usual layout, devserver serves what there is;
    with neither html_page/ nor dynamic/, the current folder's files, as
    ``python -m http.server`` does.
    """
    has_root = root is not None or os.path.isdir(DEFAULT_ROOT)
    has_dynamic = dynamic is not None or os.path.isdir(DEFAULT_DYNAMIC)
    root = root or DEFAULT_ROOT
    dynamic = dynamic or DEFAULT_DYNAMIC
    if has_root and has_dynamic:
        return Folders(root, dynamic, True)
    if has_root:
        return Folders(root, dynamic, False, (f"no {dynamic}/ folder here: serving the files of {root}/ only",))
    if has_dynamic:
        return Folders(root, dynamic, True, (f"no {root}/ folder here: serving the apps of {dynamic}/ only",))
    return Folders(os.curdir, dynamic, False, (
        f"no {root}/ or {dynamic}/ folder here: serving the files of this folder "
        f"({os.path.abspath(os.curdir)}), as python -m http.server does",))


def _one_line_error(message: str) -> NoReturn:
    """What is wrong with APP, on one line (no usage: the options were fine)."""
    print(f"devserver: error: {message}", file=sys.stderr)
    sys.exit(2)


def dynamic_app_name(app: str, dynamic: str) -> str | None:
    """The module of a ``name:callable`` APP served from --dynamic (the original form), else None."""
    match = APP_PATTERN.match(app)
    if match is None or not os.path.isfile(os.path.join(dynamic, match.group(1) + ".py")):
        return None
    return match.group(1)


def check_project_app(app: str, app_dir: str, fail: Callable[[str], NoReturn]) -> ProjectCheck:
    """Import APP from ``app_dir`` once, here, so that a mistake is one line before anything starts.

    The project's own modules are forgotten afterwards (workers import them
    themselves), unless the import set Django up: its app registry (in the
    supervisor, and so in every worker forked from it) then holds the
    project's models, and a worker importing them again would register each
    model twice ("Model ... was already registered").  The workers share the
    set-up modules instead, as the forks of a warm template do (warmtemplate.py).
    The third-party ones it pulled in become the warm template's preload list.
    """
    from devserver.apps import appspec, devmode
    from devserver.apps.projectfiles import ProjectCheck, ProjectFiles

    if not os.path.isdir(app_dir):
        fail(f"--app-dir {app_dir!r} is not a folder")
    folder = os.path.realpath(app_dir)
    try:
        spec = appspec.parse(app, folder)
        appspec.put_on_path(folder)
        before = set(sys.modules)
        appspec.load(spec)
    except appspec.AppLoadError as exc:
        fail(str(exc))
    rules = ProjectFiles(folder)
    keep_project = devmode.django_set_up()
    preload = []
    for name, module in list(sys.modules.items()):
        if name in before:
            continue
        file = getattr(module, "__file__", None)
        if file and rules.owns(file):
            if not keep_project:
                del sys.modules[name]
        elif name != "__main__" and not name.startswith("devserver"):
            preload.append(name)
    return ProjectCheck(folder, tuple(preload))


def check_app(app: str, dynamic: str, fail: Callable[[str], object]) -> None:
    """Fail with one line unless ``app`` names a callable in a module of ``dynamic``."""
    match = APP_PATTERN.match(app)
    if match is None:
        fail(f"APP must look like module:callable (e.g. site:app), not {app!r}")
        return
    module_name, attribute = match.groups()
    path = os.path.join(dynamic, module_name + ".py")
    if not os.path.isfile(path):
        fail(f"no module {module_name!r} in {dynamic!r} (looked for {path})")
        return
    import importlib.util  # here, not at the top: only an APP needs it, and every start waits for imports

    folder = os.path.realpath(dynamic)  # once: a realpath is a few lstat calls, and every module is checked below
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's module; report it in one line
        fail(f"cannot import {module_name!r} from {path}: {type(exc).__name__}: {exc}")
        return
    finally:
        sys.path.remove(folder)
        # Forget what the check imported: workers import it themselves, freshly.
        for name, loaded in list(sys.modules.items()):
            if (getattr(loaded, "__file__", "") or "").startswith(folder + os.sep):
                del sys.modules[name]
    if not callable(getattr(module, attribute, None)):
        fail(f"module {module_name!r} has no callable {attribute!r}")


def find_dashboard() -> Callable[[Config], int] | None:
    """The dashboard runner registered by an installed package (the ``tui`` package).

    Looked up by entry point so that devserver never imports the UI itself;
    read by :mod:`devserver.entrypoints` (about a millisecond), with
    importlib.metadata (tens of milliseconds on every start in a terminal)
    only when that finds none.
    """
    from devserver import entrypoints

    found = entrypoints.values(DASHBOARD_GROUP)
    if not found:
        from importlib.metadata import entry_points

        found = [entry.value for entry in entry_points(group=DASHBOARD_GROUP)]
    for value in found:
        try:
            return cast("Callable[[Config], int]", entrypoints.load(value))  # the registered runner
        except ImportError:
            continue
    return None


def resolve_settings(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> Resolved:
    """The command line over DEVSERVER_* over pyproject.toml's [tool.devserver] over the defaults; a bad value
    in a file or a variable is one line and exit 2."""
    from devserver.settings.layers import resolve
    from devserver.settings.pyproject import ConfigError

    try:
        return resolve(parser, argv, os.environ, os.getcwd())
    except ConfigError as exc:
        _one_line_error(str(exc))


def print_config(resolved: Resolved) -> int:
    from devserver.settings import envfile, printed

    try:
        variables = envfile.apply([os.path.abspath(path) for path in resolved.args.env_file], dict(os.environ))
    except envfile.ConfigError as exc:
        _one_line_error(str(exc))
    print("\n".join(printed.lines(resolved, variables)))
    return 0


def _requests(argv: Sequence[str]) -> int:
    from devserver.readout.client import requests_main

    return requests_main(argv)


def _mcp(argv: Sequence[str]) -> int:
    from devserver.readout.mcpserver import mcp_main

    return mcp_main(argv)


# Commands that read a running server instead of starting one: dispatched before the server's options.
SUBCOMMANDS: dict[str, Callable[[Sequence[str]], int]] = {"requests": _requests, "mcp": _mcp}


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    parser = build_parser()
    resolved = resolve_settings(parser, argv)
    args = resolved.args
    if args.print_config:
        return print_config(resolved)
    if args.print_ca:  # before binding: it serves nothing
        from devserver.tls.choose import print_ca

        print(print_ca())
        return 0
    from devserver.supervisor.listen import bind_early, release_early

    # The socket before anything slow (checking APP imports it, a framework's import takes a while): a
    # request that arrives meanwhile waits for the workers, it is not refused.
    bind_early(args.host, args.port, DEFAULT_BACKLOG, args.workers)
    try:
        config = config_from_args(args, parser)
        if config.tui:
            dashboard = find_dashboard()
            if dashboard is not None:
                return dashboard(config)
        from devserver.console.log import serve_console

        return serve_console(config)
    finally:
        release_early()


if __name__ == "__main__":
    sys.exit(main())
