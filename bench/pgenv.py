"""What the Python benchmarks (bench/history, bench/privileges) share: a
throwaway PostgreSQL 15 cluster (trust logins, fsync=off: numbers say nothing
about durable commits) with one or more epoch-proxies in front of it, the
Release build of epoch-proxy, and small query and formatting helpers.

Everything is stopped and the temporary directory removed by Env.stop()
(KEEP=1 keeps the directory, with postgres.log and each proxy's log)."""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import psycopg2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_BIN = "/usr/lib/postgresql/15/bin"


def logger(name):
    def log(msg):
        print(f"{name}: {msg}", file=sys.stderr, flush=True)
    return log


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def as_pg(cmd):
    """initdb refuses to run as root: PostgreSQL runs as "postgres" then."""
    return (["runuser", "-u", "postgres", "--"] + cmd) if os.getuid() == 0 else cmd


def build_proxy(src, build, log):
    """CMake Release build of epoch-proxy (tests off) from source tree src
    into build; returns the binary's path."""
    log(f"building epoch-proxy (Release) in {build}")
    subprocess.run(["cmake", "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                    "-DEPOCH_TESTS=OFF"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build, "-j2", "--target", "epoch-proxy"], check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(build, "epoch-proxy")


def head_proxy(log):
    """EPOCH_PROXY, else this checkout's epoch-proxy built in bench/.build."""
    return os.environ.get("EPOCH_PROXY") or build_proxy(ROOT, os.path.join(ROOT, "bench", ".build"), log)


class Env:
    """A PostgreSQL cluster in a temporary directory and the proxies started
    in front of it. start(proxy_bin) is the one-proxy setup: the cluster, a
    database "bench" and the proxy on self.px_port."""

    def __init__(self, name, shared_buffers="512MB"):
        self.log = logger(name)
        self.tmp = tempfile.mkdtemp(prefix=f"epoch-{name}.")
        os.chmod(self.tmp, 0o755)
        if os.getuid() == 0:
            shutil.chown(self.tmp, "postgres")
        self.shared_buffers = shared_buffers
        self.pg_port = free_port()
        self.px_port = None
        self.proxies = []
        self.pg_started = False
        self.su = "postgres" if os.getuid() == 0 else os.environ.get("USER", "postgres")

    def start_pg(self):
        d = os.path.join(self.tmp, "pg")
        subprocess.run(as_pg([f"{PG_BIN}/initdb", "-D", d, "-U", self.su, "-A", "trust", "--no-sync"]),
                       check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(d, "postgresql.conf"), "a") as f:
            f.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.pg_port}\n"
                    f"unix_socket_directories = '{self.tmp}'\nfsync = off\nsynchronous_commit = off\n"
                    f"full_page_writes = off\nshared_buffers = {self.shared_buffers}\nmax_wal_size = 8GB\n")
        subprocess.run(as_pg([f"{PG_BIN}/pg_ctl", "start", "-D", d, "-l",
                              os.path.join(self.tmp, "postgres.log"), "-w", "-t", "60"]),
                       check=True, stdout=subprocess.DEVNULL)
        self.pg_started = True

    def admin(self, sql):
        """Run sql as the superuser on database postgres, directly."""
        c = psycopg2.connect(host=self.tmp, port=self.pg_port, user=self.su, dbname="postgres")
        c.autocommit = True
        c.cursor().execute(sql)
        c.close()

    def start_proxy(self, proxy_bin, label="proxy", args=()):
        """Start proxy_bin in front of the cluster (more command-line args:
        args); returns its port."""
        port = free_port()
        p = subprocess.Popen(
            [proxy_bin, "--listen", f"127.0.0.1:{port}", "--backend",
             f"host=127.0.0.1 port={self.pg_port}", *args],
            stdout=open(os.path.join(self.tmp, f"{label}.log"), "w"), stderr=subprocess.STDOUT,
            start_new_session=True)
        self.proxies.append(p)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return port
            except OSError:
                if p.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"epoch-proxy {proxy_bin} did not start; see {self.tmp}/{label}.log")

    def start(self, proxy_bin):
        self.start_pg()
        self.admin("CREATE DATABASE bench")
        self.px_port = self.start_proxy(proxy_bin)

    def connect(self, branch=None, direct=False, base="bench", user=None, port=None):
        """Through the proxy on port (default self.px_port), to base@branch,
        or directly to base; as user (default the superuser); autocommit."""
        db = f"{base}@{branch}" if branch else base
        user = user or self.su
        if direct:
            c = psycopg2.connect(host="127.0.0.1", port=self.pg_port, user=user, dbname=base)
        else:
            c = psycopg2.connect(host="127.0.0.1", port=port or self.px_port, user=user, dbname=db)
        c.autocommit = True
        return c

    def stop(self):
        for p in self.proxies:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if self.pg_started:
            subprocess.run(as_pg([f"{PG_BIN}/pg_ctl", "stop", "-D", os.path.join(self.tmp, "pg"),
                                  "-m", "fast", "-w"]), stdout=subprocess.DEVNULL)
        if os.environ.get("KEEP") == "1":
            self.log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def q(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


def timed(conn, sql, params=None):
    t = time.perf_counter()
    rows = q(conn, sql, params)
    return (time.perf_counter() - t) * 1000, rows


def fmt(vals, digits=1):
    """median (min-max)"""
    return f"{statistics.median(vals):.{digits}f} ({min(vals):.{digits}f}-{max(vals):.{digits}f})"
