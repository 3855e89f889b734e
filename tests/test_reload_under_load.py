"""A burst of edits under load: no request fails, none is refused, the last edit wins."""

from __future__ import annotations

import http.client
import threading
import time
from pathlib import Path

from conftest import wait_until

EDIT_EVERY = 0.1
EDITS = 30  # three seconds of saves


def source(token: int) -> str:
    # Tokens of varying length: both same-size and different-size rewrites happen.
    return f"TOKEN = {token}\n\n\ndef application(environ, start_response):\n" \
           f"    body = str(TOKEN).encode()\n" \
           f"    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])\n" \
           f"    return [body]\n"


def test_edits_every_100ms_under_load_lose_no_request(server_factory, site: Path) -> None:
    module = site / "dynamic" / "token.py"
    module.write_text(source(0))
    server = server_factory("--workers", "2")
    stop = threading.Event()
    results: list[tuple[str, str]] = []  # (kind, detail)
    lock = threading.Lock()

    def client(keep_alive: bool) -> None:
        conn = None
        while not stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                conn.request("GET", "/token.py")
                response = conn.getresponse()
                body = response.read().decode()
                outcome = ("ok", body) if response.status == 200 and body.isdigit() else ("bad", f"{response.status} {body[:200]}")
            except (OSError, http.client.HTTPException) as exc:
                outcome = ("error", repr(exc))
                conn = None
            with lock:
                results.append(outcome)
            if not keep_alive and conn is not None:
                conn.close()
                conn = None

    threads = [threading.Thread(target=client, args=(i % 2 == 0,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        for token in range(1, EDITS + 1):
            time.sleep(EDIT_EVERY)
            module.write_text(source(token * 37 % 1000 + token))  # varying sizes
        last = EDITS * 37 % 1000 + EDITS
        start = len(server.lines)
        server.wait_for(r"^reloaded .*token", start=max(0, start - 5))
        served = len(results)  # the load goes on after the last reload: forty more answers
        wait_until(lambda: len(results) >= served + 40, 20, "forty more requests after the last reload")
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
    failures = [r for r in results if r[0] != "ok"]
    assert len(results) > 200, f"only {len(results)} requests were made"
    assert not failures, failures[:5]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/token.py")
    assert conn.getresponse().read().decode() == str(last)
