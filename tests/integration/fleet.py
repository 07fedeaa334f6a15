"""Test and demo harness: a real mosquitto broker, a hub and site agents as
separate processes on loopback, each with its own temporary data dir.

The broker is set up as in production: TLS only, a client certificate from
the hub's CA required (its common name is the user name), no anonymous
clients, and the ACL file `outpost ca broker` writes. The one test-only
addition is the eavesdropper user TAP, who may read every topic: what a
compromised broker sees, for the tests that look for secrets on the wire.

Everything listens on 127.0.0.1 on ports picked free at start. Processes are
stopped (SIGTERM, then SIGKILL) by Fleet.stop(), which tests call in tearDown.
"""
import base64
import json
import os
import pwd
import ssl
import shutil
import signal
import socket
import sqlite3
import threading
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")
# Test only: a broker-wide reader, standing for a compromised broker (see start_broker).
TAP = "tap-eavesdropper"
# TEST ONLY: the benchmarks' bare-MQTT baseline client, on its own bench/ topics
BENCH_USER = "bench-baseline"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=20.0, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Proc:
    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)

    def alive(self):
        return self.p.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            os.kill(self.p.pid, sig)

    def stop(self, timeout=10):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode

    def wait(self, timeout=None):
        return self.p.wait(timeout)

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


def unbundle(text):
    """A join bundle (opj1.) as a dict: token, ca, cert, key."""
    assert text.startswith("opj1."), text[:20]
    raw = text[5:]
    return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))


def bundle(fields):
    raw = base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")
    return "opj1." + raw


def topic_owner(fleet, topic):
    """The credential the broker's ACL lets write topic: the hub for inboxes and answers,
    else the id in it (outpost/v1/site/ID/..., op/ID/req, meter/SITE/METER: the meter)."""
    parts = topic.split("/")
    if parts[-1] in ("inbox", "resp"):
        return fleet.hub_id
    return parts[-1] if parts[2] == "meter" else parts[3]


class Wire:
    """An attacker on the broker: reads topic as `reader` (default the eavesdropper TAP, a
    compromised broker's view) and republishes with any properties as the credential that
    may write the topic (a stolen broker credential without the signing key), or as_."""

    def __init__(self, fleet, topic=None, reader=TAP):
        self.f = fleet
        self.messages = []
        self.lock = threading.Lock()
        self.writers = {}
        self.c = self._client(reader)
        self.c.on_message = self._on_message
        if topic:
            self.c.subscribe(topic, qos=1)
            time.sleep(0.2)

    def _client(self, name):
        c = self.f.mqtt_client(name)
        c.max_inflight_messages_set(8)
        c.connect("127.0.0.1", self.f.port)
        c.loop_start()
        return c

    def _on_message(self, client, userdata, msg):
        props = dict(getattr(msg.properties, "UserProperty", []) or [])
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), props))

    def find(self, needle):
        with self.lock:
            return [m for m in self.messages if needle in m[1]]

    def publish(self, topic, payload, props=None, wait=True, as_=None):
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        name = as_ or topic_owner(self.f, topic)
        if name not in self.writers:
            self.writers[name] = self._client(name)
            time.sleep(0.2)
        p = None
        if props:
            p = Properties(PacketTypes.PUBLISH)
            p.UserProperty = list(props.items())
        info = self.writers[name].publish(topic, payload, qos=1, properties=p)
        if wait:
            info.wait_for_publish(30)
        return info

    def close(self):
        for c in [self.c] + list(self.writers.values()):
            c.loop_stop()
            c.disconnect()


class LinkProxy:
    """Forwards a site's TCP connections to the broker; cut() closes them and refuses more."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.cut_now = False
        self.closed = False
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.cut_now:
                client.close()
                continue
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream), timeout=2)
                up.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns.append((client, up))
            for a, b in ((client, up), (up, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _close(*socks):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def _pump(self, a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        self._close(a, b)

    def cut(self, on):
        self.cut_now = on
        if on:
            with self.lock:
                conns, self.conns = self.conns, []
            for c, u in conns:
                self._close(c, u)

    def close(self):
        self.closed = True
        self.cut(True)
        self._close(self.sock)


# A hub policy that checks no car's result: for tests about something else than verification
# (placement, departures, storage) whose fleets have one car or run non-deterministic jobs on
# cars. tests/integration/test_verify.py tests verification itself.
UNCHECKED_POLICY = "version 1\nverify exec replicas 1\nverify route replicas 1\n"


def on_postgresql():
    """True when the tests keep the hub's state in PostgreSQL (OUTPOST_TEST_STORE)."""
    return os.environ.get("OUTPOST_TEST_STORE") == "postgresql"


def sqlite_only(why):
    """Skips a test when the hub's state is in PostgreSQL: why says what about the SQLite
    file (<hub-dir>/hub.db) it tests, which a PostgreSQL store does not have."""
    return unittest.skipIf(on_postgresql(), f"SQLite store only: {why}")


def _sql_literal(value):
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, bytes):
        return f"'\\x{value.hex()}'::bytea"
    return "'" + str(value).replace("'", "''") + "'"


def _inline_params(sql, params):
    """sql with each `?` outside quotes replaced by its parameter as a literal (psql takes no
    bound parameters; the SQL and values are the test's own)."""
    out, values, quoted = [], list(params), False
    for ch in sql:
        if ch == "'":
            quoted = not quoted
        if ch == "?" and not quoted:
            if not values:
                raise ValueError(f"more ? than parameters in {sql!r}")
            out.append(_sql_literal(values.pop(0)))
        else:
            out.append(ch)
    if values:
        raise ValueError(f"more parameters than ? in {sql!r}")
    return "".join(out)


class Fleet:
    """A broker, a hub and sites. base: where data dirs and logs go."""

    def __init__(self, binary=None, base=None, keep=False):
        self.binary = binary or os.environ.get("OUTPOST_BIN") or os.path.join(ROOT, "build/asan/outpost")
        self.base = base or tempfile.mkdtemp(prefix="outpost-test-")
        os.makedirs(self.base, exist_ok=True)
        self.keep = keep
        self.broker = None
        self.hub = None
        self.sites = {}
        self.port = None
        self.hub_dir = os.path.join(self.base, "hub")
        self.hub_id = "hub"
        self.creds_dir = os.path.join(self.base, "creds")
        self.env = dict(os.environ)
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        # OUTPOST_TEST_STORE=postgresql: the hub's state in a fresh database of a real
        # PostgreSQL server (tests/integration/pgserver.py) instead of <hub-dir>/hub.db
        self.store_url = None
        if os.environ.get("OUTPOST_TEST_STORE") == "postgresql":
            self.store_url = self.postgres_database()

    def postgres_database(self):
        """A fresh database on the test process's PostgreSQL server: its URL."""
        import pgserver
        return pgserver.shared().database()

    # --- the hub's database, whichever store it is in
    def hub_db_path(self):
        """<hub-dir>/hub.db, the default SQLite store (absent under PostgreSQL)."""
        return os.path.join(self.hub_dir, "hub.db")

    def _psql(self, sql, read_only):
        import pgserver
        env = dict(os.environ)
        if read_only:
            env["PGOPTIONS"] = "-c default_transaction_read_only=on"
        psql = shutil.which("psql") or os.path.join(pgserver.BIN, "psql")
        r = subprocess.run([psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
                            self.store_url, "-c", sql], capture_output=True, text=True, env=env,
                           timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {r.stderr}")
        return r.stdout

    def hub_query(self, sql, params=()):
        """The rows (tuples) of one read-only query on the hub's database, whichever store
        the hub uses: <hub-dir>/hub.db opened read-only with sqlite3, or the fleet's
        PostgreSQL database through psql (in a read-only transaction). Write sql in the
        dialect both engines share, with `?` parameters. Under PostgreSQL values come back
        through JSON: integers and text as with sqlite3, a bytea as its "\\x..." text."""
        if not self.store_url:
            db = sqlite3.connect(f"file:{self.hub_db_path()}?mode=ro", uri=True, timeout=10)
            try:
                return db.execute(sql, params).fetchall()
            finally:
                db.close()
        wrapped = ("SELECT COALESCE(json_agg(row_to_json(q)), '[]') FROM ("
                   f"{_inline_params(sql, params)}) q")
        rows = json.loads(self._psql(wrapped, True),
                          object_pairs_hook=lambda pairs: tuple(v for _, v in pairs))
        return list(rows)

    def hub_execute(self, sql, params=()):
        """Runs one statement that changes the hub's database (the hub stopped or not yet
        started: a test setting up or tampering with its state), whichever store it is."""
        if not self.store_url:
            os.makedirs(self.hub_dir, exist_ok=True)
            db = sqlite3.connect(self.hub_db_path(), timeout=10)
            try:
                db.execute(sql, params)
                db.commit()
            finally:
                db.close()
            return
        self._psql(_inline_params(sql, params), False)

    def _pg_admin(self, sql):
        import pgserver
        pgserver.shared().psql("postgres", sql)

    def hub_snapshot(self, name):
        """A copy of the hub's whole database under name (the hub stopped): the file, or a
        PostgreSQL database made from it as a template. hub_restore(name) puts it back."""
        if not self.store_url:
            db = sqlite3.connect(self.hub_db_path())
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
            shutil.copy(self.hub_db_path(), os.path.join(self.base, f"{name}.db"))
            return
        self._pg_admin(f"CREATE DATABASE {self._pg_name(name)} TEMPLATE "
                       f"{self._pg_name(None)}")

    def hub_restore(self, name):
        """The hub's database replaced by the snapshot name (the hub stopped)."""
        if not self.store_url:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(self.hub_db_path() + suffix):
                    os.unlink(self.hub_db_path() + suffix)
            shutil.copy(os.path.join(self.base, f"{name}.db"), self.hub_db_path())
            return
        self._pg_admin(f"DROP DATABASE {self._pg_name(None)}")
        self._pg_admin(f"CREATE DATABASE {self._pg_name(None)} TEMPLATE {self._pg_name(name)}")

    def _pg_name(self, snapshot):
        db = self.store_url.rsplit("/", 1)[1]
        return f"{db}_{snapshot}" if snapshot else db

    def hub_store_bytes(self):
        """Every byte of the hub's stored state, to search for what must never be there:
        hub.db and its WAL, or a pg_dump of the PostgreSQL database (bytea in hex there)."""
        if not self.store_url:
            out = []
            for suffix in ("", "-wal"):
                if os.path.exists(self.hub_db_path() + suffix):
                    with open(self.hub_db_path() + suffix, "rb") as fh:
                        out.append(fh.read())
            return out
        import pgserver
        pg_dump = shutil.which("pg_dump") or os.path.join(pgserver.BIN, "pg_dump")
        r = subprocess.run([pg_dump, "--data-only", "-d", self.store_url], capture_output=True,
                           timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"pg_dump: {r.stderr.decode(errors='replace')}")
        return [r.stdout]

    # --- broker
    def start_broker(self, port=None, bridge=None):
        """mosquitto with TLS and client certificates from the hub's CA (`outpost ca broker`);
        bridge: the name of a bridge the ACL lets in (start_broker_pair)."""
        self.port = port or self.port or free_port()
        bdir = os.path.join(self.base, "broker")
        os.makedirs(bdir, exist_ok=True)
        subprocess.run([self.binary, "ca", "broker", "--hub-dir", self.hub_dir, "--out", bdir,
                        "--hub-id", self.hub_id, "--name", "127.0.0.1", "--name", "localhost"] +
                       (["--bridge", bridge] if bridge else []),
                       check=True, capture_output=True, env=self.env)
        with open(os.path.join(bdir, "acl"), "a") as f:
            f.write(f"\n# TEST ONLY: a broker-wide eavesdropper (a compromised broker's view)\n"
                    f"user {TAP}\ntopic read #\n"
                    f"\n# TEST ONLY: the benchmarks' bare-MQTT baseline\n"
                    f"user {BENCH_USER}\ntopic readwrite bench/#\n")
        conf = os.path.join(bdir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\n"
                    f"cafile {bdir}/ca.crt\n"
                    f"certfile {bdir}/server.crt\n"
                    f"keyfile {bdir}/server.key\n"
                    "tls_version tlsv1.2\n"
                    "require_certificate true\n"
                    "use_identity_as_username true\n"
                    "allow_anonymous false\n"
                    f"acl_file {bdir}/acl\n"
                    "set_tcp_nodelay true\n"
                    "persistence false\n"
                    "max_inflight_messages 1000\n"
                    "max_queued_messages 100000\n"
                    "max_packet_size 8454144\n"
                    "log_type error\nlog_type warning\n")
            if os.geteuid() == 0:   # mosquitto drops root for this user: it must read the key
                f.write(f"user {pwd.getpwuid(os.geteuid()).pw_name}\n")
        self.broker = Proc("broker", ["mosquitto", "-c", conf], os.path.join(bdir, "broker.log"))
        wait_for(self._port_open, 10, 0.05, "mosquitto to listen")
        return self.broker

    def start_broker_pair(self, port_b=None, bridge="bridge-b"):
        """Two mosquitto brokers bridged as in production: A (self.port, self.broker) as
        start_broker makes it, and B (self.port_b, self.broker_b) with the same CA, server
        certificate and ACL, whose bridge `bridge` connects to A over TLS with its own
        certificate (`outpost ca broker --bridge`) and carries each Outpost topic both ways
        at QoS 1 over MQTT 5 (user properties, hence signatures, cross intact).
        bridge=None: two brokers side by side, nothing between them (a hub with
        broker_mode = all)."""
        self.bridge_name = bridge
        self.start_broker(bridge=bridge)
        self.port_b = port_b or getattr(self, "port_b", None) or free_port()
        self.broker_b = self.start_broker_b()
        return self.broker, self.broker_b

    def bridge_topics(self):
        """The topics the bridge carries: each kind of Outpost topic, as the ACL names it."""
        return [f"outpost/v1/{t}" for t in ("site/+/hello", "site/+/state", "site/+/event",
                                            "site/+/result", "site/+/inbox", "op/+/req",
                                            "op/+/resp", "peer/+/+", "meter/+/+")]

    def start_broker_b(self):
        """Broker B of the pair (again after a kill: same port, same bridge)."""
        bdir = os.path.join(self.base, "broker")
        conf = os.path.join(bdir, "mosquitto-b.conf")
        with open(os.path.join(bdir, "mosquitto.conf")) as f:
            text = f.read().replace(f"listener {self.port} ", f"listener {self.port_b} ")
        if self.bridge_name is None:   # side by side: no bridge
            with open(conf, "w") as f:
                f.write(text)
            self.broker_b = Proc("broker-b", ["mosquitto", "-c", conf],
                                 os.path.join(bdir, "broker-b.log"))
            wait_for(lambda: self._port_open(self.port_b), 10, 0.05, "mosquitto B to listen")
            return self.broker_b
        text += (f"\nconnection {self.bridge_name}\n"
                 f"address 127.0.0.1:{self.port}\n"
                 "bridge_protocol_version mqttv50\n"
                 f"remote_clientid {self.bridge_name}\n"
                 f"local_clientid {self.bridge_name}-local\n"
                 "cleansession false\n"
                 "notifications false\n"
                 "try_private true\n"
                 "restart_timeout 1 2\n"
                 f"bridge_cafile {bdir}/ca.crt\n"
                 f"bridge_certfile {bdir}/bridge.crt\n"
                 f"bridge_keyfile {bdir}/bridge.key\n"
                 "bridge_insecure false\n")
        text += "".join(f"topic {t} both 1\n" for t in self.bridge_topics())
        with open(conf, "w") as f:
            f.write(text)
        self.broker_b = Proc("broker-b", ["mosquitto", "-c", conf],
                             os.path.join(bdir, "broker-b.log"))
        wait_for(lambda: self._port_open(self.port_b), 10, 0.05, "mosquitto B to listen")
        wait_for(lambda: self.bridge_up(), 10, 0.1, "the bridge B -> A")
        return self.broker_b

    def bridge_up(self):
        """True once a message published on B arrives on A through the bridge (meter topics:
        the tap reads them on A, a meter credential writes them on B)."""
        import paho.mqtt.client as mqtt
        got = threading.Event()
        topic = f"outpost/v1/meter/probe-site/probe-{time.monotonic_ns()}"
        tap = self.broker_client(f"bridge-check-{os.getpid()}-{time.monotonic_ns()}")
        tap.on_message = lambda c, u, m: got.set()
        tap.loop_start()
        try:
            tap.subscribe(topic, 1)
            time.sleep(0.2)
            meter = self.mqtt_client(topic.rsplit("/", 1)[1])
            meter.connect("127.0.0.1", self.port_b)
            meter.loop_start()
            meter.publish(topic, b"{}", qos=1)
            ok = got.wait(1.0)
            meter.loop_stop()
            meter.disconnect()
            return ok
        except Exception:
            return False
        finally:
            tap.loop_stop()
            tap.disconnect()

    def brokers(self, *order):
        """broker_host for a config: the pair's ports in the order given ("a", "b")."""
        ports = {"a": self.port, "b": self.port_b}
        return ", ".join(f"127.0.0.1:{ports[k]}" for k in order)

    def broker_client(self, client_id):
        """A paho MQTT 5 client connected to this fleet's broker with the rights of a
        broker-wide observer (the test-only eavesdropper TAP: a compromised broker's view);
        not looping yet, so the caller sets its callbacks first."""
        c = self.mqtt_client(TAP, client_id=client_id)
        c.connect("127.0.0.1", self.port)
        return c

    def credential(self, name):
        """A client certificate for name from the hub's CA: (ca, cert, key) paths."""
        out = os.path.join(self.creds_dir, name)
        if not os.path.exists(os.path.join(out, "broker.crt")):
            subprocess.run([self.binary, "ca", "issue", "--hub-dir", self.hub_dir, "--name", name,
                            "--out", out], check=True, capture_output=True, env=self.env)
        return (os.path.join(out, "ca.crt"), os.path.join(out, "broker.crt"),
                os.path.join(out, "broker.key"))

    def mqtt_client(self, name, client_id=None, tls=True, ca=None, **kw):
        """A paho MQTT 5 client (not connected) with name's certificate; name None: none."""
        import paho.mqtt.client as mqtt
        c = mqtt.Client(client_id=client_id or f"{name or 'anon'}-{os.getpid()}-{time.monotonic_ns()}",
                        protocol=mqtt.MQTTv5, **kw)
        if tls:
            ca_file, cert, key = self.credential(name) if name else (self.broker_ca(), None, None)
            c.tls_set(ca_certs=ca or ca_file, certfile=cert, keyfile=key,
                      cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        return c

    def broker_ca(self):
        return os.path.join(self.base, "broker", "ca.crt")

    def _port_open(self, port=None):
        try:
            with socket.create_connection(("127.0.0.1", port or self.port), timeout=0.2):
                return True
        except OSError:
            return False

    # --- hub
    def start_hub(self, policy=None, **conf):
        """The hub, its configuration from conf over the test defaults; policy: the text of
        <hub-data>/policy. Capacity probes are off unless asked for (probe="on"): a test fleet
        runs many sites on one machine, each claiming cores it shares with the others, which
        the probe would rightly call over-claiming (and each probe would cost the machine a
        few core-seconds)."""
        if policy is not None:
            os.makedirs(self.hub_dir, exist_ok=True)
            with open(os.path.join(self.hub_dir, "policy"), "w") as f:
                f.write(policy)
        path = os.path.join(self.base, "hub.conf")
        values = {"hub_id": "hub", "broker_port": self.port, "site_lost_after_ms": 3000,
                  "lease_ms": 8000, "probe": "off"}
        if self.store_url:
            values["store"] = self.store_url
        values.update(conf)
        with open(path, "w") as f:
            for k, v in values.items():
                f.write(f"{k} = {v}\n")
        self.hub = Proc("hub", [self.binary, "hub", "--data-dir", self.hub_dir, "--config", path],
                        os.path.join(self.base, "hub.log"), self.env)
        wait_for(lambda: os.path.exists(os.path.join(self.hub_dir, "cli.conf")) and
                 " started (pubkey " in self.hub.log_text() or not self.hub.alive(), 20, 0.05,
                 "hub to start")
        if not self.hub.alive():
            raise RuntimeError("hub exited:\n" + self.hub.log_text())
        return self.hub

    # --- CLI
    def cli(self, *args, check=True, timeout=60, input=None):
        argv = [self.binary, *args[:1], "--hub-dir", self.hub_dir, *args[1:]]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env,
                           input=input)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def cli_json(self, *args, **kw):
        r = self.cli(args[0], "--json", *args[1:], **kw)
        return json.loads(r.stdout)

    def token(self, cls, site):
        """A join bundle (opj1.) for site: its token and broker certificate."""
        return self.cli("token", "create", "--class", cls, "--site", site).stdout.strip()

    # --- sites
    def site_conf(self, name, **conf):
        path = os.path.join(self.base, f"{name}.conf")
        values = {"site_id": name, "broker_port": self.port, "cores": 2, "memory_mb": 2048,
                  "power_budget_watts": 200, "watts_per_core": 15, "idle_watts": 10,
                  "heartbeat_ms": 500, "resend_ms": 1000}
        values.update(conf)
        with open(path, "w") as f:
            for k, v in values.items():
                f.write(f"{k} = {v}\n")
        return path

    def start_site(self, name, cls=None, token=None, wait=True, **conf):
        path = self.site_conf(name, **conf)
        ddir = os.path.join(self.base, "sites", name)
        argv = [self.binary, "site", "--config", path, "--data-dir", ddir]
        if token is None and cls is not None:
            token = self.token(cls, name)
        if token:
            tpath = os.path.join(self.base, f"{name}.token")
            with open(tpath, "w") as f:
                f.write(token + "\n")
            argv += ["--token-file", tpath]
        p = Proc(name, argv, os.path.join(self.base, f"{name}.log"), self.env)
        self.sites[name] = p
        if wait:
            wait_for(lambda: self.site_status(name) in ("alive",) or not p.alive(), 30, 0.1,
                     f"site {name} to be alive")
            if not p.alive():
                raise RuntimeError(f"site {name} exited:\n" + p.log_text())
        return p

    def site_status(self, name):
        try:
            sites = self.cli_json("sites", timeout=15)["sites"]
        except Exception:
            return None
        for s in sites:
            if s["id"] == name:
                return s["status"]
        return None

    def job(self, job_id):
        return self.cli_json("job", str(job_id))

    def wait_jobs_terminal(self, ids, timeout=60):
        terminal = ("succeeded", "failed", "cancelled")

        def done():
            states = {i: self.job(i)["job"]["state"] for i in ids}
            return states if all(s in terminal for s in states.values()) else None
        return wait_for(done, timeout, 0.3, f"jobs {ids} to finish")

    def stop(self):
        procs = list(self.sites.values()) + [p for p in (self.hub, self.broker,
                                                          getattr(self, "broker_b", None)) if p]
        codes = {}
        for p in procs:
            codes[p.name] = p.stop()
        if not self.keep:
            shutil.rmtree(self.base, ignore_errors=True)
        return codes
