"""Finding a graphical web browser, and starting it without touching the dashboard's terminal.

``webbrowser.open`` falls back to console browsers (``www-browser`` is often
w3m or lynx) and runs them in the foreground: inside the dashboard they
would take over its screen and keys.  The dashboard only opens a graphical
browser, started in a session of its own with no access to the terminal;
where there is none it says so and copies the URL instead.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

# Browsers that draw in the terminal (also under a graphical session): never started from the dashboard.
CONSOLE_BROWSERS = frozenset({"w3m", "lynx", "links", "links2", "elinks", "www-browser", "browsh", "carbonyl",
                              "netrik", "edbrowse", "chawan", "cha"})

# Launchers and browsers tried in order under X11 or Wayland once $BROWSER is exhausted.
GRAPHICAL_CANDIDATES = ("xdg-open", "gio", "x-www-browser", "firefox", "chromium", "chromium-browser",
                        "google-chrome", "google-chrome-stable", "brave-browser", "microsoft-edge", "epiphany",
                        "konqueror", "falkon", "opera", "vivaldi")

# Extra arguments a launcher needs before the URL.
LAUNCH_ARGS = {"gio": ("open",)}


@dataclass(frozen=True)
class Browser:
    """A command that opens a URL: ``command`` + the URL (or with ``%s`` replaced by it)."""

    name: str
    command: tuple[str, ...]

    def argv(self, url: str) -> list[str]:
        if any("%s" in part for part in self.command):
            return [part.replace("%s", url) for part in self.command]
        return [*self.command, url]


def local_url(url: str) -> str:
    """``url`` with an all-interfaces host (0.0.0.0, ::) replaced by loopback: browsers may refuse those."""
    parts = urlsplit(url)
    try:
        address = ipaddress.ip_address(parts.hostname or "")
    except ValueError:
        return url
    if not address.is_unspecified:
        return url
    host = "127.0.0.1" if address.version == 4 else "[::1]"
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))


def graphical_session(env: Mapping[str, str], platform: str = sys.platform) -> bool:
    """True where a graphical browser can show a window: macOS, Windows, or an X11/Wayland display."""
    if platform == "darwin" or platform.startswith("win"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def is_console_browser(executable: str) -> bool:
    """True if ``executable`` (a path) is, or links to, a browser that draws in the terminal."""
    names = {os.path.basename(executable), os.path.basename(os.path.realpath(executable))}
    return any(name in CONSOLE_BROWSERS for name in names)


def _resolve(command: tuple[str, ...], env: Mapping[str, str]) -> tuple[str, ...] | None:
    if not command:
        return None
    found = shutil.which(command[0], path=env.get("PATH", os.defpath))
    if found is None or is_console_browser(found):
        return None
    return (found, *command[1:])


def find_browser(env: Mapping[str, str] | None = None, platform: str = sys.platform) -> Browser | None:
    """The graphical browser to open URLs with, or None.

    ``$BROWSER`` (a list separated by ``os.pathsep``, as for ``webbrowser``)
    comes first, then the desktop's launcher, then common browsers; console
    browsers are skipped wherever they appear.  Without a display there is
    none (a browser started there would be a console one, or fail).
    """
    env = os.environ if env is None else env
    if not graphical_session(env, platform):
        return None
    if platform == "darwin":
        return Browser("open", ("open",))
    if platform.startswith("win"):
        return Browser("the default browser", ("rundll32", "url.dll,FileProtocolHandler"))
    wanted = [tuple(shlex.split(entry)) for entry in env.get("BROWSER", "").split(os.pathsep) if entry.strip()]
    wanted += [(name, *LAUNCH_ARGS.get(name, ())) for name in GRAPHICAL_CANDIDATES]
    for command in wanted:
        resolved = _resolve(command, env)
        if resolved is not None:
            return Browser(os.path.basename(command[0]), resolved)
    return None


def launch(browser: Browser, url: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``browser`` on ``url`` in its own session, with no access to the dashboard's terminal.

    Its own session means no controlling terminal: even a console browser
    that slipped through could not open /dev/tty and draw over the dashboard.
    """
    return subprocess.Popen(browser.argv(url), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True,
                            env=None if env is None else dict(env))
