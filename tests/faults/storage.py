"""Storage faults for a fleet under test (tests/faults/run.py and
tests/integration/test_storage_faults.py): a data dir that runs out of space and gets it
back, a SQLite file with damaged pages, and the checks made after each.

A full disk is a real one where the driver may mount file systems (root with
CAP_SYS_ADMIN): each data dir is a tmpfs, shrunk to what it holds to start an episode and
grown back to end it. Elsewhere (an unprivileged run, a container that may not mount) the
ENOSPC shim (tests/tools/enospc_shim.c, built as build/tools/enospc_shim.so) is preloaded
into every outpost process of the fleet, and an episode is a line in its control file:
writes under that dir fail with ENOSPC until the line is gone. Nothing in the outpost
binary knows about either.
"""
import os
import shutil
import sqlite3
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIM = os.path.join(ROOT, "build", "tools", "enospc_shim.so")
ROOMY = "256m"  # a data dir's tmpfs outside episodes: room for a 1,000-job run


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                   check=True)


def resize_tmpfs(path, size):
    subprocess.run(["mount", "-o", f"remount,size={size}", path], check=True,
                   capture_output=True)


def can_mount():
    """Whether this process may mount a tmpfs (root alone is not enough in a container)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    probe = tempfile.mkdtemp(prefix="outpost-mount-probe-")
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe],
                           capture_output=True)
        if r.returncode != 0:
            return False
        subprocess.run(["umount", probe], capture_output=True)
        return True
    finally:
        os.rmdir(probe)


def btree_pages(path, table=None):
    """Page numbers of table's B-tree in a SQLite file (the largest one when None), read
    through SQLite's dbstat; [] where dbstat is not compiled in."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            if table is None:
                row = db.execute("SELECT name FROM dbstat WHERE name NOT LIKE 'sqlite_%' "
                                 "GROUP BY name ORDER BY COUNT(*) DESC LIMIT 1").fetchone()
                if not row:
                    return []
                table = row[0]
            return [r[0] for r in db.execute("SELECT pageno FROM dbstat WHERE name = ? "
                                             "ORDER BY pageno", (table,))]
        finally:
            db.close()
    except sqlite3.Error:
        return []


def corrupt_pages(path, count=4, table=None):
    """XORs count pages of a SQLite file with 0x5A: pages of table's B-tree (by default the
    largest one), spread over it, so that the damage lands where SQLite's quick_check looks
    (a page on the free list would go unnoticed); pages in the middle of the file where
    dbstat is missing. Returns the page numbers (1-based)."""
    with open(path, "rb") as fh:
        header = fh.read(100)
    page_size = int.from_bytes(header[16:18], "big") if len(header) >= 18 else 4096
    page_size = 65536 if page_size == 1 else (page_size or 4096)
    size = os.path.getsize(path)
    pages = btree_pages(path, table)
    pages = [p for p in pages if p > 1]  # page 1 holds the header: a different failure
    if len(pages) > count:
        step = len(pages) / count
        pages = [pages[int(i * step)] for i in range(count)]
    if not pages:
        total = size // page_size
        first = max(2, total // 2 - count // 2)
        pages = list(range(first, min(total, first + count) + 1))[:count]
    with open(path, "r+b") as fh:
        for p in pages:
            fh.seek((p - 1) * page_size)
            data = bytearray(fh.read(page_size))
            for i in range(len(data)):
                data[i] ^= 0x5A
            fh.seek((p - 1) * page_size)
            fh.write(data)
    return pages


def restore_db(db_path, backup_path):
    """The documented restore (docs/operations.md, Backups): the damaged file moved aside
    with its -wal and -shm, the backup copied in its place."""
    for extra in ("", "-wal", "-shm"):
        if os.path.exists(db_path + extra):
            os.replace(db_path + extra, db_path + extra + ".damaged")
    shutil.copyfile(backup_path, db_path)


def verify_site_log(fleet, name):
    """`outpost audit verify` on a site's database, checked with the site's own key: the
    command reads the signer from a cli.conf, so one is written that names the site (a
    site's log is signed by the site, not the hub). Returns the CompletedProcess."""
    site_dir = os.path.join(fleet.base, "sites", name)
    with open(os.path.join(site_dir, "identity", "identity.pub")) as fh:
        pubkey = fh.read().strip()
    conf = os.path.join(fleet.base, f"{name}-log-signer.conf")
    with open(conf, "w") as fh:
        fh.write(f"hub_id = {name}\nhub_pubkey = {pubkey}\n")
    return subprocess.run([fleet.binary, "audit", "--hub-conf", conf, "verify", "--db",
                           os.path.join(site_dir, "site.db")],
                          capture_output=True, text=True, timeout=120, env=fleet.env)


class FullDisk:
    """Data dirs of one fleet that can be made to run out of space, and get it back.

    Call prepare(dir) for each data dir before anything is written there (it mounts the
    tmpfs), and before the fleet's processes start (the shim is loaded through fleet.env).
    mode: "tmpfs", "shim", or None to pick tmpfs where the driver may mount."""

    def __init__(self, fleet, mode=None):
        self.f = fleet
        self.mode = mode or ("tmpfs" if can_mount() else "shim")
        self.mounted = []
        self.full = []
        if self.mode == "shim":
            if not os.path.exists(SHIM):
                raise RuntimeError(f"{SHIM} is missing: make {os.path.relpath(SHIM, ROOT)}")
            self.control = os.path.join(os.path.realpath(fleet.base), "enospc-control")
            env = fleet.env
            env["LD_PRELOAD"] = " ".join(x for x in (SHIM, env.get("LD_PRELOAD")) if x)
            env["ENOSPC_SHIM_CONTROL"] = self.control
            # the shim comes before the ASan runtime in the library list
            asan = env.get("ASAN_OPTIONS", "")
            env["ASAN_OPTIONS"] = ":".join(x for x in (asan, "verify_asan_link_order=0") if x)

    def prepare(self, path):
        if self.mode == "tmpfs":
            mount_tmpfs(path, ROOMY)
            self.mounted.append(path)
        else:
            os.makedirs(path, exist_ok=True)

    def fill(self, path):
        """From now on nothing more fits in path."""
        if self.mode == "tmpfs":
            self._shrink(path)
        self.full.append(os.path.realpath(path))
        if self.mode == "shim":
            self._write_control()

    def free(self, path):
        """Space returns."""
        real = os.path.realpath(path)
        if real in self.full:
            self.full.remove(real)
        if self.mode == "tmpfs":
            resize_tmpfs(path, ROOMY)
        else:
            self._write_control()

    def _shrink(self, path):
        """The tmpfs's size set to what it holds now; usage may grow between the look and
        the remount (the remount then fails: tmpfs refuses to shrink below its use), so a
        few tries."""
        for _ in range(20):
            st = os.statvfs(path)
            used = (st.f_blocks - st.f_bfree) * st.f_frsize
            r = subprocess.run(["mount", "-o", f"remount,size={max(used, 4096)}", path],
                               capture_output=True)
            if r.returncode == 0:
                return
        raise RuntimeError(f"could not shrink the tmpfs on {path}")

    def _write_control(self):
        if not self.full:
            if os.path.exists(self.control):
                os.unlink(self.control)
            return
        tmp = self.control + ".tmp"
        with open(tmp, "w") as fh:
            fh.write("".join(d + "\n" for d in self.full))
        os.replace(tmp, self.control)  # a writer never sees half a list

    def close(self, keep_copies=False):
        """Unmounts every tmpfs (a copy of its files beside it first when keep_copies, for a
        failed run's analysis)."""
        for path in self.full[:]:
            self.free(path)
        for path in reversed(self.mounted):
            if keep_copies:
                shutil.copytree(path, path + ".kept", dirs_exist_ok=True, symlinks=True,
                                ignore=shutil.ignore_patterns("*.sock"))
            subprocess.run(["umount", "-l", path], capture_output=True)
        self.mounted = []


def outbox_left(base, sites):
    """Results still in the sites' outboxes (site stores under base/sites/NAME), read only."""
    left = 0
    for name, _ in sites:
        path = os.path.join(base, "sites", name, "site.db")
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
            left += db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    return left
