"""What answers a request: decided once, from the request alone, into a typed route.

``Router.route`` is the one place the order is written: the Host check and
``OPTIONS *`` first (the server answers those itself), then live reload's
``/__devserver__/``, then ``/name.py`` (a module of ``--dynamic``), then
static files, then the ``APP`` (when one is given, files still win: a path
that names no file under the root is the app's).  The worker runs a route
by its type (worker/process.py): on the loop at once where nothing must be
waited for, in a task where something must (an import, a sendfile, a stream).

The router only looks: it sends nothing and loads no module, so it is
tested with a request in and a route out (tests/test_routes.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from devserver.handlers import static
from devserver.handlers.static import StaticResponse
from devserver.http.hostcheck import HostPolicy
from devserver.http.parser import Request
from devserver.kit.frozen import record
from devserver.kit.memo import MemoTable

INTERNAL_PREFIX = "/__devserver__/"  # the server's own endpoints: live reload's (handlers/livereload.py takes it from here)
ALLOW = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"  # what OPTIONS * says the server takes
# ``/name.py`` or ``/name.py/rest``: a module of --dynamic, and the only URL shape that names one.
_SCRIPT = re.compile(r"/([A-Za-z_][A-Za-z0-9_]*)\.py(?=/|\Z)")


@record
class Refused:
    """The server refuses the request itself: a Host it does not answer to (DNS rebinding)."""

    status: int
    message: str


@record
class ServerOptions:
    """``OPTIONS *``: the server's own 200 with ``Allow: ALLOW``."""


@record
class Internal:
    """A request under ``/__devserver__/``, answered by the endpoint an extension installed (live reload)."""


@record
class Script:
    """``/name.py/rest``: the module ``name`` of --dynamic, mounted at ``script_name``."""

    name: str
    script_name: str  # "/name.py"
    path_info: str  # "/rest", or "" for "/name.py" itself


@record
class SendFile:
    """A static file too large to keep in memory: its head now, its bytes by sendfile (the route owns the file)."""

    response: StaticResponse


@record
class App:
    """The ``APP`` given on the command line, for the whole path."""


SERVER_OPTIONS = ServerOptions()
INTERNAL = Internal()
APP = App()

# A whole static answer (a small file, a 304, a listing, a 404 page) is its StaticResponse itself: the
# route most requests to files take costs no object of its own.
Route = Refused | ServerOptions | Internal | Script | StaticResponse | SendFile | App


def script_route(path: str) -> Script | None:
    """``/name.py/rest`` → Script("name", "/name.py", "/rest"); None if ``path`` names no module."""
    match = _SCRIPT.match(path)
    if match is None:
        return None
    return Script(match.group(1), match.group(0), path[match.end():])


# Asked on every request that passed the Host check: a path's answer (a frozen Script, or None) is kept, so a
# path seen before costs one dict look-up, not a call, a regex match and a route object.
_script_routes = MemoTable(script_route, 4096)


class Router:
    """The routing of one worker, built once its extensions are in; ``route`` is asked once per request."""

    __slots__ = ("hosts", "root", "app", "internal", "html_transform")

    def __init__(self, hosts: HostPolicy, root: str, *, app: bool, internal: bool,
                 html_transform: Callable[[bytes], bytes] | None) -> None:
        self.hosts = hosts
        self.root = root  # --root, the static files
        self.app = app  # an APP is given: paths that name no file are its
        self.internal = internal  # an endpoint answers /__devserver__/ (else those paths are files' or the APP's)
        self.html_transform = html_transform  # applied to static pages (live reload's script)

    def route(self, request: Request) -> Route:
        """What answers ``request``, in the order of the module docstring."""
        host = request.host
        if not self.hosts.allows(host):
            return Refused(403, HostPolicy.refusal(host or ""))
        path = request.path
        if path == "*":  # the parser lets the asterisk form through only for OPTIONS
            return SERVER_OPTIONS
        if self.internal and path.startswith(INTERNAL_PREFIX):
            return INTERNAL
        script = _script_routes[path]
        if script is not None:
            return script
        if self.app:
            try:
                if static.resolve(self.root, path) is None:
                    return APP
            except ValueError:  # a path no file can have (bad escape, NUL): the APP says what it means
                return APP
        response = static.serve(self.root, request.method, path, static.request_headers(request.headers),
                                html_transform=self.html_transform)
        return response if response.file is None else SendFile(response)
