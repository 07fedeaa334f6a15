"""Attacks from inside a job, against a real fleet (broker, hub, one site).

Each test is one thing a hostile job tried: it fails if the attack gets in
and prints nothing when it is kept out. The job is a shell script run by the
site's sandbox like any other exec job."""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Fleet, wait_for  # noqa: E402

SITE = "dc-1"
KEY_MARK = "PRIVATE KEY"  # what a printed key file would show


def proc_running(marker):
    """1 if a live process (not a zombie) has marker in its command line."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmd and state not in ("Z", "X"):
            return True
    return False


def tree_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


class JobAttackTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.f = Fleet()
        cls.f.start_broker()
        cls.f.start_hub()
        cls.f.start_site(SITE, "dc", cores=4, memory_mb=4096, max_jobs=4, job_disk_mb=16)
        cls.data = os.path.join(cls.f.base, "sites", SITE)
        cls.agent_pid = cls.f.sites[SITE].p.pid

    @classmethod
    def tearDownClass(cls):
        cls.f.stop()

    def submit(self, script, *extra):
        r = self.f.cli("submit", "--quiet", "--wall-s", "60", *extra, "--", "sh", "-c", script)
        return int(r.stdout.strip())

    def run_job(self, script, *extra):
        jid = self.submit(script, *extra)
        self.f.wait_jobs_terminal([jid], 90)
        return self.f.cli_json("result", str(jid))

    def assert_kept_out(self, res, *secrets):
        text = res.get("stdout", "") + res.get("stderr", "")
        for s in secrets:
            self.assertNotIn(s, text, f"the job got in:\n{text}")

    def test_reads_site_identity_key(self):
        key = os.path.join(self.data, "identity", "identity.key")
        self.assertTrue(os.path.exists(key))
        paths = ["../../identity/identity.key", key,
                 f"/proc/{self.agent_pid}/root{key}", f"/proc/1/root{key}",
                 f"/proc/{self.agent_pid}/cwd/identity/identity.key"]
        script = "; ".join(f"cat '{p}' 2>/dev/null | od -An -c | head -3" for p in paths)
        script += f"; cat /proc/{self.agent_pid}/environ /proc/1/environ 2>/dev/null | tr '\\0' '\\n'"
        res = self.run_job(script)
        with open(key, "rb") as fh:
            secret = fh.read()
        shown = res.get("stdout", "")
        self.assertEqual(shown.strip(), "", f"the job read something:\n{shown}")
        self.assertNotIn(secret[:8].hex(), shown.replace(" ", ""))

    def test_reads_site_db(self):
        db = os.path.join(self.data, "site.db")
        self.assertTrue(os.path.exists(db))
        res = self.run_job(f"head -c 16 ../../site.db '{db}' /proc/1/root{db} 2>/dev/null")
        self.assert_kept_out(res, "SQLite format")

    def test_lists_and_writes_other_jobs_work_dir(self):
        victim = self.submit("echo confidential-input > mine.txt; sleep 20")
        work = os.path.join(self.data, "work")
        wait_for(lambda: os.path.exists(os.path.join(work, f"{victim}-1", "mine.txt")), 30, 0.2,
                 "the victim job to start")
        other = os.path.join(work, f"{victim}-1")
        res = self.run_job(f"ls -la .. '{work}' '{other}' 2>/dev/null; cat ../{victim}-1/mine.txt "
                           f"'{other}/mine.txt' 2>/dev/null; echo x > ../{victim}-1/planted; "
                           f"echo x > '{other}/planted2'; true")
        self.assertNotIn("confidential-input", res["stdout"])
        self.assertNotIn("mine.txt", res["stdout"])
        self.assertNotIn(f"{victim}-1", res["stdout"], "the job listed another job's work dir")
        self.assertFalse(os.path.exists(os.path.join(other, "planted")))
        self.assertFalse(os.path.exists(os.path.join(other, "planted2")))
        self.f.cli("cancel", str(victim), check=False)

    def test_writes_outside_its_work_dir(self):
        tag = f"pwned-{os.getpid()}-{time.monotonic_ns()}"  # never a leftover of another run
        marks = [f"../../{tag}-rel", os.path.join(self.data, f"{tag}-abs"),
                 os.path.join(self.f.base, f"{tag}-base"), f"/{tag}-root", f"/usr/{tag}",
                 f"/proc/{self.agent_pid}/root{self.data}/{tag}-proc"]
        script = "; ".join(f"echo x > '{m}' 2>/dev/null" for m in marks) + "; true"
        self.run_job(script)
        on_host = marks[1:5] + [os.path.join(self.data, f"{tag}-rel"),
                                os.path.join(self.data, f"{tag}-proc")]
        written = [m for m in on_host if os.path.exists(m)]
        for m in written:  # a vulnerable build must not leave them behind
            os.unlink(m)
        self.assertEqual(written, [], "the job wrote outside its work dir")

    def test_reaches_local_socket(self):
        sock = os.path.join(self.data, "local.sock")
        self.assertTrue(os.path.exists(sock))
        script = ("python3 -c \"import socket,sys\n"
                  f"for p in ['../../local.sock', '{sock}', '/proc/{self.agent_pid}/root{sock}']:\n"
                  "    s = socket.socket(socket.AF_UNIX)\n"
                  "    try:\n"
                  "        s.connect(p); print('connected', p)\n"
                  "    except OSError as e:\n"
                  "        print('refused', p, e.errno)\n\"")
        res = self.run_job(script)
        self.assertIn("refused", res["stdout"])
        self.assert_kept_out(res, "connected")

    def test_root_or_capabilities(self):
        res = self.run_job("id -u; id -g; grep -E '^Cap(Eff|Prm|Bnd|Amb)' /proc/self/status")
        lines = res["stdout"].split("\n")
        self.assertNotEqual(lines[0], "0", res["stdout"])
        self.assertNotEqual(lines[1], "0", res["stdout"])
        self.assertNotEqual(int(lines[0]), os.getuid())
        for line in lines[2:6]:
            self.assertTrue(line.endswith("0000000000000000"), res["stdout"])

    def test_300_background_processes(self):
        res = self.run_job("i=0; while [ $i -lt 300 ]; do sleep 30.777 2>/dev/null & "
                           "i=$((i+1)); done 2>/dev/null; ls /proc | grep -c '^[0-9]'")
        count = int(res["stdout"].strip() or 0)
        self.assertLess(count, 300, "300 background processes started")
        self.assertFalse(proc_running("30.777"), "background processes outlived the job")

    def test_data_dir_filled(self):
        before = tree_bytes(self.data)
        tag = f"fill-{os.getpid()}-{time.monotonic_ns()}"
        mib = "head -c 1048576 /dev/zero"
        targets = ["../..", "..", self.data, "/tmp", "."]
        script = "; ".join(f'for i in $(seq 40); do {mib} > "{t}/{tag}-$i" 2>/dev/null || break; done'
                           for t in targets) + "; true"
        self.run_job(script)
        for i in range(1, 41):  # a vulnerable build must not leave the host's /tmp full
            if os.path.exists(f"/tmp/{tag}-{i}"):
                os.unlink(f"/tmp/{tag}-{i}")
        wait_for(lambda: not os.listdir(os.path.join(self.data, "work")), 30, 0.2,
                 "the work dir to be removed")
        grown = tree_bytes(self.data) - before
        self.assertLess(grown, 8 * 1024 * 1024, f"{grown} bytes left in the data dir")
        self.assertFalse([n for n in os.listdir(self.data) if n.startswith(tag)])

    def test_work_dir_over_quota(self):
        res = self.run_job("for i in $(seq 40); do head -c 1048576 /dev/zero > \"big-$i\" || break; "
                           "done; sleep 10; echo survived")
        self.assertNotIn("survived", res.get("stdout", ""), "40 MiB written past a 16 MiB quota")
        self.assertTrue(res.get("killed_quota"), json.dumps(res)[:300])

    def test_setsid_child_survives(self):
        res = self.run_job("setsid sh -c 'sleep 45.123' >/dev/null 2>&1 < /dev/null & "
                           "nohup sleep 44.321 >/dev/null 2>&1 & sleep 0.3; echo started")
        self.assertEqual(res["stdout"], "started\n")
        time.sleep(0.5)
        self.assertFalse(proc_running("45.123"), "a setsid child outlived its job")
        self.assertFalse(proc_running("44.321"), "a background child outlived its job")

    def test_nul_in_command(self):
        spec = '{"kind":"exec","command":["tr\\u0000ue"],"resources":{"wall_s":30}}'
        r = self.f.cli("submit", "--quiet", "-", check=False, input=spec)
        if r.returncode != 0:
            self.assertIn("NUL", r.stderr + r.stdout)
            return
        jid = int(r.stdout.strip())
        self.f.wait_jobs_terminal([jid], 60)
        res = self.f.cli_json("result", str(jid))
        self.fail(f"a command with a NUL was accepted and ran: {json.dumps(res)[:300]}")


if __name__ == "__main__":
    unittest.main()
