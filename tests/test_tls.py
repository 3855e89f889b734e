"""HTTPS: devserver's local CA (--https, --print-ca), one's own certificate, and HTTP/1.1 over TLS in the workers.

Every server here keeps its CA in a tmp data folder (``XDG_DATA_HOME``), and
every client checks the certificate with Python's ``ssl`` against the CA the
server printed, as a browser that trusts it would.
"""

from __future__ import annotations

import datetime
import http.client
import os
import socket
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import trustme
from conftest import LiveServer, http_exchange, wait_until
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_livereload import EVENTS, EventStream, users_env

from devserver.tls import ca as ca_module
from devserver.tls import certs
from devserver.tls.ca import ensure_authority
from devserver.tls.certs import NameNotPermitted, ensure_server_files
from devserver.tls.context import TLSFilesError, server_context
from devserver.tls.plain import https_answer, is_tls
from tui.recorded.export import curl_command, httpie_command
from tui.recorded.replay import replay_request


def data_env(data: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    return {**(os.environ if base is None else base), "XDG_DATA_HOME": str(data)}


def printed_ca(data: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "devserver", "--print-ca"], env=data_env(data),
                          capture_output=True, text=True, timeout=60, check=True)
    return Path(done.stdout.strip())


def client_context(cafile: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cafile))


def https_get(port: int, host: str, path: str, context: ssl.SSLContext) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection(host, port, timeout=10, context=context)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def https_server(server_factory, data: Path) -> LiveServer:
    return server_factory("--workers", "1", "--https", env=data_env(data))


# ------------------------------------------------------------------ --https against the printed CA


def test_https_is_verified_against_the_printed_ca_for_localhost_and_127_0_0_1(https_server: LiveServer,
                                                                               data: Path, site: Path) -> None:
    assert https_server.url.startswith("https://127.0.0.1:")
    ca = printed_ca(data)
    assert ca == data / "devserver" / "tls" / "ca.pem"
    https_server.wait_for(f"HTTPS with devserver's local CA {ca}: trust it once")
    index = (site / "html_page" / "index.html").read_bytes()
    for host in ("localhost", "127.0.0.1"):
        status, body = https_get(https_server.port, host, "/index.html", client_context(ca))
        assert status == 200 and body.startswith(index[:-len("</body></html>\n")])
    with socket.create_connection(("127.0.0.1", https_server.port), timeout=10) as raw, \
            client_context(ca).wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.selected_alpn_protocol() is None  # asked for nothing: none chosen
    context = client_context(ca)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", https_server.port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.selected_alpn_protocol() == "http/1.1"


def test_a_client_with_the_default_trust_is_refused_and_the_worker_logs_one_line(https_server: LiveServer) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(https_server.port, "localhost", "/", ssl.create_default_context())
    https_server.wait_for(r"TLS handshake with 127\.0\.0\.1:\d+ failed: TLSV1_ALERT_UNKNOWN_CA")
    assert not any("Traceback" in line for line in https_server.lines)


def test_a_broken_handshake_is_one_line_and_the_worker_serves_on(https_server: LiveServer, data: Path) -> None:
    with socket.create_connection(("127.0.0.1", https_server.port), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01\x00\x05hello")  # a handshake record holding garbage
        assert sock.recv(100) is not None  # an alert, or the close
    https_server.wait_for(r"TLS handshake with 127\.0\.0\.1:\d+ failed: ")
    assert https_get(https_server.port, "localhost", "/", client_context(printed_ca(data)))[0] == 200
    assert not any("Traceback" in line for line in https_server.lines)
    assert len(https_server.worker_pids()) == 1


def test_plain_http_on_the_tls_port_is_told_the_https_url(https_server: LiveServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", https_server.port, timeout=10)
    conn.request("GET", "/index.html?x=1", headers={"Host": f"localhost:{https_server.port}"})
    response = conn.getresponse()
    assert response.status == 400
    assert response.read() == f"This server speaks HTTPS: https://localhost:{https_server.port}/index.html?x=1\n".encode()


def test_keep_alive_reuses_one_tls_connection(https_server: LiveServer, data: Path) -> None:
    conn = http.client.HTTPSConnection("localhost", https_server.port, timeout=10,
                                       context=client_context(printed_ca(data)))
    try:
        ports = set()
        for _ in range(5):
            conn.request("GET", "/one_k.txt")
            response = conn.getresponse()
            assert response.status == 200 and response.read() == b"x" * 1024
            assert conn.sock is not None
            ports.add(conn.sock.getsockname()[1])
        assert len(ports) == 1
        port = ports.pop()
        wait_until(lambda: sum(f"127.0.0.1:{port} GET /one_k.txt 200" in line for line in https_server.lines) == 5)
    finally:
        conn.close()


def test_pipelined_requests_over_tls_are_answered_in_order(https_server: LiveServer, data: Path) -> None:
    with socket.create_connection(("127.0.0.1", https_server.port), timeout=10) as raw, \
            client_context(printed_ca(data)).wrap_socket(raw, server_hostname="localhost") as tls:
        requests = b"".join(f"GET /{name} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
                            for name in ("one_k.txt", "missing", "one_k.txt"))
        answers = http_exchange(tls, requests, responses=3)  # type: ignore[arg-type]
    assert [status for status, _, _ in answers] == [200, 404, 200]
    assert answers[0][2] == answers[2][2] == b"x" * 1024


def test_a_large_file_over_tls_is_encrypted_whole(https_server: LiveServer, data: Path, site: Path) -> None:
    """A file too large to keep in memory goes through TLS (asyncio's reads and writes), never sendfile's plain bytes."""
    big = (site / "html_page" / "big.bin").read_bytes()
    conn = http.client.HTTPSConnection("localhost", https_server.port, timeout=30,
                                       context=client_context(printed_ca(data)))
    try:
        for headers, status, body in (({}, 200, big), ({"Range": "bytes=100-199"}, 206, big[100:200]), ({}, 200, big)):
            conn.request("GET", "/big.bin", headers=headers)
            response = conn.getresponse()
            assert (response.status, response.read()) == (status, body)
    finally:
        conn.close()


class TLSEventStream(EventStream):
    def __init__(self, server: LiveServer, cafile: Path) -> None:
        self.conn = http.client.HTTPSConnection("localhost", server.port, timeout=10, context=client_context(cafile))
        self.conn.request("GET", EVENTS, headers={"Accept": "text/event-stream"})
        self.response = self.conn.getresponse()
        self.comments = []
        self.retry = None


def test_live_reload_over_tls(server_factory, site: Path, data: Path) -> None:
    server = server_factory("--workers", "1", "--https", env=data_env(data, users_env()))
    ca = printed_ca(data)
    status, script = https_get(server.port, "localhost", "/__devserver__/livereload.js", client_context(ca))
    # Same-origin URLs only: the page's scheme (https) carries over to the stream.
    assert status == 200 and b'EventSource("/__devserver__/events")' in script and b"http:" not in script
    stream = TLSEventStream(server, ca)
    try:
        assert stream.response.status == 200
        assert stream.next_event()[0] == "hello"
        (site / "html_page" / "index.html").write_text("<html><body><h1>edited</h1></body></html>\n")
        assert stream.next_event() == ("reload", ["/index.html"])
    finally:
        stream.close()


# ------------------------------------------------------------------ the CA and its files


def test_the_ca_key_and_server_key_are_the_users_alone_from_their_creation(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "devserver" / "tls"
    old = os.umask(0)  # nothing taken away by the umask: the modes are the ones the files were created with
    try:
        files = ensure_server_files(folder, ("app.test",))
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert stat.S_IMODE((folder / "ca-key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(files.ca.stat().st_mode) == 0o644  # the certificate is public: trust stores read it


def test_a_new_name_set_gets_its_own_certificate_and_the_old_one_stays(tmp_path: Path) -> None:
    plain = ensure_server_files(tmp_path, ())
    named = ensure_server_files(tmp_path, ("app.test", "[fd00::5]"))
    assert plain.cert != named.cert and plain.ca == named.ca
    leaf = x509.load_pem_x509_certificate(named.cert.read_bytes())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "app.test"}
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1", "fd00::5"}
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= datetime.timedelta(days=825)
    stamp = plain.cert.read_bytes()
    assert ensure_server_files(tmp_path, ()).cert.read_bytes() == stamp  # kept: nothing changed


def test_a_certificate_near_its_end_is_issued_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(certs, "LEAF_DAYS", certs.RENEW_DAYS - 1)
    first = ensure_server_files(tmp_path, ()).cert.read_bytes()
    monkeypatch.setattr(certs, "LEAF_DAYS", 397)
    files = ensure_server_files(tmp_path, ())
    assert files.cert.read_bytes() != first
    leaf = x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert leaf.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > datetime.timedelta(days=390)


def test_a_certificate_of_a_replaced_ca_is_issued_again(tmp_path: Path) -> None:
    first = ensure_server_files(tmp_path, ()).cert.read_bytes()
    for name in ("ca.pem", "ca-key.pem"):
        (tmp_path / name).unlink()
    again = ensure_server_files(tmp_path, ())
    context = ssl.create_default_context(cafile=str(again.ca))
    assert _handshake(server_context(str(again.cert), str(again.key)), context, "localhost") is None
    assert again.cert.read_bytes() != first


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, name: str) -> ssl.SSLError | None:
    """A TLS handshake in memory (no socket); the client's error, if any."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client_side = client.wrap_bio(c_in, c_out, server_hostname=name)
    server_side = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        try:
            client_side.do_handshake()
            return None
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as exc:
            return exc
        s_in.write(c_out.read())
        try:
            server_side.do_handshake()
        except ssl.SSLWantReadError:
            pass
        c_in.write(s_out.read())
    raise AssertionError("the handshake did not finish")


def test_the_ca_cannot_vouch_for_a_public_name(tmp_path: Path) -> None:
    """Name constraints: a certificate the CA's key signs for example.com is refused by OpenSSL."""
    with pytest.raises(NameNotPermitted, match="example.com"):
        ensure_server_files(tmp_path, ("example.com",))
    authority = ensure_authority(tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    forged = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.com")]))
              .issuer_name(authority.certificate.subject).public_key(key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
              .add_extension(x509.SubjectAlternativeName([x509.DNSName("example.com")]), critical=False)
              .sign(authority.key, hashes.SHA256()))
    (tmp_path / "forged.pem").write_bytes(forged.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "forged-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    server = server_context(str(tmp_path / "forged.pem"), str(tmp_path / "forged-key.pem"))
    error = _handshake(server, ssl.create_default_context(cafile=str(authority.files.cert)), "example.com")
    assert isinstance(error, ssl.SSLCertVerificationError) and "permitted subtree violation" in str(error)
    assert ca_module.permits("app.test") and ca_module.permits("10.1.2.3") and not ca_module.permits("8.8.8.8")


def test_devservers_starting_at_once_make_one_ca(tmp_path: Path) -> None:
    """Four processes ask for the CA and a certificate together: one CA, every certificate verifies against it."""
    code = ("import sys; from pathlib import Path; from devserver.tls.certs import ensure_server_files; "
            "print(ensure_server_files(Path(sys.argv[1])).cert)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "tls")], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    outputs = [proc.communicate(timeout=60)[0].strip() for proc in procs]
    assert all(proc.returncode == 0 for proc in procs) and len(set(outputs)) == 1
    files = ensure_server_files(tmp_path / "tls")
    authority = ensure_authority(tmp_path / "tls")
    assert authority.key.public_key().public_numbers() == authority.certificate.public_key().public_numbers()
    context = ssl.create_default_context(cafile=str(files.ca))
    assert _handshake(server_context(str(files.cert), str(files.key)), context, "localhost") is None


def test_print_ca_makes_the_ca_once(data: Path) -> None:
    first = printed_ca(data)
    stamp = first.read_bytes()
    assert printed_ca(data) == first and first.read_bytes() == stamp
    assert stat.S_IMODE((first.parent / "ca-key.pem").stat().st_mode) == 0o600


def test_a_public_allowed_host_with_https_is_one_line(site: Path, data: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "devserver", "--no-tui", "--port", "0", "--https",
                           "--allowed-host", "shop.example.com"], cwd=site, env=data_env(data),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "cannot certify shop.example.com" in done.stderr


# ------------------------------------------------------------------ one's own certificate


@pytest.fixture
def own_ca() -> trustme.CA:
    return trustme.CA()


def test_own_certificate_and_key_are_served(server_factory, own_ca: trustme.CA, tmp_path: Path, data: Path) -> None:
    leaf = own_ca.issue_cert("localhost", "127.0.0.1")
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    server = server_factory("--workers", "1", "--ssl-certfile", str(tmp_path / "cert.pem"),
                            "--ssl-keyfile", str(tmp_path / "key.pem"), env=data_env(data))
    assert server.url.startswith("https://")
    context = ssl.create_default_context()
    own_ca.configure_trust(context)
    assert https_get(server.port, "127.0.0.1", "/one_k.txt", context) == (200, b"x" * 1024)
    assert not (data / "devserver").exists()  # no CA made for a start that did not ask for one


def _start_error(site: Path, data: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "devserver", "--no-tui", "--port", "0", *args], cwd=site,
                          env=data_env(data), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr


def test_bad_certificate_and_key_files_are_one_line(site: Path, data: Path, tmp_path: Path, own_ca: trustme.CA) -> None:
    one, other = own_ca.issue_cert("localhost"), own_ca.issue_cert("localhost")
    one.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    other.private_key_pem.write_to_path(str(tmp_path / "other-key.pem"))
    key = serialization.load_pem_private_key(one.private_key_pem.bytes(), password=None)
    (tmp_path / "locked-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")))
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    cert = str(tmp_path / "cert.pem")
    assert "no such file" in _start_error(site, data, "--ssl-certfile", str(tmp_path / "gone.pem"),
                                          "--ssl-keyfile", str(tmp_path / "other-key.pem")).lower()
    assert "is not the key of --ssl-certfile" in _start_error(site, data, "--ssl-certfile", cert,
                                                              "--ssl-keyfile", str(tmp_path / "other-key.pem"))
    assert "is encrypted" in _start_error(site, data, "--ssl-certfile", cert,
                                          "--ssl-keyfile", str(tmp_path / "locked-key.pem"))
    assert "not a PEM certificate" in _start_error(site, data, "--ssl-certfile", str(tmp_path / "junk.pem"),
                                                   "--ssl-keyfile", str(tmp_path / "other-key.pem"))
    assert "go together" in _start_error(site, data, "--ssl-certfile", cert)
    assert "not both" in _start_error(site, data, "--https", "--ssl-certfile", cert, "--ssl-keyfile", cert)


def test_server_context_errors_name_the_option(tmp_path: Path) -> None:
    files = ensure_server_files(tmp_path, ())
    with pytest.raises(TLSFilesError, match=r"^--ssl-keyfile '.*nothing.pem': No such file"):
        server_context(str(files.cert), str(tmp_path / "nothing.pem"))


# ------------------------------------------------------------------ the dashboard's replay and commands


def test_replay_and_the_curl_command_over_https(https_server: LiveServer, data: Path) -> None:
    from devserver.ipc.events import RequestEvent

    ca = str(printed_ca(data))
    event = RequestEvent(time=0.0, worker_pid=1, client="127.0.0.1:1", method="GET", target="/one_k.txt",
                         http_version="1.1", status=200, bytes_sent=1024, duration_ms=1.0,
                         request_headers=(("Host", "localhost"),))
    result = replay_request(event, https_server.url, cafile=ca)
    assert result.status == 200 and result.body == b"x" * 1024
    with pytest.raises(ssl.SSLCertVerificationError):
        replay_request(event, https_server.url, cafile=_other_ca(data))
    command = curl_command(event, https_server.url, cafile=ca)
    assert f"--cacert {ca}" in command and f"https://127.0.0.1:{https_server.port}/one_k.txt" in command
    assert " -k" not in command and "--insecure" not in command
    done = subprocess.run(command, shell=True, capture_output=True, timeout=30)
    assert done.returncode == 0 and done.stdout == b"x" * 1024
    assert f"--verify {ca}" in httpie_command(event, https_server.url, cafile=ca)
    assert "--cacert" not in curl_command(event, "http://127.0.0.1:8000/", cafile=ca)


def _other_ca(folder: Path) -> str:
    path = folder / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


# ------------------------------------------------------------------ in memory: the first byte


def test_the_first_byte_tells_tls_from_plain_http() -> None:
    assert is_tls(b"\x16\x03\x01\x02\x00")
    assert not is_tls(b"GET / HTTP/1.1\r\n") and not is_tls(b"")


def test_the_plain_answer_names_an_allowed_host_only() -> None:
    request = b"GET /a/b?c HTTP/1.1\r\nHost: app.test:8443\r\nAccept: */*\r\n\r\n"
    answer = https_answer(request, 8443, lambda host: host == "app.test")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in head
    assert body == b"This server speaks HTTPS: https://app.test:8443/a/b?c\n"
    assert f"Content-Length: {len(body)}".encode() in head
    elsewhere = https_answer(b"GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n", 8443, lambda host: False)
    assert elsewhere.endswith(b"https://localhost:8443/\n")
    garbage = https_answer(b"\x00\x01<script>", 8443, None)
    assert garbage.endswith(b"https://localhost:8443/\n")


def test_a_plain_start_never_imports_cryptography_or_ssl(tmp_path: Path) -> None:
    code = ("import sys; from devserver import cli; p = cli.build_parser(); "
            "cli.config_from_args(p.parse_args(['--no-tui']), p); "
            "print(sorted(name for name in ('cryptography', 'ssl', 'devserver.tls') if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert done.stdout.strip() == "[]", done.stderr


# ------------------------------------------------------------------ apps see the scheme


def test_wsgi_apps_see_https(https_server: LiveServer, data: Path) -> None:
    import json

    status, body = https_get(https_server.port, "localhost", "/environ_dump.py", client_context(printed_ca(data)))
    assert status == 200 and json.loads(body)["wsgi.url_scheme"] == "https"


FLASK_APP = '''
from flask import Flask, url_for

app = Flask(__name__)


@app.route("/")
def index():
    return url_for("index", _external=True)
'''

ASGI_APP = '''
async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": scope["scheme"].encode()})
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": scope["scheme"]})
        await send({"type": "websocket.close"})
    else:
        message = await receive()
        await send({"type": message["type"] + ".complete"})
'''


def test_a_flask_app_builds_https_urls(server_factory, tmp_path: Path, data: Path) -> None:
    project = tmp_path / "shop"
    project.mkdir()
    (project / "shop.py").write_text(FLASK_APP)
    server = server_factory("shop:app", "--workers", "1", "--https", cwd=project, env=data_env(data))
    status, body = https_get(server.port, "localhost", "/", client_context(printed_ca(data)))
    assert (status, body) == (200, f"https://localhost:{server.port}/".encode())


def test_asgi_apps_see_https_and_websockets_wss(server_factory, tmp_path: Path, data: Path) -> None:
    from websockets.sync.client import connect

    project = tmp_path / "api"
    project.mkdir()
    (project / "api.py").write_text(ASGI_APP)
    server = server_factory("api:app", "--workers", "1", "--https", cwd=project, env=data_env(data))
    context = client_context(printed_ca(data))
    assert https_get(server.port, "localhost", "/", context) == (200, b"https")
    with connect(f"wss://localhost:{server.port}/ws", ssl=context, open_timeout=10) as websocket:
        assert websocket.recv(timeout=10) == "wss"


# ------------------------------------------------------------------ a browser


def test_a_page_over_https_reloads_itself_in_chromium(server_factory, site: Path, data: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Chromium trusts the server's key alone (its SPKI pin: no certificate error is ignored but for it)."""
    import base64
    import hashlib

    import chromium

    if chromium.CHROME is None:
        pytest.skip("chromium is not installed")
    index = site / "html_page" / "index.html"
    index.write_text("<!DOCTYPE html><html><body><h1 id=title>first</h1></body></html>\n")
    server = server_factory("--workers", "1", "--https", env=data_env(data, users_env()))
    leaf_file = next(p for p in (data / "devserver" / "tls").glob("server-*.pem") if not p.name.endswith("-key.pem"))
    leaf = x509.load_pem_x509_certificate(leaf_file.read_bytes())
    spki = leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    monkeypatch.setattr(chromium, "FLAGS", [*chromium.FLAGS, f"--ignore-certificate-errors-spki-list={pin}"])
    browser = chromium.Chromium(tmp_path / "profile")
    try:
        page = browser.new_page()
        page.open(f"https://localhost:{server.port}/index.html")
        page.wait_for("window.devserverLiveReload && devserverLiveReload.connected")
        assert page.evaluate("location.protocol") == "https:"
        page.evaluate("window.marker = 1")
        index.write_text("<!DOCTYPE html><html><body><h1 id=title>second</h1></body></html>\n")
        page.wait_for("document.getElementById('title')?.textContent === 'second' && window.marker === undefined")
    finally:
        browser.stop()


WSGI_PROJECT = '''
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [%r]
'''


def test_a_warm_restart_closes_idle_tls_connections_and_serves_new_code(server_factory, tmp_path: Path,
                                                                        data: Path) -> None:
    """A TLS session cannot travel with its socket to the new workers: the idle connection is closed, cleanly."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "webapp.py").write_text(WSGI_PROJECT % b"one")
    server = server_factory("webapp:app", "--workers", "1", "--https", "--reload", "restart", cwd=project,
                            env=data_env(data, users_env()))
    context = client_context(printed_ca(data))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        assert http_exchange(tls, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")[0][2] == b"one"  # type: ignore[arg-type]
        (project / "webapp.py").write_text(WSGI_PROJECT % b"two")
        wait_until(lambda: https_get(server.port, "localhost", "/", context) == (200, b"two"), timeout=30)
        tls.settimeout(30)
        try:
            rest = tls.recv(100)
        except (ssl.SSLEOFError, ConnectionResetError):
            rest = b""
        assert rest == b""  # closed, never handed raw to a worker that would read TLS records as HTTP
    assert not any("Traceback" in line for line in server.lines)
