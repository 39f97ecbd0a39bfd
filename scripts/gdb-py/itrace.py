"""Where the instructions of one operation go: a GDB single-step trace (scripts/bench alloc --trace).

Run by `scripts/bench alloc --trace FUNC` inside gdb-multiarch attached to a halted QEMU
(-smp 1, -icount shift=0) that boots tests/bench_alloc. It waits until the benchmarks run
(`bench_alloc::work`), lets FUNC be entered SKIP times (past the warm-up), then steps one
instruction at a time until FUNC's first instruction has come round twice: the
instructions in between are one iteration of the benchmark loop that calls FUNC (one
allocation and its free, with the loop's own compare and branch). It prints the count, the
instructions per function (after inlining: the function whose code they are) and per
source line (the innermost inlined frame, with up to two callers), most first.

Parameters come from the environment: ITRACE_FUNC, ITRACE_SKIP, ITRACE_MAX, ITRACE_PORT,
ITRACE_REPORT (where the report goes), ITRACE_OUT (the raw program counters, one per line).
"""
import bisect
import collections
import os
import subprocess
import sys

import gdb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stepfill  # noqa: E402

func = os.environ["ITRACE_FUNC"]
skip = int(os.environ.get("ITRACE_SKIP", "74"))
max_steps = int(os.environ.get("ITRACE_MAX", "20000"))
elf = gdb.current_progspace().filename

gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("target remote :%s" % os.environ.get("ITRACE_PORT", "1234"))
gdb.execute("hbreak bench_alloc::work", to_string=True)
gdb.execute("continue", to_string=True)
gdb.execute("delete")
gdb.execute("hbreak %s" % func, to_string=True)
for _ in range(skip):
    gdb.execute("continue", to_string=True)
gdb.execute("delete")

entry = int(gdb.parse_and_eval("$pc")) & (2**64 - 1)
pcs = []
seen = 0
for _ in range(max_steps):
    gdb.execute("stepi", to_string=True)
    pc = int(gdb.parse_and_eval("$pc")) & (2**64 - 1)
    if pc == entry:
        seen += 1
        if seen == 1:
            pcs = []
            continue
        break
    if seen:
        pcs.append(pc)
# One iteration: from FUNC's entry (counted) to its next entry (not counted).
if seen < 2:
    raise gdb.GdbError("itrace: %s was not entered twice in %d steps" % (func, max_steps))
pcs = [entry] + pcs

# gdb runs through some instructions in one stepi (scripts/gdb-py/stepfill.py): put back.
n_stepped, pcs = len(pcs), stepfill.fill(pcs, entry)
if os.environ.get("ITRACE_OUT"):
    with open(os.environ["ITRACE_OUT"], "w") as f:
        f.write("".join("%x\n" % pc for pc in pcs))

# Symbols: the function each pc is in (nm), and its source lines (addr2line, inlined chain).
syms = []
nm = subprocess.run(["nm", "-C", "--defined-only", elf], capture_output=True, text=True).stdout
for line in nm.splitlines():
    p = line.split(" ", 2)
    if len(p) == 3 and p[1] in "tTwW":
        syms.append((int(p[0], 16), p[2]))
syms.sort()
addrs = [a for a, _ in syms]


def name(pc):
    i = bisect.bisect_right(addrs, pc) - 1
    return syms[i][1] if i >= 0 else "?"


uniq = sorted(set(pcs))
a2l = subprocess.run(["addr2line", "-e", elf, "-f", "-C", "-i", "-a"] + ["%x" % p for p in uniq],
                     capture_output=True, text=True).stdout
where = {}
for block in a2l.split("\n0x"):
    ls = block.strip().splitlines()
    if not ls:
        continue
    pc = int(ls[0], 16)
    chain = []
    for i in range(2, len(ls), 2):
        loc = ls[i]
        for cut in ("/src/", "/library/", "/tests/"):
            if cut in loc:
                loc = loc.split(cut)[-1]
                break
        chain.append(loc.split(" ")[0])
    where[pc] = " < ".join(chain[:3])

out = []
print = out.append  # noqa: A001 — the report goes to ITRACE_REPORT, not gdb's console
print("itrace: %d instructions from one entry of %s to the next" % (len(pcs), func))
print("(%d gdb steps; the %d instructions gdb ran through without stopping, put back)"
      % (n_stepped, len(pcs) - n_stepped))
print("\nper function (code inlined into it counts as its own):")
for n, v in collections.Counter(name(pc) for pc in pcs).most_common():
    print("%6d  %s" % (v, n))
print("\nper source line (innermost frame < its callers), the 40 largest:")
for n, v in collections.Counter(where.get(pc, "?") for pc in pcs).most_common(40):
    print("%6d  %s" % (v, n))
with open(os.environ["ITRACE_REPORT"], "w") as f:
    f.write("\n".join(out) + "\n")
gdb.execute("kill", to_string=True)
