#!/usr/bin/env python3
"""The GDB helpers (scripts/gdb-py/) against the kernel's own reports.

1. A halted kernel, `scripts/gdb --batch` (-m 256M, `mm_reports=buddyinfo memblock=debug
   mminit_loglevel=1`, the serial console kept with --console), stopped at four stages:
   - paging_init: memblock exists and no buddy: mm-buddyinfo and mm-zoneinfo say so in one
     line; mm-memblock's memory array is the device tree's memory node the kernel printed, and
     its sizes add up;
   - psci_dt_init (right after bootmem_init's `memblock=debug` dump): mm-memblock prints
     exactly the kernel's dump;
   - mem_init (after build_all_zonelists printed `mminit::zoneinfo`): mm-zoneinfo prints
     exactly the kernel's report; still no buddy;
   - kernel_init (after `mm_reports=buddyinfo`): mm-buddyinfo prints exactly the kernel's
     /proc/buddyinfo, whose blocks add up to mm-zoneinfo's free pages; mm-dmesg holds every
     console line in order.
   At every stop the backtrace ends at the first frame (__primary_switched_call), without
   "Backtrace stopped".
   Then a fault through the exception vectors: at kernel_init, a few instructions in, GDB
   writes a load from an unmapped address; at el1_exception the backtrace passes the pt_regs
   frame of __vector_4 to the faulting pc and still ends at __primary_switched_call.
2. A running kernel at the monitor's `mm> ` prompt (scripts/run --gdb; `scripts/gdb --attach`
   resumes it, then halts it again): the monitor prints `page` of several PFNs and VAs (an
   allocated block, a vmalloc address, the kernel image, the first and last RAM page),
   buddyinfo, memblock, zoneinfo, slabinfo, vmallocinfo and ptdump, then mm-page,
   mm-buddyinfo, mm-memblock, mm-zoneinfo, mm-slabinfo, mm-vmallocinfo and mm-ptdump print
   the same lines; mm-break-stages puts its breakpoints where scripts/gdb's --break did.

    python3 tests/gdb.py        # exit 0 if every check passed
"""
import os
import random
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GDB = os.path.join(ROOT, "scripts/gdb")
failures = 0


def check(ok, what, got=None, want=None):
    global failures
    print(("ok - " if ok else "FAIL - ") + what)
    if not ok:
        failures += 1
        if got is not None:
            print("  got:\n    " + "\n    ".join(got))
        if want is not None:
            print("  want:\n    " + "\n    ".join(want))


def strip_ts(line):
    """A console line without printk's `[    0.000000] ` prefix, or None if it has none."""
    m = re.match(r"^\[\s*\d+\.\d+\] (.*)$", line.rstrip("\r"))
    return m.group(1) if m else None


def console_block(lines, header, pred):
    """The console lines after `header` that satisfy `pred` (timestamps removed)."""
    texts = [strip_ts(l) for l in lines]
    texts = [t for t in texts if t is not None]
    if header not in texts:
        return None
    out = []
    for t in texts[texts.index(header) + 1:]:
        if not pred(t):
            break
        out.append(t)
    return out


def gdb_sections(text):
    """{(stop, command): [lines]} from scripts/gdb's output; commands are marked `@@ cmd`."""
    out, stop, cmd = {}, None, None
    for line in text.splitlines():
        m = re.match(r"^(?:Thread \d+ hit )?(?:Hardware assisted )?Breakpoint \d+, (?:0x[0-9a-f]+ in )?(\S+)", line)
        if m:
            stop, cmd = m.group(1).split("::")[-1], None
            continue
        if line.startswith("@@ "):
            cmd = line[3:]
            out[(stop, cmd)] = []
            continue
        if cmd is not None and not line.startswith("[Inferior "):
            out[(stop, cmd)].append(line)
    return out


def halted():
    cmds = ["bt", "mm-buddyinfo", "mm-memblock", "mm-zoneinfo", "mm-dmesg"]
    ex = []
    for c in cmds:
        ex += ["--ex", "echo @@ %s\\n" % c, "--ex", c]
    console = tempfile.mktemp(prefix="gdb-console.")
    cmds = tempfile.mktemp(prefix="gdb-fault.")
    with open(cmds, "w") as f:
        f.write(FAULT_CMDS)
    args = [GDB, "--batch", "--console", console]
    for b in ["paging_init", "psci_dt_init", "mem_init", "kernel_init", "el1_exception"]:
        args += ["--break", b]
    args += ex + ["--commands", cmds, "-m", "256M", "--append", "mm_reports=buddyinfo memblock=debug mminit_loglevel=1"]
    t0 = time.time()
    p = subprocess.run(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    os.unlink(cmds)
    out = p.stdout.decode(errors="replace")
    check(p.returncode == 0, "scripts/gdb --batch stopped at the four stages and the fault (%.1f s)" % (time.time() - t0))
    try:
        with open(console, errors="replace") as f:
            con = f.read().splitlines()
        os.unlink(console)
    except OSError:
        con = []
    check(len(con) > 0, "--console kept the kernel's console output")
    s = gdb_sections(out)
    get = lambda stop, cmd: s.get((stop, cmd), [])  # noqa: E731

    for stop in ["paging_init", "psci_dt_init", "mem_init", "kernel_init"]:
        bt = get(stop, "bt")
        check(len(bt) >= 2 and "__primary_switched_call" in bt[-1] and not any("Backtrace stopped" in l for l in bt),
              "%s: the backtrace ends at __primary_switched_call" % stop, bt)

    # paging_init: memblock, no buddy, no zones.
    b = get("paging_init", "mm-buddyinfo")
    check(len(b) == 1 and "no buddy allocator yet" in b[0], "paging_init: mm-buddyinfo says there is no buddy yet", b)
    z = get("paging_init", "mm-zoneinfo")
    check(len(z) == 1 and "no zones yet" in z[0], "paging_init: mm-zoneinfo says there are no zones yet", z)
    mb = get("paging_init", "mm-memblock")
    dt = [re.search(r"\[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\]", t) for t in map(strip_ts, con)
          if t and t.startswith("OF: fdt: memory node")]
    want = [" memory[%#x]\t[%#018x-%#018x], %#018x bytes flags: 0x0"
            % (i, int(m.group(1), 16), int(m.group(2), 16), int(m.group(2), 16) - int(m.group(1), 16) + 1)
            for i, m in enumerate(dt)]
    got = [l for l in mb if l.startswith(" memory[")]
    check(len(want) > 0 and got == want, "paging_init: mm-memblock's memory is the device tree's memory node", got, want)
    sizes = re.match(r" memory size = (0x[0-9a-f]+) reserved size = (0x[0-9a-f]+)", mb[1] if len(mb) > 1 else "")
    regs = {k: sum(int(m.group(1), 16) for m in (re.search(r"\], (0x[0-9a-f]+) bytes", l) for l in mb
                                                   if l.startswith(" %s[" % k)) if m) for k in ("memory", "reserved")}
    check(sizes is not None and int(sizes.group(1), 16) == regs["memory"] and int(sizes.group(2), 16) == regs["reserved"],
          "paging_init: mm-memblock's sizes are the sums of its regions", mb)

    # psci_dt_init: the kernel's memblock=debug dump (end of bootmem_init).
    want = console_block(con, "MEMBLOCK configuration:", lambda t: t.startswith((" memory", " reserved")))
    got = get("psci_dt_init", "mm-memblock")
    check(want is not None and len(want) > 3 and got == ["MEMBLOCK configuration:"] + want,
          "psci_dt_init: mm-memblock prints the kernel's memblock=debug dump", got, want)

    # mem_init: the kernel's mminit::zoneinfo (build_all_zonelists); the buddy is not up yet.
    want = console_block(con, "mminit::zoneinfo", lambda t: t.startswith(("Node ", " ")))
    got = get("mem_init", "mm-zoneinfo")
    check(want is not None and len(want) >= 9 and got == want,
          "mem_init: mm-zoneinfo prints the kernel's mminit::zoneinfo", got, want)
    b = get("mem_init", "mm-buddyinfo")
    check(len(b) == 1 and "no buddy allocator yet" in b[0], "mem_init: mm-buddyinfo says there is no buddy yet", b)

    # kernel_init: the kernel's mm_reports=buddyinfo.
    want = console_block(con, "mm: buddyinfo", lambda t: t.startswith("Node "))
    got = get("kernel_init", "mm-buddyinfo")
    check(want is not None and len(want) >= 1 and got == want,
          "kernel_init: mm-buddyinfo prints the kernel's /proc/buddyinfo", got, want)
    z = get("kernel_init", "mm-zoneinfo")
    free = sum(int(m.group(1)) for m in (re.match(r"  pages free\s+(\d+)$", l) for l in z) if m)
    buddy = sum(sum(int(n) << o for o, n in enumerate(l.split()[4:])) for l in got)
    check(free > 0 and free == buddy, "kernel_init: mm-zoneinfo's free pages are mm-buddyinfo's blocks (%d)" % free)

    # mm-dmesg: every console line, in order, is a log buffer record.
    dmesg = get("kernel_init", "mm-dmesg")
    lines = [l.rstrip("\r") for l in con if strip_ts(l) is not None]
    it = iter(dmesg)
    missing = [l for l in lines if not any(l == d for d in it)]
    check(len(lines) > 20 and not missing, "kernel_init: mm-dmesg holds the %d console lines in order" % len(lines),
          missing[:5])
    exception_frame(out, p.returncode)
    # scripts/gdb resolves --break names with llvm-nm: breakpoint N is the N-th --break.
    bps = re.findall(r"^Hardware assisted breakpoint (\d+) at (0x[0-9a-f]+)", out, re.M)
    names = ["paging_init", "psci_dt_init", "mem_init", "kernel_init", "el1_exception"]
    return {names[int(n) - 1]: int(a, 16) for n, a in bps if int(n) <= len(names)}


# Run at every stop, after the reports; only at kernel_init does it plant the fault.
FAULT_CMDS = r"""
python f = gdb.selected_frame(); fault = f.name().endswith("kernel_init")
python if fault: gdb.execute("stepi 3"); pc = gdb.selected_frame().pc(); gdb.selected_inferior().write_memory(pc, b"\x01\x00\x40\xf9"); gdb.execute("set $x0 = 0xdead0000"); print("@@fault %#x" % pc)
"""


def exception_frame(out, rc):
    m = re.search(r"^@@fault (0x[0-9a-f]+)$", out, re.M)
    bt = gdb_sections(out).get(("el1_exception", "bt"), [])
    frames = [re.match(r"#(\d+)\s+(?:(0x[0-9a-f]+) in )?(\S+)", l) for l in bt]
    frames = [f for f in frames if f]
    vec = [i for i, f in enumerate(frames) if f.group(3).startswith("__vector_")]
    ok = (rc == 0 and m is not None and len(vec) == 1 and vec[0] + 1 < len(frames)
          and frames[vec[0] + 1].group(2) is not None and int(frames[vec[0] + 1].group(2), 16) == int(m.group(1), 16)
          and "__primary_switched_call" in frames[-1].group(3) and not any("Backtrace stopped" in l for l in bt))
    check(ok, "el1_exception: the backtrace goes through __vector_4's pt_regs to the faulting pc %s"
          % (m.group(1) if m else "?"), bt)


class Monitor:
    """scripts/run --gdb on pipes: the serial console, and QEMU's GDB server on `port`."""

    def __init__(self, port):
        env = dict(os.environ, GDB_PORT=str(port))
        self.p = subprocess.Popen([os.path.join(ROOT, "scripts/run"), "--gdb", "-m", "256M", "--smp", "2"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  cwd=ROOT, env=env, start_new_session=True)
        self.buf = b""

    def until(self, tok, timeout=120):
        end = time.time() + timeout
        while tok not in self.buf:
            r, _, _ = select.select([self.p.stdout], [], [], max(0, end - time.time()))
            d = os.read(self.p.stdout.fileno(), 65536) if r else b""
            if not d:
                raise SystemExit("gdb.py: no %r from the kernel; last output:\n%s"
                                 % (tok, self.buf[-2000:].decode(errors="replace")))
            self.buf += d
        i = self.buf.index(tok) + len(tok)
        got, self.buf = self.buf[:i], self.buf[i:]
        return got.decode(errors="replace")

    def cmd(self, line):
        self.p.stdin.write(line.encode() + b"\r")
        self.p.stdin.flush()
        text = self.until(b"mm> ")
        lines = [l.rstrip("\r") for l in text.split("\n")]
        return [l for l in lines[1:] if l != "mm> " and l.strip() != ""]

    def close(self):
        # scripts/run starts QEMU as its child: end the whole session, or QEMU outlives us.
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait()


def attach(port, cmds):
    ex = []
    for c in cmds:
        ex += ["--ex", "echo @@ %s\\n" % c, "--ex", c]
    p = subprocess.run([GDB, "--attach", str(port), "--batch"] + ex, cwd=ROOT, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=180)
    out = p.stdout.decode(errors="replace")
    return p.returncode, {k[1]: v for k, v in gdb_sections(out).items()}, out


def live(nm_addrs):
    port = 20000 + random.randrange(20000)
    m = Monitor(port)
    try:
        m.until(b"waiting for GDB")
        rc, _, out = attach(port, [])
        check(rc == 0, "scripts/gdb --attach --batch attached to the halted QEMU and let it run")
        m.until(b"mm> ")
        blk = " ".join(m.cmd("alloc 2"))
        pfn = re.search(r"pfn (0x[0-9a-f]+)", blk)
        vm = re.search(r"= (0x[0-9a-f]+)", " ".join(m.cmd("vmalloc 12288")))
        # RAM's place in the linear map moves with QEMU's kaslr-seed: take it from the layout.
        lm = re.search(r"memory  : (0x[0-9a-f]+)", "\n".join(m.cmd("log")))
        check(lm is not None, "the boot log gives the linear map's start")
        addrs = [pfn.group(1) if pfn else "0x40000", hex(int(vm.group(1), 16) + 4096) if vm else "0x40000",
                 "0x40000", "0x4ffff", "0xffff800008010000",
                 hex(int(lm.group(1), 16) + 0x200000) if lm else "0xffff000000200000"]
        want = {"mm-page %s" % a: m.cmd("page %s" % a) for a in addrs}
        for c in ["buddyinfo", "memblock", "zoneinfo", "slabinfo", "vmallocinfo", "ptdump"]:
            want["mm-" + c] = m.cmd(c)
        rc, got, out = attach(port, list(want) + ["mm-break-stages"])
        stages = dict(re.findall(r"^mm-break-stages: (\w+) at (0x[0-9a-f]+)$", "\n".join(got.get("mm-break-stages", [])), re.M))
        same = {k: v for k, v in nm_addrs.items() if k in stages and int(stages[k], 16) == v}
        check(len(stages) >= 10 and len(same) == 4 and all(k in stages for k in ("start_kernel", "setup_arch", "bootmem_init")),
              "mm-break-stages set %d stage breakpoints; paging_init, psci_dt_init, mem_init and kernel_init "
              "where scripts/gdb's llvm-nm lookup put them" % len(stages), got.get("mm-break-stages"))
        check(rc == 0, "scripts/gdb --attach --batch halted the kernel at its prompt")
        for c, w in want.items():
            g = got.get(c, [])
            check(len(w) > 0 and g == w, "%s prints what the monitor prints (%d lines)" % (c, len(w)), g, w)
        check(pfn is not None and any("allocated" in l for l in got.get("mm-page %s" % addrs[0], [])),
              "mm-page of the monitor's allocated block says allocated")
        check(len(m.cmd("meminfo")) > 0, "the kernel runs on after the detach")
    finally:
        m.close()


def main():
    live(halted())
    print("tests/gdb.py: %s" % ("all passed" if failures == 0 else "%d failed" % failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
