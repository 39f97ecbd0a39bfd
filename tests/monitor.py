#!/usr/bin/env python3
"""The kernel monitor driven through the serial console (src/init/monitor.rs).

Boots `scripts/run -m 256M --smp 2` (no --batch, so the kernel ends at the `mm> ` prompt)
with QEMU's serial console on a pipe, runs every command, and checks each answer's format
and its numbers against the kernel's own: buddyinfo's free blocks sum to meminfo's MemFree,
an `alloc` takes exactly 2^order pages and `free` gives them back, `page` of the block says
it is allocated and of a buddy block that it is free, slabinfo/vmallocinfo/zoneinfo/
pagetypeinfo/memblock/ptdump/log print Linux's headers, bad commands and arguments get one
`mm: ` line and leave MemFree unchanged, `stress 1` reports 0 pattern errors with the free
pages restored, and `poweroff` ends QEMU with status 0. Line editing: a backspace and a
history recall (up arrow) are sent as raw bytes.

    python3 tests/monitor.py        # exit 0 if every check passed
"""
import os
import re
import select
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
failures = 0


def check(ok, what):
    global failures
    print(("ok - " if ok else "FAIL - ") + what)
    if not ok:
        failures += 1


class Console:
    def __init__(self):
        self.p = subprocess.Popen(
            [os.path.join(ROOT, "scripts/run"), "-m", "256M", "--smp", "2"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
        self.buf = b""

    def until(self, tok, timeout=120):
        end = time.time() + timeout
        while tok not in self.buf:
            left = end - time.time()
            r, _, _ = select.select([self.p.stdout], [], [], max(0, left))
            if not r:
                raise SystemExit("monitor: timeout waiting for %r; last output:\n%s"
                                 % (tok, self.buf[-2000:].decode(errors="replace")))
            d = os.read(self.p.stdout.fileno(), 65536)
            if not d:
                raise SystemExit("monitor: QEMU ended; last output:\n%s"
                                 % self.buf[-2000:].decode(errors="replace"))
            self.buf += d
        i = self.buf.index(tok) + len(tok)
        got, self.buf = self.buf[:i], self.buf[i:]
        return got.decode(errors="replace")

    def send(self, raw):
        self.p.stdin.write(raw)
        self.p.stdin.flush()

    def cmd(self, line, timeout=120):
        """Runs one command; returns its output lines (the echo and the prompt removed)."""
        self.send(line.encode() + b"\r")
        text = self.until(b"mm> ", timeout)
        lines = [l.rstrip("\r") for l in text.split("\n")]
        return [l for l in lines[1:] if l != "mm> " and l.strip() != ""]


def meminfo(c):
    out = {}
    for l in c.cmd("meminfo"):
        m = re.match(r"(\w+):\s+(\d+) kB$", l)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def buddy_free_kb(lines):
    total = 0
    for l in lines:
        m = re.match(r"Node (\d+), zone\s+(\w+)((?:\s+\d+){11})\s*$", l)
        if not m:
            return None
        counts = [int(x) for x in m.group(3).split()]
        total += sum(n << o for o, n in enumerate(counts)) * 4
    return total


def main():
    c = Console()
    c.until(b"mm> ")
    helps = c.cmd("help")
    names = [l.split()[0] for l in helps]
    for want in ("meminfo", "buddyinfo", "pagetypeinfo", "zoneinfo", "slabinfo", "vmallocinfo",
                 "memblock", "ptdump", "page", "alloc", "free", "kmalloc", "kfree", "vmalloc",
                 "vfree", "held", "report", "stress", "log", "poweroff"):
        check(want in names, "help lists %s" % want)

    m0 = meminfo(c)
    check(set(m0) >= {"MemTotal", "MemFree", "MemAvailable"}, "meminfo: MemTotal, MemFree, MemAvailable (%s)" % m0)
    bi = c.cmd("buddyinfo")
    bkb = buddy_free_kb(bi)
    check(bkb is not None, "buddyinfo: Linux's /proc/buddyinfo lines (%d)" % len(bi))
    zi = c.cmd("zoneinfo")
    check(any(l.startswith("Node 0, zone") for l in zi) and any("pages free" in l for l in zi),
          "zoneinfo: Node/zone headers and 'pages free'")
    zone_free = sum(int(l.split()[2]) for l in zi if l.strip().startswith("pages free"))
    check(zone_free * 4 == m0["MemFree"], "zoneinfo's pages free sum (%d kB) = MemFree (%d kB)" % (zone_free * 4, m0["MemFree"]))
    # MemFree is NR_FREE_PAGES, which (as in Linux) leaves out the per-CPU lists' pages:
    # exactly the buddy's free blocks.
    check(bkb == m0["MemFree"], "buddyinfo's free blocks (%s kB) sum to MemFree (%d kB)" % (bkb, m0["MemFree"]))
    pti = c.cmd("pagetypeinfo")
    check(any(l.startswith("Page block order:") for l in pti) and any("Number of blocks type" in l for l in pti),
          "pagetypeinfo: Linux's headers")
    si = c.cmd("slabinfo")
    check(bool(si) and si[0].startswith("slabinfo - version: 2.1") and any(l.startswith("kmalloc-128 ") for l in si),
          "slabinfo: version 2.1 header and kmalloc-128 (arm64's smallest kmalloc cache)")
    vi = c.cmd("vmallocinfo")
    check(any(re.match(r"0x[0-9a-f]{16}-0x[0-9a-f]{16}\s+\d+ ", l) for l in vi), "vmallocinfo: Linux's range lines")
    mb = c.cmd("memblock")
    check(mb[:1] == ["MEMBLOCK configuration:"] and any(l.startswith(" memory.cnt") for l in mb)
          and any(l.startswith(" reserved[") for l in mb), "memblock: memblock_dump_all's lines")
    pt = c.cmd("ptdump")
    check(any("Linear Mapping start" in l for l in pt) and any("vmalloc() area" in l for l in pt), "ptdump: the markers")
    lg = c.cmd("log")
    check(any("Booting Linux on physical CPU" in l for l in lg) and any("mm: init complete" in l for l in lg),
          "log: the boot log from its first line to the end")
    # RAM's place in the linear map moves with QEMU's kaslr-seed: take it from the layout.
    lm = re.search(r"memory  : (0x[0-9a-f]+)", "\n".join(lg))
    pt1 = c.cmd("ptdump %s" % (lm.group(1) if lm else "0xffff000000000000"))
    check(lm is not None and pt1[0].startswith("PGD[") and "->" in pt1[-1],
          "ptdump VA: PGD down to a leaf at RAM's linear address (%s)" % pt1[-1:])

    # alloc/free: exactly 2^order pages, back afterwards. Order 4: above the orders the
    # per-CPU lists cache, whose refills and frees move whole batches out of MemFree (as
    # NR_FREE_PAGES does in Linux).
    m1 = meminfo(c)
    a = c.cmd("alloc 4 GFP_KERNEL|__GFP_ZERO")
    mm = re.match(r"order 4 block: pfn (0x[0-9a-f]+) phys (0x[0-9a-f]+) va (0x[0-9a-f]+)$", a[0]) if a else None
    check(mm is not None, "alloc 4: pfn, phys, va (%s)" % a)
    if mm:
        va = mm.group(3)
        m2 = meminfo(c)
        taken = m1["MemFree"] - m2["MemFree"]
        check(taken == 64, "alloc 4 took 64 kB from MemFree (%d)" % taken)
        pg = c.cmd("page " + va)
        check(any(l == "allocated" for l in pg) and any("refcount:1" in l for l in pg),
              "page VA of the block: refcount 1, allocated (%s)" % pg)
        pg = c.cmd("page " + mm.group(1))
        check(pg[0].startswith("page:") and "pfn:%s" % mm.group(1) in pg[0], "page PFN names the same page")
        bad = c.cmd("free %s 3" % va)
        check(bad == ["mm: that block was allocated with another order"], "free with the wrong order refused (%s)" % bad)
        fr = c.cmd("free %s 4" % va)
        check(fr == ["freed order 4 block at %s" % va], "free %s 4" % va)
        m3 = meminfo(c)
        check(m3["MemFree"] == m1["MemFree"], "MemFree back after free (%d, %d)" % (m3["MemFree"], m1["MemFree"]))
        again = c.cmd("free %s 4" % va)
        check(again[0].startswith("mm: not a block"), "a second free of the block refused")

    # kmalloc/kfree, vmalloc/vfree.
    k = c.cmd("kmalloc 100")
    km = re.match(r"kmalloc\(100\) = (0x[0-9a-f]+) \(ksize 128\)$", k[0]) if k else None
    check(km is not None, "kmalloc 100: address and ksize 128 (%s)" % k)
    if km:
        check(c.cmd("kfree " + km.group(1)) == ["kfree(%s)" % km.group(1)], "kfree")
    v = c.cmd("vmalloc 65536")
    vm = re.match(r"vmalloc\(65536\) = (0x[0-9a-f]+)$", v[0]) if v else None
    check(vm is not None, "vmalloc 65536 (%s)" % v)
    if vm:
        vi2 = c.cmd("vmallocinfo")
        check(any(l.startswith(vm.group(1)) and " 69632 " in l for l in vi2),
              "vmallocinfo lists the area with its guard page (69632 bytes)")
        pv = c.cmd("page " + vm.group(1))
        check(any(l == "allocated" for l in pv), "page of a vmalloc address: its page, allocated")
        check(c.cmd("vfree " + vm.group(1)) == ["vfree(%s)" % vm.group(1)], "vfree")

    # Bad commands and arguments: one line, nothing changed.
    m4 = meminfo(c)
    for bad, want in (("bogus", "mm: unknown command"), ("alloc 11", "mm: order above MAX_ORDER"),
                      ("alloc x", "mm: usage: alloc"), ("alloc 0 GFP_NOPE", "mm: unknown GFP flag"),
                      ("free 0xffff000000400000 0", "mm: not a block"), ("kfree 0x1234", "mm: not a block"),
                      ("vfree 0xffff800008000000", "mm: not a block"), ("kmalloc 0", "mm: size must be"),
                      ("kmalloc 99999999", "mm: size must be"), ("page 0x1", "mm: no struct page"),
                      ("page zzz", "mm: not a number"), ("stress 0", "mm: SECONDS must be"),
                      ("ptdump nope", "mm: VA: not a number"), ("meminfo extra args here too", "mm: too many arguments")):
        got = c.cmd(bad)
        check(len(got) == 1 and got[0].startswith(want), "%r -> %r (%s)" % (bad, want, got))
    check(meminfo(c)["MemFree"] == m4["MemFree"], "MemFree unchanged by the bad commands")

    # Line editing: a typo erased with backspace, then the history.
    c.send(b"memin\x7f\x7finfo\r")
    t = c.until(b"mm> ")
    check("MemFree:" in t, "backspace edits the line (memin<BS><BS>info ran meminfo)")
    c.send(b"\x1b[A\r")
    t = c.until(b"mm> ")
    check("MemFree:" in t, "the up arrow recalls the last command")

    st = c.cmd("stress 1", timeout=300)
    sm = re.match(r"stress: (\d+) ops on (\d+) CPUs in 1 s, (\d+) pattern errors, (\d+) refused allocations; free pages (\d+) before, (\d+) after$", st[0]) if st else None
    check(sm is not None and int(sm.group(1)) > 0 and sm.group(2) == "2" and sm.group(3) == "0" and sm.group(5) == sm.group(6),
          "stress 1: work on both CPUs, no pattern errors, free pages restored (%s)" % st)

    c.send(b"poweroff\r")
    rc = c.p.wait(timeout=60)
    check(rc == 0, "poweroff ends QEMU with status 0 (%d)" % rc)
    print("monitor: %d failed" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
