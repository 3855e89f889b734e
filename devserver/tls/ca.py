"""The local certificate authority: made once per user, kept in the user's data folder, limited by name constraints.

The CA may sign only loopback and private names and addresses (``localhost``,
``*.test``, ``*.local``, ``10.0.0.0/8``, ...: :data:`PERMITTED_NAMES`), so
trusting it cannot let anyone who copies its key impersonate a public site:
browsers and OpenSSL refuse a certificate it signs for ``example.com``.
(mkcert's CA signs anything.)  Its key is an ECDSA P-256 key, as the leaves'.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devserver.kit.datadir import user_data_folder
from devserver.tls.files import locked, private_folder, write_file

CA_NAME = "devserver local development CA"
CA_DAYS = 3650
PERMITTED_DNS = ("localhost", "test", "local", "internal", "home.arpa", "lan", "example", "invalid")
PERMITTED_NETWORKS = ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                      "100.64.0.0/10", "::1/128", "fc00::/7", "fe80::/10")
PERMITTED_NAMES = (*PERMITTED_DNS, *PERMITTED_NETWORKS)


@dataclass(frozen=True)
class AuthorityFiles:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Authority:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    files: AuthorityFiles


def tls_folder() -> Path:
    """Where the CA and its leaves live: ``<the user's data folder>/tls`` (mode 0700)."""
    return user_data_folder() / "tls"


def authority_files(folder: Path) -> AuthorityFiles:
    return AuthorityFiles(folder / "ca.pem", folder / "ca-key.pem")


def permits(name: str) -> bool:
    """Whether the CA's name constraints allow a certificate for ``name`` (a DNS name or an IP address)."""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        name = name.rstrip(".").lower()
        return any(name == allowed or name.endswith("." + allowed) for allowed in PERMITTED_DNS)
    return any(address in ipaddress.ip_network(network) for network in PERMITTED_NETWORKS)


def ensure_authority(folder: Path) -> Authority:
    """The CA in ``folder``, made there first if it has none (its key mode 0600, the folder 0700)."""
    with locked(folder):
        return authority_in(folder)


def authority_in(folder: Path) -> Authority:
    """:func:`ensure_authority`, for a caller that holds the folder's lock."""
    files = authority_files(private_folder(folder))
    if files.cert.exists() and files.key.exists():
        key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return Authority(x509.load_pem_x509_certificate(files.cert.read_bytes()), key, files)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _self_signed(key)
    # The key first: a certificate on disk always has its key beside it.
    write_file(files.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()), 0o600)
    write_file(files.cert, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    return Authority(certificate, key, files)


def _self_signed(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    import getpass
    import socket

    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "devserver"),
        # Shown by trust stores: whose CA this is, so that a list of roots tells them apart.
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"{getpass.getuser()}@{socket.gethostname()}"),
        x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
    ])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    constraints = x509.NameConstraints(
        permitted_subtrees=[*(x509.DNSName(name) for name in PERMITTED_DNS),
                            *(x509.IPAddress(ipaddress.ip_network(net)) for net in PERMITTED_NETWORKS)],
        excluded_subtrees=None)
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(constraints, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256()))
