"""Which certificate a start serves: devserver's own (--https), the user's (--ssl-certfile/--ssl-keyfile) or none.

Checked here, before any worker starts: every mistake is one line
(:class:`~devserver.tls.context.TLSFilesError`).  ``cryptography`` is
imported only for --https, so a plain start never loads it.
"""

from __future__ import annotations

import os
from pathlib import Path

from devserver.tls.context import TLSFilesError, server_context


def chosen_files(https: bool, certfile: str | None, keyfile: str | None, allowed_hosts: tuple[str, ...],
                 bound: str = "127.0.0.1") -> tuple[str, str, str] | None:
    """``(certificate, key, CA or "")`` as absolute paths to serve, or None for plain HTTP.

    With --https the certificate names the bound address too (``--host 192.168.1.5``), unless it is
    every address (``0.0.0.0``, ``::``): the names it is reached by are then the --allowed-host ones.
    """
    if https and (certfile or keyfile):
        raise TLSFilesError("--https makes its own certificate: give --https or --ssl-certfile/--ssl-keyfile, not both")
    if bool(certfile) != bool(keyfile):
        raise TLSFilesError("--ssl-certfile and --ssl-keyfile go together: give both")
    if https:
        from devserver.tls.ca import tls_folder
        from devserver.tls.certs import NameNotPermitted, ensure_server_files

        folder = tls_folder()
        try:
            files = ensure_server_files(folder, (*allowed_hosts, *(() if bound in ("0.0.0.0", "::") else (bound,))))
        except NameNotPermitted as exc:
            raise TLSFilesError(str(exc)) from None
        except (OSError, ValueError) as exc:
            raise TLSFilesError(f"--https: cannot keep the local CA in {folder}: {exc}") from None
        chosen = (str(files.cert), str(files.key), str(files.ca))
    elif certfile and keyfile:
        chosen = (os.path.abspath(certfile), os.path.abspath(keyfile), "")
    else:
        return None
    server_context(chosen[0], chosen[1])  # the files load: the workers' contexts will
    return chosen


def trust_notice(cafile: str) -> tuple[str, ...]:
    """The line shown with "listening" under --https: which CA a browser must trust, and where to read how."""
    if not cafile:
        return ()
    return (f"HTTPS with devserver's local CA {cafile}: trust it once to avoid warnings "
            "(the commands: README, section HTTPS)",)


def print_ca() -> Path:
    """The local CA's certificate file, made first if there is none (``devserver --print-ca``)."""
    from devserver.tls.ca import ensure_authority, tls_folder

    return ensure_authority(tls_folder()).files.cert
