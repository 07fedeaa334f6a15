"""A real PostgreSQL 15 server for the tests (Debian's postgresql-15 binaries): initdb into a
fresh temporary directory, the server on a free loopback port with its socket in that
directory, trust authentication for the test role `outpost`, and a fresh database per user
of it (Postgres.database). Run as a non-root user (nobody) when the tests run as root: the
server refuses root. Stopped (fast shutdown, then SIGKILL) by stop(), and at exit.

For test speed the server runs with fsync off: the tests kill hubs, never the database
server, so its own durability is not what they measure (docs/failover.md says what Outpost
assumes of a production server).
"""
import atexit
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

BIN = os.environ.get("OUTPOST_PG_BIN", "/usr/lib/postgresql/15/bin")


def available():
    """None when the server can be started here, else why not (the tests skip with it)."""
    for tool in ("initdb", "postgres"):
        if not os.access(os.path.join(BIN, tool), os.X_OK):
            return f"PostgreSQL 15 binaries missing ({BIN}/{tool}): apt-get install postgresql"
    return None


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="outpost-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = _free_port()
        self.proc = None
        self.user = None
        self.n_databases = 0
        if os.geteuid() == 0:
            self.user = pwd.getpwnam("nobody")
            os.chmod(self.dir, 0o755)
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)

    def _demote(self):
        if self.user:
            os.setgid(self.user.pw_gid)
            os.setgroups([])
            os.setuid(self.user.pw_uid)

    def start(self):
        why = available()
        if why:
            raise RuntimeError(why)
        r = subprocess.run([os.path.join(BIN, "initdb"), "-D", self.data, "-U", "outpost",
                            "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
                           capture_output=True, text=True, preexec_fn=self._demote, cwd=self.dir)
        if r.returncode != 0:
            raise RuntimeError("initdb failed:\n" + r.stdout + r.stderr)
        self.log_path = os.path.join(self.dir, "postgres.log")
        self.log = log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "postgres"), "-D", self.data, "-p", str(self.port), "-k", self.dir,
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200", "-c", "shared_buffers=32MB"],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=self._demote, cwd=self.dir,
            start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited:\n" + open(self.log_path).read())
            if self._accepts():
                atexit.register(self.stop)
                return self
            time.sleep(0.1)
        raise RuntimeError("postgres did not accept connections in 30 s:\n" +
                           open(self.log_path).read())

    def _accepts(self):
        r = subprocess.run([os.path.join(BIN, "pg_ctl"), "status", "-D", self.data],
                           capture_output=True, preexec_fn=self._demote, cwd=self.dir)
        if r.returncode != 0:
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return self.psql("postgres", "SELECT 1", check=False).returncode == 0
        except OSError:
            return False

    def url(self, db):
        return f"postgresql://outpost@127.0.0.1:{self.port}/{db}"

    def psql(self, db, sql, check=True):
        psql = shutil.which("psql") or "/usr/bin/psql"
        r = subprocess.run([psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
                            self.url(db), "-c", sql], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {r.stderr}")
        return r

    def database(self):
        """A fresh, empty database: its URL."""
        self.n_databases += 1
        name = f"outpost_{os.getpid()}_{self.n_databases}"
        self.psql("postgres", f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)   # fast shutdown
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


_shared = None


def shared():
    """One server for the whole test process (databases are per user), started on first use."""
    global _shared
    if _shared is None:
        _shared = Postgres().start()
    return _shared
