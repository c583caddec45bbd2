"""A throwaway MariaDB server for tests: own datadir, socket and port, own user.

    server = MariaDB(tmp_dir).start()       # mariadb-install-db + mariadbd
    url = server.create_database("t1")      # mysql+mysqldb://sparkcast:...@127.0.0.1:PORT/t1
    server.stop(); server.start()           # same datadir: data survives (DB-down tests)
    server.destroy()

Debian's `mariadb-server` provides the binaries; when they are missing and we are root,
`apt-get install mariadb-server` is tried once. Anything that cannot start raises
MariaDBUnavailable with the reason (tests fail on it; they never skip).
"""

from __future__ import annotations

import getpass
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SERVER_BIN = "mariadbd"
INSTALL_BIN = "mariadb-install-db"
USER = "sparkcast"


class MariaDBUnavailable(RuntimeError):
    """The test MariaDB server could not be installed or started."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _find(binary: str) -> str | None:
    return shutil.which(binary) or next(
        (str(p) for p in (Path("/usr/sbin") / binary, Path("/usr/bin") / binary) if p.exists()),
        None)


def ensure_installed() -> tuple[str, str]:
    """Paths of mariadbd and mariadb-install-db, installing mariadb-server if needed."""
    server, install = _find(SERVER_BIN), _find(INSTALL_BIN)
    if server and install:
        return server, install
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-q", "mariadb-server"], env=env,
                       capture_output=True, check=False, timeout=600)
        server, install = _find(SERVER_BIN), _find(INSTALL_BIN)
    if not (server and install):
        raise MariaDBUnavailable("mariadbd not found: apt-get install mariadb-server")
    return server, install


class MariaDB:
    def __init__(self, base_dir: Path, port: int | None = None):
        self.base = Path(base_dir)
        self.datadir = self.base / "data"
        self.socket = self.base / "mysqld.sock"
        self.port = port or _free_port()
        self.password = secrets.token_hex(12)
        self.proc: subprocess.Popen[bytes] | None = None
        self._user_created = False

    # --- lifecycle ---

    def start(self, timeout: float = 60.0) -> MariaDB:
        server, install = ensure_installed()
        self.base.mkdir(parents=True, exist_ok=True)
        if not (self.datadir / "mysql").exists():
            self._install(install)
        with open(self.base / "error.log", "ab") as log:
            self.proc = subprocess.Popen(
                [server, "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.socket}",
                 f"--port={self.port}", "--bind-address=127.0.0.1",
                 f"--pid-file={self.base / 'mysqld.pid'}", *self._user_arg(),
                 "--skip-name-resolve", "--skip-log-bin",
                 # Small and fast: tests, not durability (2 cores shared with other engineers).
                 "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
                 "--innodb-flush-log-at-trx-commit=2", "--performance-schema=OFF",
                 "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
                 "--max-connections=200"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self._wait_ready(timeout)
        if not self._user_created:
            self._create_user()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down cleanly (TERM); the datadir is kept for a later start()."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """Crash it (KILL), as in a database-down test."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    # --- use ---

    def url(self, database: str) -> str:
        return (f"mysql+mysqldb://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"
                "?charset=utf8mb4")

    def create_database(self, name: str) -> str:
        """A new empty database; returns its SQLAlchemy URL for the test user."""
        self.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 "
                     "COLLATE utf8mb4_unicode_ci")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.execute(f"DROP DATABASE IF EXISTS `{name}`")

    def execute(self, sql: str) -> None:
        """Run one statement as the server's admin (socket auth)."""
        import MySQLdb

        conn = MySQLdb.connect(unix_socket=str(self.socket), user=self._admin_user())
        try:
            conn.cursor().execute(sql)
            conn.commit()
        finally:
            conn.close()

    # --- helpers ---

    def _user_arg(self) -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []

    def _admin_user(self) -> str:
        return "root" if os.geteuid() == 0 else getpass.getuser()

    def _install(self, install: str) -> None:
        proc = subprocess.run(
            [install, "--no-defaults", f"--datadir={self.datadir}", *self._user_arg(),
             "--skip-test-db", "--auth-root-authentication-method=socket",
             f"--auth-root-socket-user={self._admin_user()}"],
            capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            raise MariaDBUnavailable(f"mariadb-install-db failed: {proc.stderr.strip()[-500:]}")

    def _wait_ready(self, timeout: float) -> None:
        import MySQLdb

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise MariaDBUnavailable(f"mariadbd exited at start: {self._log_tail()}")
            try:
                MySQLdb.connect(unix_socket=str(self.socket), user=self._admin_user()).close()
                return
            except MySQLdb.OperationalError:
                time.sleep(0.2)
        self.stop()
        raise MariaDBUnavailable(f"mariadbd not ready within {timeout:g} s: {self._log_tail()}")

    def _create_user(self) -> None:
        # A password user over TCP, as production connects (not the admin's socket auth).
        self.execute(f"CREATE USER IF NOT EXISTS '{USER}'@'127.0.0.1' "
                     f"IDENTIFIED BY '{self.password}'")
        self.execute(f"ALTER USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{self.password}'")
        self.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1'")
        self._user_created = True

    def _log_tail(self, lines: int = 5) -> str:
        log = self.base / "error.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return " | ".join(text.strip().splitlines()[-lines:]) or "no log"
