"""psycopg (3) used directly, and under SQLAlchemy, against a real PostgreSQL this module starts itself.

The server is the machine's own (Debian's ``postgresql`` package: .ci/run installs it), run from a fresh data
folder on a free 127.0.0.1 port and stopped at the end.  PostgreSQL refuses to run as root: as root, the data
folder is given to ``nobody`` and initdb and pg_ctl run as that user (``runuser``).
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("psycopg", reason="psycopg is in the [test] extras")

PG_BIN = next((Path(found) for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
               if (Path(found) / "initdb").exists()), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """The conninfo of a PostgreSQL started for this module (user ``postgres``, trusted on 127.0.0.1)."""
    if PG_BIN is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="devserver-pg-"))  # under /tmp: pytest's own is root's, 0700
    as_user: list[str] = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        as_user = ["runuser", "-u", "nobody", "--"]
    data, port = folder / "data", _free_port()

    def run(*argv: str) -> None:
        ran = subprocess.run([*as_user, *argv], cwd=folder, capture_output=True, text=True, timeout=180, check=False)
        if ran.returncode != 0:
            log = folder / "log"
            raise RuntimeError(f"{' '.join(argv)}: exit {ran.returncode}\n{ran.stdout}{ran.stderr}"
                               f"{log.read_text(errors='replace') if log.exists() else ''}")

    try:
        run(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8",
            "--locale=C")
        run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "120", "-o",
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        try:
            yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=30"
        finally:
            run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# An app module: a connection opened before the hooks exist (as a worker imports the app), a view using it, a
# composed statement, a failing one, an engine of SQLAlchemy's psycopg dialect, and an async connection.
_APP = """
import asyncio, json, os, sys
import psycopg
from psycopg import sql
from sqlalchemy import create_engine, text
from devserver.ipc.config import Config
from devserver.probes import hooks, recorder

dsn = sys.argv[1]
early = psycopg.connect(dsn, autocommit=True)
early.execute("DROP TABLE IF EXISTS users")
early.execute("CREATE TABLE users (id serial PRIMARY KEY, name text, password text)")
engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))
hooks.install(Config(app_dir=os.path.dirname(os.path.abspath(__file__))))


class Request:
    method, target = "GET", "/"


class Exchange:
    request, recorder = Request(), None


async def async_view():
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await conn.cursor().execute("SELECT %s::int AS five", (5,))


def view(_):
    cursor = early.cursor()
    cursor.executemany("INSERT INTO users (name, password) VALUES (%s, %s)", [("ann", "hunter2"), ("bob", "x")])
    cursor.execute("SELECT name FROM users WHERE name = %(name)s", {"name": "ann"})
    early.execute(sql.SQL("SELECT {} FROM users").format(sql.Identifier("name")))
    try:
        early.execute("SELECT missing FROM users")
    except psycopg.Error:
        pass
    with engine.connect() as conn:  # its first connection: the dialect's own checks are not the app's
        conn.execute(text("SELECT count(*) FROM users WHERE name = :n"), {"n": "bob"})
    asyncio.run(async_view())


exchange = Exchange()
recorder.recorded(exchange, view)(None)
print(json.dumps([[q.sql, q.rows, q.source, q.database, q.error.split(":")[0]]
                  for q in exchange.recorder.finish().queries]))
"""


def test_psycopg_statements_are_recorded_once_each_with_rows_source_and_errors(tmp_path: Path, postgres: str) -> None:
    app = tmp_path / "app.py"
    app.write_text(_APP.lstrip())
    ran = subprocess.run([sys.executable, str(app), postgres], capture_output=True, text=True, timeout=120,
                         check=False)
    assert ran.returncode == 0, ran.stderr
    lines = app.read_text().splitlines()

    def at(code: str) -> str:
        return f"app.py:{next(n for n, line in enumerate(lines, 1) if code in line)}"

    assert json.loads(ran.stdout) == [
        # executemany: shown with its first row, the secret column masked; rows: of all of them
        ["INSERT INTO users (name, password) VALUES ('ann', ********)", 2, at("cursor.executemany"), "psycopg", ""],
        ["SELECT name FROM users WHERE name = 'ann'", 1, at('cursor.execute("SELECT name'), "psycopg", ""],
        ['SELECT "name" FROM users', 2, at("sql.SQL("), "psycopg", ""],  # composed: as the server got it
        ["SELECT missing FROM users", None, at('"SELECT missing'), "psycopg", "UndefinedColumn"],
        # through SQLAlchemy: recorded by its hook, once, and not its first connection's checks
        ["SELECT count(*) FROM users WHERE name = 'bob'", 1, at("conn.execute(text("), "sqlalchemy:postgresql", ""],
        ["SELECT 5::int AS five", 1, at("await conn.cursor().execute"), "psycopg", ""],  # AsyncCursor
    ]
