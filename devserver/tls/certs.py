"""The server's certificate: issued by the local CA for the names the server answers, kept until they change.

One leaf per set of names (its files are named by a digest of the set), so
two projects with different ``--allowed-host`` names never take turns
re-issuing one file.  A leaf is issued again when its CA changed or it has
fewer than :data:`RENEW_DAYS` left.  Leaves last :data:`LEAF_DAYS` days:
under Apple's 825-day limit for certificates of a user's own roots, and
under the 398 days browsers allow public ones, so no client's rule is near.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devserver.tls.ca import Authority, authority_in, permits
from devserver.tls.files import locked, write_file

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
LEAF_DAYS = 397
RENEW_DAYS = 30


class NameNotPermitted(ValueError):
    """An --allowed-host name the local CA may not sign (a public one)."""


@dataclass(frozen=True)
class ServerFiles:
    """What a TLS server loads (``cert``, ``key``) and what its clients should trust (``ca``)."""

    cert: Path
    key: Path
    ca: Path


def names_for(allowed_hosts: tuple[str, ...]) -> tuple[str, ...]:
    """The loopback names and every --allowed-host name (brackets off IPv6; ``*`` names nothing)."""
    extra = (host.strip("[]").lower() for host in allowed_hosts if host != "*")
    return tuple(dict.fromkeys((*LOOPBACK_NAMES, *extra)))


def ensure_server_files(folder: Path, allowed_hosts: tuple[str, ...] = ()) -> ServerFiles:
    """A current certificate for the server's names, signed by the CA in ``folder`` (both made if needed)."""
    names = names_for(allowed_hosts)
    refused = [name for name in names if not permits(name)]
    if refused:
        raise NameNotPermitted(f"--https cannot certify {', '.join(refused)}: devserver's local CA signs only "
                               f"loopback and private names (localhost, *.test, *.local, *.internal, 10.0.0.0/8, ...); serve your "
                               "own certificate with --ssl-certfile/--ssl-keyfile")
    with locked(folder):
        return _server_files(folder, names)


def _server_files(folder: Path, names: tuple[str, ...]) -> ServerFiles:
    authority = authority_in(folder)
    digest = hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()[:12]
    files = ServerFiles(folder / f"server-{digest}.pem", folder / f"server-{digest}-key.pem", authority.files.cert)
    if not _current(files, authority):
        key = ec.generate_private_key(ec.SECP256R1())
        write_file(files.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()), 0o600)
        write_file(files.cert, _issue(authority, key, names).public_bytes(serialization.Encoding.PEM), 0o644)
    return files


def _current(files: ServerFiles, authority: Authority) -> bool:
    """The leaf on disk exists, was signed by this CA and is good for RENEW_DAYS more."""
    try:
        leaf = x509.load_pem_x509_certificate(files.cert.read_bytes())
        files.key.stat()
    except (OSError, ValueError):
        return False
    remaining = leaf.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return leaf.issuer == authority.certificate.subject and remaining > datetime.timedelta(days=RENEW_DAYS) \
        and _signed_by(leaf, authority)


def _signed_by(leaf: x509.Certificate, authority: Authority) -> bool:
    try:
        leaf.verify_directly_issued_by(authority.certificate)
    except (ValueError, TypeError, Exception):  # noqa: BLE001 - InvalidSignature and kin: issue a new one
        return False
    return True


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _issue(authority: Authority, key: ec.EllipticCurvePrivateKey, names: tuple[str, ...]) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "devserver"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(authority.certificate.subject).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=LEAF_DAYS))
            .add_extension(x509.SubjectAlternativeName([_san(name) for name in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(authority.key, hashes.SHA256()))
