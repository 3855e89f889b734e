"""The TLS context a worker serves with, from a certificate and key file; what is wrong with them, in one line."""

from __future__ import annotations

import ssl

ALPN = ["http/1.1"]  # the only protocol served: a client offering h2 as well gets HTTP/1.1


class TLSFilesError(ValueError):
    """The certificate or key cannot be served (missing file, not PEM, encrypted key, key not the cert's)."""


def server_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """A server context (TLS 1.2 and up, ALPN http/1.1) loaded from ``certfile`` and ``keyfile``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(ALPN)
    asked = []

    def password() -> bytes:
        asked.append(True)  # only an encrypted key asks: OpenSSL would otherwise prompt on the terminal
        return b""

    for option, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise TLSFilesError(f"{option} {path!r}: {exc.strerror or exc}") from None
    try:
        context.load_cert_chain(certfile, keyfile, password=password)
    except ssl.SSLError as exc:
        if asked:
            raise TLSFilesError(f"--ssl-keyfile {keyfile!r} is encrypted: serve a key without a passphrase "
                                "(openssl pkey -in KEY -out PLAIN)") from None
        if "KEY_VALUES_MISMATCH" in str(exc) or exc.reason == "KEY_VALUES_MISMATCH":
            raise TLSFilesError(f"--ssl-keyfile {keyfile!r} is not the key of --ssl-certfile {certfile!r}") from None
        raise TLSFilesError(f"--ssl-certfile {certfile!r} / --ssl-keyfile {keyfile!r}: not a PEM certificate "
                            f"and key ({exc.reason or exc})") from None
    return context
