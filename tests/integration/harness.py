"""Integration-test harness for epoch-proxy.

Pieces:
  free_port()        a free loopback TCP port
  PgCluster          a throwaway PostgreSQL 15 cluster (initdb into a tempdir)
  Proxy              one epoch-proxy process (config file, stderr log, signals)
  RawClient          a minimal frontend/backend protocol client on a raw socket
                     (startup, SCRAM-SHA-256 / md5 / cleartext login, simple query)
  psql(), pgbench()  run the PostgreSQL 15 client programs
  TestEnv            what a test function receives (see tests/integration/run.py)

Everything that is started is registered for teardown (finally blocks in the
runner plus an atexit hook), so no postgres or epoch-proxy process survives a
run, even a failing one. Only the Python standard library and Debian's
python3-psycopg2 are used: run with /usr/bin/python3.
"""

import atexit
import base64
import hashlib
import hmac
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg2
import psycopg2.extensions

REPO = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PSQL = str(PG_BIN / "psql")
PGBENCH = str(PG_BIN / "pgbench")
# the epoch schema version this proxy migrates to: one step per schema file
SCHEMA_VERSION = sum(len(list((REPO / "src" / area / "sql" / "schema").glob("[0-9][0-9][0-9]_*.sql")))
                     for area in ("branch", "audit"))

ADMIN_USER = "super"  # superuser; trust over the unix socket only
DEFAULT_USER = "epoch"  # scram-sha-256 role owning DEFAULT_DB
DEFAULT_PASSWORD = "epoch"
DEFAULT_DB = "epoch_test"  # not "epoch": that name is the admin console (docs/operations.md)
MD5_GROUP = "epoch_md5_users"  # members log in with md5 over TCP (pg_hba)

IS_ROOT = os.geteuid() == 0

# libpq reads PG* variables from the environment (PGHOST, PGSSLMODE, ...):
# none of them may leak into the tests, neither in-process (psycopg2) nor in
# the psql/pgbench children.
for _k in list(os.environ):
    if _k.startswith("PG"):
        del os.environ[_k]
os.environ["PGPASSFILE"] = "/nonexistent/epoch-test-pgpass"
os.environ["PGCONNECT_TIMEOUT"] = "10"


class HarnessError(Exception):
    pass


# ---------------------------------------------------------------------------
# teardown registry

_cleanups = []
_cleanups_lock = threading.Lock()


def register_cleanup(fn):
    with _cleanups_lock:
        _cleanups.append(fn)
    return fn


def unregister_cleanup(fn):
    with _cleanups_lock:
        if fn in _cleanups:
            _cleanups.remove(fn)


def run_cleanups():
    while True:
        with _cleanups_lock:
            if not _cleanups:
                return
            fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # keep tearing down the rest
            print(f"harness: cleanup {fn!r} failed: {e}", flush=True)


atexit.register(run_cleanups)


# ---------------------------------------------------------------------------
# small helpers

_handed_out_ports = set()
_ports_lock = threading.Lock()


def free_port():
    """A loopback TCP port nobody listens on (never the same one twice per run)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with _ports_lock:
            if port not in _handed_out_ports:
                _handed_out_ports.add(port)
                return port


def wait_until(predicate, timeout, interval=0.05, message="condition"):
    """Poll predicate() until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def _postgres_ids():
    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid


def _as_postgres(cmd):
    """initdb/pg_ctl refuse to run as root: run them as postgres then."""
    if IS_ROOT:
        return ["runuser", "-u", "postgres", "--"] + [str(c) for c in cmd]
    return [str(c) for c in cmd]


def run(cmd, *, check=True, timeout=120, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    cp = subprocess.run([str(c) for c in cmd], timeout=timeout, **kw)
    if check and cp.returncode != 0:
        raise HarnessError(
            f"command failed (exit {cp.returncode}): {' '.join(map(str, cmd))}\n"
            f"stdout:\n{cp.stdout}\nstderr:\n{cp.stderr}"
        )
    return cp


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def quote_ident(name):
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value):
    return "'" + str(value).replace("'", "''") + "'"


# ---------------------------------------------------------------------------
# password secrets (for auth_file entries)


def md5_secret(user, password):
    return "md5" + hashlib.md5((password + user).encode()).hexdigest()


def scram_secret(password, iterations=4096, salt=None):
    """A SCRAM-SHA-256 verifier in PostgreSQL's pg_authid format."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def write_userlist(path, entries):
    """entries: {user: secret-or-password}; PgBouncer auth_file format."""
    with open(path, "w") as f:
        for user, secret in entries.items():
            u = user.replace('"', '""')
            s = secret.replace('"', '""')
            f.write(f'"{u}" "{s}"\n')
    return path


# ---------------------------------------------------------------------------
# PostgreSQL cluster

DEFAULT_PG_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "password_encryption": "'scram-sha-256'",
    "max_connections": "300",
    "shared_buffers": "'64MB'",
    "max_wal_size": "'1GB'",
    "log_min_messages": "'warning'",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
    "lc_messages": "'C'",
    "TimeZone": "'UTC'",
}


class PgCluster:
    """A throwaway PostgreSQL 15 cluster on 127.0.0.1:<free port>.

    pg_hba.conf: the superuser ADMIN_USER logs in by trust over the unix
    socket (in the cluster's tempdir) only; every TCP login uses a password:
    md5 for members of MD5_GROUP, scram-sha-256 for everybody else.
    """

    def __init__(self, settings=None, name="pg"):
        self.settings = dict(DEFAULT_PG_SETTINGS)
        for k, v in (settings or {}).items():
            self.settings[k] = str(v)
        self.name = name
        self.dir = None
        self.port = None
        self._cleanup = None

    # -- lifecycle --
    def start(self):
        self.dir = Path(tempfile.mkdtemp(prefix=f"epoch-{self.name}-"))
        self._cleanup = register_cleanup(self.destroy)
        if IS_ROOT:
            uid, gid = _postgres_ids()
            os.chown(self.dir, uid, gid)
        self.data = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        self.port = free_port()
        run(
            _as_postgres(
                [PG_BIN / "initdb", "-D", self.data, "-U", ADMIN_USER, "-E", "UTF8",
                 "--locale=C.UTF-8", "--no-sync", "--auth-local=trust",
                 "--auth-host=scram-sha-256"]
            )
        )
        # truncate/append: the files stay owned by the cluster's user
        with open(self.data / "pg_hba.conf", "w") as f:
            f.write(
                "# TYPE DATABASE USER ADDRESS METHOD\n"
                f"local all {ADMIN_USER} trust\n"
                f"host all +{MD5_GROUP} 127.0.0.1/32 md5\n"
                "host all all 127.0.0.1/32 scram-sha-256\n"
            )
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("\n# ---- epoch integration tests ----\n")
            f.write(f"unix_socket_directories = '{self.dir}'\n")
            for k, v in self.settings.items():
                f.write(f"{k} = {v}\n")
        self.running = True  # from here on, destroy() tries to stop it
        for attempt in range(3):
            cp = run(_as_postgres([PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log_path,
                                   "-w", "-t", "60", "-s", "-o", f"-p {self.port}", "start"]),
                     timeout=90, check=False)
            if cp.returncode == 0:
                break
            if attempt < 2 and "already in use" in self.log_text():
                self.port = free_port()  # taken in the meantime: another port
                continue
            raise HarnessError(f"pg_ctl start failed ({cp.returncode}):\n{cp.stdout}\n"
                               f"{cp.stderr}\n{self.log_text()[-3000:]}")
        self.sql(
            f"CREATE ROLE {MD5_GROUP} NOLOGIN;"
            f"CREATE ROLE {DEFAULT_USER} LOGIN PASSWORD {quote_literal(DEFAULT_PASSWORD)};"
            f"CREATE DATABASE {DEFAULT_DB} OWNER {DEFAULT_USER};"
        )
        return self

    def restart(self):
        """pg_ctl restart -m fast (same port and settings)."""
        run(_as_postgres([PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log_path, "-m", "fast",
                          "-w", "-t", "60", "-s", "restart"]), timeout=90)

    def stop(self):
        if not getattr(self, "running", False):
            return
        self.running = False
        cp = run(_as_postgres([PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30",
                               "-s", "stop"]), check=False, timeout=60)
        if cp.returncode != 0:
            cp = run(_as_postgres([PG_BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "-w",
                                   "-s", "stop"]), check=False, timeout=60)
        if cp.returncode != 0 and run(_as_postgres([PG_BIN / "pg_ctl", "-D", self.data,
                                                    "status"]), check=False).returncode == 0:
            self._kill_leftovers()  # still running after both stops

    def _kill_leftovers(self):
        pidfile = self.data / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def destroy(self):
        try:
            self.stop()
        finally:
            if self.dir is not None and not os.environ.get("EPOCH_TEST_KEEP"):
                shutil.rmtree(self.dir, ignore_errors=True)
            if self._cleanup is not None:
                unregister_cleanup(self._cleanup)
                self._cleanup = None

    # -- addresses --
    @property
    def backend(self):
        """--backend value for the proxy."""
        return f"host=127.0.0.1 port={self.port}"

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- SQL as superuser (unix socket, trust) --
    def psql_admin_cmd(self, db="postgres"):
        return [PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.dir),
                "-p", str(self.port), "-U", ADMIN_USER, "-d", db]

    def sql(self, query, db="postgres", check=True, as_role=None):
        """Run SQL (several statements allowed) as superuser, or after SET ROLE
        as_role (objects then belong to that role); return stdout, stripped."""
        if as_role:
            query = f"SET ROLE {quote_ident(as_role)};\n{query}"
        cp = run(self.psql_admin_cmd(db) + ["-f", "-"], input=query, check=check,
                 stdin=None, timeout=120)
        return cp.stdout.strip()

    def admin_connect(self, db="postgres"):
        conn = psycopg2.connect(host=str(self.dir), port=self.port, user=ADMIN_USER, dbname=db)
        conn.autocommit = True
        return conn

    def connect(self, user=DEFAULT_USER, password=DEFAULT_PASSWORD, dbname=DEFAULT_DB, **kw):
        """psycopg2 connection straight to PostgreSQL over TCP (password auth)."""
        kw.setdefault("connect_timeout", 10)
        return psycopg2.connect(host="127.0.0.1", port=self.port, user=user, password=password,
                                dbname=dbname, **kw)

    # -- objects --
    def create_role(self, name, password=None, method="scram-sha-256", superuser=False,
                    options=""):
        """Create a LOGIN role. method: 'scram-sha-256' or 'md5' (stored as md5 and
        put into MD5_GROUP so that pg_hba uses md5 for it)."""
        assert method in ("scram-sha-256", "md5"), method
        pw = f" PASSWORD {quote_literal(password)}" if password is not None else ""
        su = " SUPERUSER" if superuser else ""
        stmts = [f"SET password_encryption = {quote_literal(method)};",
                 f"CREATE ROLE {quote_ident(name)} LOGIN{su}{pw} {options};"]
        if method == "md5":
            stmts.append(f"GRANT {MD5_GROUP} TO {quote_ident(name)};")
        self.sql("\n".join(stmts))

    def create_database(self, name, owner=DEFAULT_USER):
        self.sql(f"CREATE DATABASE {quote_ident(name)} OWNER {quote_ident(owner)};")

    def role_secret(self, name):
        """The stored password (SCRAM verifier or md5 hash) from pg_authid."""
        return self.sql(f"SELECT rolpassword FROM pg_authid WHERE rolname = {quote_literal(name)}")

    def backend_count(self, user=None, db=None):
        cond = ["backend_type = 'client backend'"]
        if user:
            cond.append(f"usename = {quote_literal(user)}")
        if db:
            cond.append(f"datname = {quote_literal(db)}")
        return int(self.sql(f"SELECT count(*) FROM pg_stat_activity WHERE {' AND '.join(cond)}"))


# ---------------------------------------------------------------------------
# epoch-proxy

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "ERROR: ThreadSanitizer", "AddressSanitizer:DEADLYSIGNAL")

_HAVE_SETPRIV = shutil.which("setpriv") is not None


class Proxy:
    """One epoch-proxy process.

    config: dict written as an ini file ([epoch] section) passed as --config;
    args: dict of --key value command-line overrides.
    """

    def __init__(self, binary, backend, workdir, config=None, args=None, port=None, workers=1,
                 name="proxy"):
        self.binary = str(binary)
        self.backend = backend
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.workers = workers
        self.name = name
        self.args = dict(args or {})
        # EPOCH_TEST_IO=libuv|io_uring: the suite's I/O layer (scripts/test.sh
        # runs one pass with each); a test that sets io itself keeps its own
        test_io = os.environ.get("EPOCH_TEST_IO")
        if test_io and "io" not in self.args and "io" not in (config or {}):
            self.args["io"] = test_io
        self.config_path = None
        if config is not None:
            self.write_config(config)
        self.log_path = self.workdir / f"{name}.stderr.log"
        self.proc = None
        self.returncode = None
        self.exit_observed = False  # the test looked at how it exited
        self.killed_by_harness = False
        self._cleanup = None

    # -- config --
    def write_config(self, settings):
        """(Re)write the config file; reload() makes a running proxy read it."""
        if self.config_path is None:
            self.config_path = self.workdir / f"{self.name}.conf"
        tmp = self.config_path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write("[epoch]\n")
            for k, v in settings.items():
                f.write(f"{k} = {v}\n")
        os.replace(tmp, self.config_path)
        self.config = dict(settings)
        return self.config_path

    @property
    def command(self):
        cmd = [self.binary, "--listen", f"127.0.0.1:{self.port}", "--backend", self.backend,
               "--workers", str(self.workers)]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        for k, v in self.args.items():
            cmd += [f"--{k}", str(v)]
        return cmd

    # -- lifecycle --
    def start(self, timeout=15, wait_ready=True):
        if not os.access(self.binary, os.X_OK):
            raise HarnessError(f"epoch-proxy binary not found or not executable: {self.binary}")
        self._log_file = open(self.log_path, "ab")
        cmd = self.command
        if _HAVE_SETPRIV:
            # the proxy dies with the test runner even if the runner is SIGKILLed
            cmd = ["setpriv", "--pdeathsig", "KILL", "--"] + cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log_file,
                                     stderr=self._log_file, start_new_session=True)
        self._cleanup = register_cleanup(self.kill)
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            if "listening on" in self.log_text():
                return
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                self.exit_observed = True
                raise HarnessError(
                    f"epoch-proxy exited with {rc} before 'listening on'\n"
                    f"command: {' '.join(self.command)}\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                self.kill()
                raise HarnessError(
                    f"epoch-proxy did not print 'listening on' within {timeout}s\n"
                    f"command: {' '.join(self.command)}\n{self.log_tail()}")
            time.sleep(0.02)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self, context=""):
        if not self.alive():
            self.returncode = self.proc.returncode
            self.exit_observed = True
            raise AssertionError(
                f"epoch-proxy is not running any more (exit code {self.proc.returncode})"
                f"{' ' + context if context else ''}\n{self.log_tail()}")

    def send_signal(self, sig):
        self.assert_alive(f"(before sending signal {sig})")
        self.proc.send_signal(sig)

    def reload(self, settle=0.5):
        """SIGHUP; give the proxy a moment to re-read its config."""
        self.send_signal(signal.SIGHUP)
        time.sleep(settle)

    def wait(self, timeout):
        """Wait for the process to exit; return its exit code (raises on timeout)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"epoch-proxy still running {timeout}s later\n{self.log_tail()}")
        self.returncode = rc
        self.exit_observed = True
        self._close_log()
        return rc

    def stop(self, sig=signal.SIGINT, timeout=10):
        """Send sig (fast shutdown by default), wait; SIGKILL after timeout.
        Returns the exit code (negative: killed by that signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.killed_by_harness = True
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.returncode = self.proc.returncode
        self.exit_observed = True
        self._close_log()
        if self._cleanup is not None:
            unregister_cleanup(self._cleanup)
            self._cleanup = None
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.killed_by_harness = True
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None:
            self.returncode = self.proc.returncode
        self._close_log()
        if self._cleanup is not None:
            unregister_cleanup(self._cleanup)
            self._cleanup = None

    def _close_log(self):
        f = getattr(self, "_log_file", None)
        if f is not None and not f.closed:
            f.close()

    # -- logs --
    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=40):
        text = self.log_text().splitlines()
        tail = "\n".join(text[-lines:])
        return f"--- last {min(lines, len(text))} lines of {self.log_path} ---\n{tail}\n---"

    def sanitizer_report(self):
        text = self.log_text()
        for marker in SANITIZER_MARKERS:
            if marker in text:
                idx = text.index(marker)
                return text[max(0, idx - 200): idx + 4000]
        return None

    # -- clients --
    def dsn(self, user=DEFAULT_USER, password=DEFAULT_PASSWORD, dbname=DEFAULT_DB, **kw):
        parts = {"host": "127.0.0.1", "port": self.port, "user": user, "dbname": dbname,
                 "connect_timeout": 10}
        if password is not None:
            parts["password"] = password
        parts.update(kw)
        return " ".join(f"{k}={_dsn_quote(v)}" for k, v in parts.items())

    def connect(self, user=DEFAULT_USER, password=DEFAULT_PASSWORD, dbname=DEFAULT_DB,
                autocommit=False, **kw):
        conn = psycopg2.connect(self.dsn(user, password, dbname, **kw))
        conn.autocommit = autocommit
        return conn

    def raw(self, timeout=10):
        return RawClient(self.port, timeout=timeout)

    def psql(self, *args, user=DEFAULT_USER, password=DEFAULT_PASSWORD, dbname=DEFAULT_DB,
             **kw):
        return psql("127.0.0.1", self.port, *args, user=user, password=password,
                    dbname=dbname, **kw)

    def pgbench(self, *args, user=DEFAULT_USER, password=DEFAULT_PASSWORD, dbname=DEFAULT_DB,
                **kw):
        return pgbench("127.0.0.1", self.port, *args, user=user, password=password,
                       dbname=dbname, **kw)


def _dsn_quote(v):
    v = str(v)
    if v and all(c.isalnum() or c in "._-/:+=@$" for c in v):
        return v
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---------------------------------------------------------------------------
# client programs


def client_env(password=None, extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGPASSFILE"] = "/nonexistent/epoch-test-pgpass"
    env["PGCONNECT_TIMEOUT"] = "10"
    if password is not None:
        env["PGPASSWORD"] = password
    env.update(extra or {})
    return env


def psql(host, port, *args, user=DEFAULT_USER, password=DEFAULT_PASSWORD, dbname=DEFAULT_DB,
         input=None, env=None, timeout=120, merge_stderr=False, check=False, text=True,
         conninfo_extra=""):
    """Run psql -X against host:port; return the CompletedProcess.
    args: further psql arguments (e.g. "-c", "SELECT 1" or "-f", path)."""
    conninfo = f"host={host} port={port} user={user} dbname={dbname} {conninfo_extra}".strip()
    cmd = [PSQL, "-X", "-d", conninfo] + [str(a) for a in args]
    cp = subprocess.run(
        cmd, input=input, stdin=None if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        env=client_env(password, env), timeout=timeout, text=text)
    if check and cp.returncode != 0:
        raise AssertionError(f"psql failed (exit {cp.returncode}): {cmd}\n"
                             f"stdout:\n{cp.stdout}\nstderr:\n{cp.stderr}")
    return cp


def pgbench(host, port, *args, user=DEFAULT_USER, password=DEFAULT_PASSWORD,
            dbname=DEFAULT_DB, env=None, timeout=180, check=False):
    cmd = [PGBENCH, "-h", host, "-p", str(port), "-U", user] + [str(a) for a in args] + [dbname]
    cp = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                        env=client_env(password, env), timeout=timeout)
    if check and cp.returncode != 0:
        raise AssertionError(f"pgbench failed (exit {cp.returncode}): {cmd}\n"
                             f"stdout:\n{cp.stdout}\nstderr:\n{cp.stderr}")
    return cp


# ---------------------------------------------------------------------------
# raw protocol client

PROTOCOL_3_0 = 196608
SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102


class PgError(Exception):
    """An ErrorResponse; .fields maps field codes ('C', 'M', 'S', ...) to values."""

    def __init__(self, fields):
        self.fields = fields
        self.sqlstate = fields.get("C")
        self.message = fields.get("M")
        super().__init__(f"{fields.get('S', 'ERROR')} {self.sqlstate}: {self.message}")


class ConnectionClosed(Exception):
    pass


def parse_error_fields(body):
    fields = {}
    for part in body.split(b"\x00"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


def message(mtype, payload=b""):
    """A regular protocol message: type byte, int32 length (incl. itself), payload."""
    return mtype + struct.pack("!i", len(payload) + 4) + payload


def startup_packet(user=None, database=None, protocol=PROTOCOL_3_0, **params):
    body = struct.pack("!i", protocol)
    if user is not None:
        params = {"user": user, **params}
    if database is not None:
        params["database"] = database
    for k, v in params.items():
        body += k.encode() + b"\x00" + str(v).encode() + b"\x00"
    body += b"\x00"
    return struct.pack("!i", len(body) + 4) + body


class RawClient:
    """A deliberately minimal PostgreSQL protocol client on a plain socket."""

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self._buf = b""
        self.params = {}
        self.backend_key = None
        self.notices = []
        self.auth_requests = []  # authentication request codes seen (3, 5, 10, ...)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, n, deadline):
        while len(self._buf) < n:
            remaining = None if deadline is None else max(0.001, deadline - time.monotonic())
            if deadline is not None and time.monotonic() >= deadline:
                raise socket.timeout("timed out")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                raise ConnectionClosed(f"connection closed ({len(self._buf)} bytes pending)")
            self._buf += chunk

    def _take(self, n):
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def read_byte(self, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        self._fill(1, deadline)
        return self._take(1)

    def read_message(self, timeout=None):
        """Return (type byte, body). Raises ConnectionClosed / socket.timeout."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        self._fill(5, deadline)
        mtype = self._buf[:1]
        (length,) = struct.unpack("!i", self._buf[1:5])
        if length < 4 or length > 1 << 30:
            raise AssertionError(f"server sent a message {mtype!r} with bad length {length}")
        self._fill(1 + length, deadline)
        self._take(5)
        return mtype, self._take(length - 4)

    def expect_closed(self, timeout):
        """Read until the server closes the connection; return the messages seen.
        AssertionError if it is still open after timeout seconds."""
        deadline = time.monotonic() + timeout
        msgs = []
        while True:
            try:
                msgs.append(self.read_message(timeout=max(0.001, deadline - time.monotonic())))
            except ConnectionClosed:
                return msgs
            except socket.timeout:
                raise AssertionError(
                    f"connection still open after {timeout}s (messages seen: "
                    f"{[m[0] for m in msgs]})")

    # -- startup / login --
    def send_startup(self, user, database, protocol=PROTOCOL_3_0, **params):
        self.send(startup_packet(user, database, protocol, **params))

    def login(self, user=DEFAULT_USER, password=DEFAULT_PASSWORD, database=DEFAULT_DB,
              protocol=PROTOCOL_3_0, **params):
        """Startup + authentication; returns once ReadyForQuery arrives.
        Raises PgError on an ErrorResponse."""
        self.send_startup(user, database, protocol, **params)
        return self.finish_login(user, password)

    def finish_login(self, user, password):
        scram = None
        while True:
            mtype, body = self.read_message()
            if mtype == b"E":
                raise PgError(parse_error_fields(body))
            if mtype == b"v":  # NegotiateProtocolVersion: carry on
                self.negotiated = body
                continue
            if mtype == b"R":
                (code,) = struct.unpack("!i", body[:4])
                self.auth_requests.append(code)
                if code == 0:
                    continue
                if code == 3:  # cleartext
                    self.send(message(b"p", password.encode() + b"\x00"))
                elif code == 5:  # md5
                    salt = body[4:8]
                    inner = hashlib.md5((password + user).encode()).hexdigest()
                    outer = hashlib.md5(inner.encode() + salt).hexdigest()
                    self.send(message(b"p", b"md5" + outer.encode() + b"\x00"))
                elif code == 10:  # SASL
                    mechs = [m for m in body[4:].split(b"\x00") if m]
                    if b"SCRAM-SHA-256" not in mechs:
                        raise AssertionError(f"no SCRAM-SHA-256 in offered mechanisms {mechs}")
                    scram = _ScramClient(password)
                    first = scram.client_first().encode()
                    self.send(message(b"p", b"SCRAM-SHA-256\x00" + struct.pack("!i", len(first))
                                      + first))
                elif code == 11:  # SASLContinue
                    self.send(message(b"p", scram.client_final(body[4:].decode()).encode()))
                elif code == 12:  # SASLFinal
                    scram.verify_server_final(body[4:].decode())
                else:
                    raise AssertionError(f"unsupported authentication request {code}")
            elif mtype == b"S":
                k, v, _ = body.split(b"\x00", 2)
                self.params[k.decode()] = v.decode()
            elif mtype == b"K":
                self.backend_key = struct.unpack("!ii", body)
            elif mtype == b"N":
                self.notices.append(parse_error_fields(body))
            elif mtype == b"Z":
                return self
            else:
                raise AssertionError(f"unexpected message {mtype!r} during login")

    # -- simple query --
    def query(self, sql, timeout=None):
        """Simple query protocol. Returns a list of rows (tuples of str/None) of
        the last result. Raises PgError (after ReadyForQuery) on an error."""
        self.send(message(b"Q", sql.encode() + b"\x00"))
        return self.read_result(timeout)

    def read_result(self, timeout=None):
        rows, error = [], None
        while True:
            mtype, body = self.read_message(timeout)
            if mtype == b"T":
                rows = []
            elif mtype == b"D":
                (n,) = struct.unpack("!h", body[:2])
                pos, row = 2, []
                for _ in range(n):
                    (ln,) = struct.unpack("!i", body[pos:pos + 4])
                    pos += 4
                    if ln < 0:
                        row.append(None)
                    else:
                        row.append(body[pos:pos + ln].decode())
                        pos += ln
                rows.append(tuple(row))
            elif mtype == b"E":
                error = PgError(parse_error_fields(body))
            elif mtype == b"N":
                self.notices.append(parse_error_fields(body))
            elif mtype == b"Z":
                if error:
                    raise error
                return rows

    def terminate(self):
        try:
            self.send(message(b"X"))
        except OSError:
            pass
        self.close()


class _ScramClient:
    def __init__(self, password):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()

    def client_first(self):
        self.first_bare = f"n=,r={self.nonce}"
        return "n,," + self.first_bare

    def client_final(self, server_first):
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        if not attrs["r"].startswith(self.nonce):
            raise AssertionError("SCRAM: server nonce does not extend ours")
        salt = base64.b64decode(attrs["s"])
        iterations = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{self.first_bare},{server_first},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.expected_server_sig = hmac.new(server_key, auth_message, hashlib.sha256).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}"

    def verify_server_final(self, server_final):
        attrs = dict(kv.split("=", 1) for kv in server_final.split(","))
        if "e" in attrs:
            raise AssertionError(f"SCRAM server error: {attrs['e']}")
        if base64.b64decode(attrs["v"]) != self.expected_server_sig:
            raise AssertionError("SCRAM: wrong server signature")


def send_cancel(port, pid, key, host="127.0.0.1"):
    """Send a CancelRequest on a new connection (what PQcancel does)."""
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(struct.pack("!iiii", 16, CANCEL_REQUEST_CODE, pid, key))
        try:
            s.recv(1)
        except OSError:
            pass


# ---------------------------------------------------------------------------
# what a test function receives


class TestEnv:
    """Per-test environment: the module's cluster, a fresh tempdir, and a
    factory for proxies that the runner stops (and checks) after the test."""

    def __init__(self, proxy_binary, pg, tmpdir, test_name):
        self.proxy_binary = proxy_binary
        self.pg = pg
        self.tmpdir = Path(tmpdir)
        self.test_name = test_name
        self.proxies = []
        self._closers = []

    def proxy(self, config=None, args=None, workers=1, backend=None, start=True, port=None,
              ready_timeout=15):
        """Start epoch-proxy in front of the cluster (passthrough unless told).
        config: dict -> --config file; args: dict -> --key value overrides."""
        for attempt in range(3):
            px = Proxy(self.proxy_binary, backend or self.pg.backend, self.tmpdir,
                       config=config, args=args, workers=workers, port=port,
                       name=f"proxy{len(self.proxies) + 1}")
            self.proxies.append(px)
            if not start:
                return px
            try:
                return px.start(timeout=ready_timeout)
            except HarnessError:
                # the free port we picked was taken in the meantime: another port
                if port is None and attempt < 2 and "address already in use" in px.log_text():
                    self.proxies.remove(px)
                    continue
                raise

    def userlist(self, entries, name="userlist.txt"):
        return write_userlist(self.tmpdir / name, entries)

    def closing(self, obj):
        """Close obj (connection, RawClient, ...) at teardown."""
        self._closers.append(obj)
        return obj

    def teardown(self):
        """Stop everything; return a list of problems found (crashes, sanitizer
        reports, unclean exits) that make the test fail."""
        problems = []
        for obj in reversed(self._closers):
            try:
                obj.close()
            except Exception:
                pass
        for px in self.proxies:
            if px.proc is None:
                continue
            died_on_its_own = px.proc.poll() is not None and not px.exit_observed \
                and not px.killed_by_harness
            if died_on_its_own:
                problems.append(f"{px.name} (pid {px.pid}) exited on its own during the test "
                                f"with code {px.proc.returncode}\n{px.log_tail()}")
            elif px.proc.poll() is None:
                rc = px.stop(signal.SIGINT, timeout=10)
                if px.killed_by_harness:
                    problems.append(f"{px.name} did not exit within 10s of SIGINT at teardown "
                                    f"(killed)\n{px.log_tail()}")
                elif rc != 0:
                    problems.append(f"{px.name} exited with code {rc} after SIGINT at teardown "
                                    f"(expected 0)\n{px.log_tail()}")
            else:
                px.kill()
            report = px.sanitizer_report()
            if report:
                problems.append(f"{px.name}: sanitizer report in {px.log_path}:\n{report}")
        return problems

    def kill_all(self):
        for px in self.proxies:
            px.kill()
