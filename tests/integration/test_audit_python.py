"""Independent check of the Merkle tree core: recompute roots and proofs with
Python's hashlib alone (RFC 6962 definitions) and compare them byte for byte
with what src/audit.c produced (tests/tools/audit_vectors.c)."""
import hashlib
import json
import os
import subprocess
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "build", "asan", "tools", "audit_vectors")


def leaf(entry):
    return hashlib.sha256(b"\x00" + entry).digest()


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n):
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def mth(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return node(mth(leaves[:k]), mth(leaves[k:]))


def path(m, leaves):
    if len(leaves) <= 1:
        return []
    k = split(len(leaves))
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m, leaves, b):
    n = len(leaves)
    if m == n:
        return [] if b else [mth(leaves)]
    k = split(n)
    if m <= k:
        return subproof(m, leaves[:k], b) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


class AuditCrossCheck(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        out = subprocess.run([TOOL], capture_output=True, text=True, check=True, timeout=60)
        cls.c = json.loads(out.stdout)
        cls.leaves = [leaf(b"entry-%d" % i) for i in range(1000)]

    def test_roots_for_known_sizes(self):
        for size in (0, 1, 2, 3, 7, 8, 1000):
            self.assertEqual(self.c["roots"][str(size)], mth(self.leaves[:size]).hex(), size)
        # RFC 6962's empty tree is SHA-256 of nothing.
        self.assertEqual(self.c["roots"]["0"], hashlib.sha256(b"").hexdigest())

    def test_inclusion_proofs(self):
        self.assertGreaterEqual(len(self.c["inclusion"]), 10)
        for p in self.c["inclusion"]:
            want = [h.hex() for h in path(p["index"], self.leaves[:p["size"]])]
            self.assertEqual(p["proof"], want, (p["index"], p["size"]))

    def test_consistency_proofs(self):
        self.assertGreaterEqual(len(self.c["consistency"]), 10)
        for p in self.c["consistency"]:
            want = [h.hex() for h in subproof(p["old"], self.leaves[:p["size"]], True)]
            self.assertEqual(p["proof"], want, (p["old"], p["size"]))


if __name__ == "__main__":
    unittest.main()
