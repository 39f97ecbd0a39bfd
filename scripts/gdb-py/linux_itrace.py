"""Instructions Linux 6.1 spends on its allocator fast paths (scripts/bench linux-alloc).

Linux counterpart: none; this measures mm/page_alloc.c (`__alloc_pages`, `free_unref_page`,
`__free_pages`, `alloc_pages` of mm/mempolicy.c) and mm/slab_common.c + mm/slub.c
(`kmalloc_trace`, `__kmalloc`, `kfree`) of a real Linux kernel, counted the way
scripts/gdb-py/itrace.py counts ours.

Run inside gdb-multiarch attached to a halted QEMU (-smp 1, -icount shift=0) that boots a
Linux arm64 Image with `nokaslr`, so that its System.map addresses hold; no symbol file is
loaded (only the System.map). It breaks at `start_kernel` (the check that the map matches
the Image), runs to the return of `page_alloc_init_late` (mm is up, deferred pages are in
the buddy, the initcalls are next), then breaks at the entry of every measured function.
At each hit of a call worth measuring (order 0; a kfree of a real pointer) it single-steps
with `stepi` from the entry until the PC is the return address x30 held at the entry with
the stack pointer back at its entry value: the instructions of that one call, callees
included. gdb runs through an atomic sequence (from a load-exclusive or load-acquire to the
store) in one step; those instructions are put back from the code (stepfill.py), as for ours.

A call counts only when the fast path served it; the rest are excluded, with the reason:
  page allocation: the per-CPU list was refilled (`rmqueue_bulk`), the slow path ran
      (`get_page_from_freelist` entered more than once), or it failed;
  page free: the per-CPU list was drained (`free_pcppages_bulk`), the page did not go
      onto it (`free_unref_page_commit` not entered: `free_one_page` for an isolated
      pageblock, e.g. under alloc_contig_range of the boot's CMA allocations), or
      (`__free_pages`) the page was still referenced (`free_unref_page` not entered);
  kmalloc: the SLUB slow path ran (`___slab_alloc`), or the size was over the kmalloc
      caches (`__kmem_cache_alloc_node` not entered);
  kfree: not a slab object (`__kmem_cache_free` not entered), or the object was not in
      the CPU slab (`__slab_free`).
Not sampled at all: orders other than 0, allocations with __GFP_ZERO (`clear_page` or the
memset is the caller's cost; the benchmarks of ours do not zero), kfree(NULL). Each call's
functions (System.map symbols whose code the PCs were in) are recorded.

Environment: LITRACE_PORT, LITRACE_MAP (System.map), LITRACE_N (calls per operation,
default 30), LITRACE_MAX (steps a call at most, default 20000), LITRACE_BUDGET (seconds of
sampling at most, default 900), LITRACE_REPORT (where the report goes), LITRACE_JSON
(optional: every sampled call, its PCs included).
"""
import bisect
import collections
import json
import os
import statistics
import sys
import time

import gdb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stepfill  # noqa: E402

MASK = 2**64 - 1
GFP_ZERO = 0x100  # ___GFP_ZERO, include/linux/gfp_types.h (6.1)
GFP_ACCOUNT = 0x400000  # ___GFP_ACCOUNT
ZERO_SIZE_PTR = 16  # include/linux/slab.h: kfree() of this or NULL returns at once

# (operation, its entry symbol): the report's rows, in this order.
OPS = [
    ("alloc_pages order 0", "alloc_pages"),
    ("__alloc_pages order 0", "__alloc_pages"),
    ("free_unref_page order 0", "free_unref_page"),
    ("__free_pages order 0", "__free_pages"),
    ("kmalloc_trace", "kmalloc_trace"),
    ("__kmalloc", "__kmalloc"),
    ("kfree", "kfree"),
]
NEEDED = {"start_kernel", "page_alloc_init_late", "panic", "rmqueue_bulk",
          "get_page_from_freelist", "free_pcppages_bulk", "free_unref_page", "___slab_alloc",
          "free_unref_page_commit",
          "__kmem_cache_alloc_node", "__kmem_cache_free", "__slab_free"}

n_wanted = int(os.environ.get("LITRACE_N", "30"))
max_steps = int(os.environ.get("LITRACE_MAX", "20000"))
budget = float(os.environ.get("LITRACE_BUDGET", "900"))

# System.map: text symbols, sorted, for "which function is this PC in".
addr_of = {}
funcs = []
with open(os.environ["LITRACE_MAP"]) as f:
    for line in f:
        p = line.split()
        if len(p) >= 3 and p[1] in "tTwW":
            a = int(p[0], 16)
            funcs.append((a, p[2]))
            addr_of.setdefault(p[2], a)
funcs.sort()
starts = [a for a, _ in funcs]
missing = sorted((NEEDED | {s for _, s in OPS}) - set(addr_of))
if missing:
    raise gdb.GdbError("linux_itrace: not in the System.map: " + ", ".join(missing))


def fname(pc):
    i = bisect.bisect_right(starts, pc) - 1
    return funcs[i][1] if i >= 0 else "?"


def reg(r):
    return int(gdb.parse_and_eval("$" + r)) & MASK


def run(cmd):
    return gdb.execute(cmd, to_string=True)


run("set pagination off")
run("set confirm off")
run("set architecture aarch64")
run("target remote :%s" % os.environ.get("LITRACE_PORT", "1234"))


def run_to(addr):
    """Continue to a one-off hardware breakpoint at addr."""
    run("hbreak *0x%x" % addr)
    run("continue")
    run("delete")
    return reg("pc")


pc = run_to(addr_of["start_kernel"])
if pc != addr_of["start_kernel"]:
    raise gdb.GdbError("linux_itrace: stopped at 0x%x, not at start_kernel 0x%x: "
                       "does the System.map belong to this Image (and nokaslr)?"
                       % (pc, addr_of["start_kernel"]))
run_to(addr_of["page_alloc_init_late"])
ret = reg("x30")
run_to(ret)

by_addr = {addr_of[s]: (op, s) for op, s in OPS}
bps = {}
for op, s in OPS:
    run("hbreak *0x%x" % addr_of[s])
    bps[op] = int(gdb.parse_and_eval("$bpnum"))
run("hbreak *0x%x" % addr_of["panic"])
panic_bp = int(gdb.parse_and_eval("$bpnum"))


def step_call():
    """Single-step one call from its entry to its return: its PCs, with what gdb ran through
    without stopping put back (stepfill.py), and the gdb steps taken; None past max_steps."""
    lr, sp = reg("x30"), reg("sp")
    pcs = [reg("pc")]
    for _ in range(max_steps):
        run("stepi")
        pc = reg("pc")
        if pc == lr and reg("sp") == sp:
            return stepfill.fill(pcs, lr), len(pcs)
        pcs.append(pc)
    return None


def judge(sym, args, pcs):
    """Why this call does not count (None: it does), from its arguments and its functions."""
    entered = collections.Counter(pc for pc in pcs if pc in entries)
    names = {fname(pc) for pc in pcs}
    if sym in ("alloc_pages", "__alloc_pages"):
        if "rmqueue_bulk" in names:
            return "per-CPU list refilled (rmqueue_bulk)"
        if entered[addr_of["get_page_from_freelist"]] != 1:
            return "slow path (get_page_from_freelist entered %d times)" % entered[
                addr_of["get_page_from_freelist"]]
        if args["x0_ret"] == 0:
            return "failed"
    elif sym in ("free_unref_page", "__free_pages"):
        if "free_pcppages_bulk" in names:
            return "per-CPU list drained (free_pcppages_bulk)"
        if sym == "__free_pages" and "free_unref_page" not in names:
            return "page still referenced (free_unref_page not entered)"
        if "free_unref_page_commit" not in names:
            return "not onto the per-CPU list (free_one_page: isolated pageblock)"
    elif sym in ("kmalloc_trace", "__kmalloc"):
        if "___slab_alloc" in names:
            return "SLUB slow path (___slab_alloc)"
        if "__kmem_cache_alloc_node" not in names:
            return "not a kmalloc cache (large kmalloc)"
    elif sym == "kfree":
        if "__kmem_cache_free" not in names:
            return "not a slab object (large kmalloc)"
        if "__slab_free" in names:
            return "not in the CPU slab (__slab_free)"
    return None


entries = {addr_of[s] for s in NEEDED}
calls = {op: [] for op, _ in OPS}
skipped = {op: collections.Counter() for op, _ in OPS}
t0 = time.monotonic()
stop = "every operation has %d calls" % n_wanted
while any(bps.values()):
    if time.monotonic() - t0 > budget:
        stop = "the time budget (%d s) ran out" % budget
        break
    try:
        run("continue")
    except gdb.error as e:
        stop = "the target stopped: %s" % e
        break
    pc = reg("pc")
    if pc == addr_of["panic"]:
        stop = "the kernel called panic()"
        break
    if pc not in by_addr:
        stop = "stopped at 0x%x, not a measured function" % pc
        break
    op, sym = by_addr[pc]
    args = {r: reg(r) for r in ("x0", "x1", "x2")}
    args["lr"] = reg("x30")
    # Calls that are not the operation measured: not sampled.
    if sym in ("alloc_pages", "__alloc_pages", "free_unref_page", "__free_pages") and args["x1"] != 0:
        skipped[op]["order %d" % args["x1"]] += 1
        continue
    if sym == "kfree" and args["x0"] <= ZERO_SIZE_PTR:
        skipped[op]["NULL or ZERO_SIZE_PTR"] += 1
        continue
    # Zeroing asked for: clear_page or memset of the object is the caller's cost, and the
    # benchmarks of ours do not zero.
    if args["x1" if sym in ("kmalloc_trace", "__kmalloc") else "x0"] & GFP_ZERO and "free" not in sym:
        skipped[op]["__GFP_ZERO"] += 1
        continue
    for b in bps.values():
        if b:
            run("disable %d" % b)
    run("disable %d" % panic_bp)
    stepped = step_call()
    pcs, steps = stepped if stepped else (None, 0)
    args["x0_ret"] = reg("x0")
    for b in bps.values():
        if b:
            run("enable %d" % b)
    run("enable %d" % panic_bp)
    if pcs is None:
        why = "over %d steps" % max_steps
        pcs = []
    else:
        why = judge(sym, args, pcs)
    calls[op].append({"args": args, "pcs": pcs, "steps": steps, "excluded": why})
    if sum(1 for c in calls[op] if not c["excluded"]) >= n_wanted:
        run("delete %d" % bps[op])
        bps[op] = 0

elapsed = time.monotonic() - t0

if os.environ.get("LITRACE_JSON"):
    with open(os.environ["LITRACE_JSON"], "w") as f:
        json.dump({op: [dict(c, pcs=["%x" % p for p in c["pcs"]]) for c in cs]
                   for op, cs in calls.items()}, f)

out = []
print = out.append  # noqa: A001 — the report goes to LITRACE_REPORT, not gdb's console
print("sampling ended: %s (%.0f s)" % (stop, elapsed))
print("")
print("%-24s %5s %6s %5s %5s %9s %8s" % ("operation", "calls", "median", "min", "max",
                                          "gdb steps", "excluded"))
med = {}
for op, _ in OPS:
    ok = [c for c in calls[op] if not c["excluded"]]
    bad = len(calls[op]) - len(ok)
    if ok:
        n = [len(c["pcs"]) for c in ok]
        med[op] = statistics.median(n)
        print("%-24s %5d %6g %5d %5d %9g %8d" % (op, len(ok), med[op], min(n), max(n),
                                                 statistics.median(c["steps"] for c in ok), bad))
    else:
        print("%-24s %5d %6s %5s %5s %9s %8d" % (op, 0, "-", "-", "-", "-", bad))
print("instructions from the entry to the return, callees included, as -icount counts them:")
print("gdb's steps, plus what gdb ran through in one step at what it takes for an atomic")
print("sequence (scripts/gdb-py/stepfill.py; `gdb steps` is the median of the steps alone).")
for a, b in (("alloc_pages order 0", "__free_pages order 0"), ("kmalloc_trace", "kfree")):
    if a in med and b in med:
        print("%s + %s: %g (sum of the medians)" % (a, b, med[a] + med[b]))

for op, _ in OPS:
    cs = calls[op]
    ok = [c for c in cs if not c["excluded"]]
    print("")
    print("== %s" % op)
    why = collections.Counter(c["excluded"] for c in cs if c["excluded"])
    for w, n in why.most_common():
        print("  excluded %d: %s" % (n, w))
    for w, n in skipped[op].most_common():
        print("  not sampled %d: %s" % (n, w))
    if not ok:
        continue
    if "free" not in op:
        acct = sum(1 for c in ok if c["args"]["x1" if "kmalloc" in op else "x0"] & GFP_ACCOUNT)
        print("  __GFP_ACCOUNT (memcg charged): %d of the %d calls" % (acct, len(ok)))
    callers = collections.Counter(fname(c["args"]["lr"]) for c in ok)
    print("  callers: " + ", ".join("%s %d" % kv for kv in callers.most_common(6))
          + (", ..." if len(callers) > 6 else ""))
    # In how many counted calls each function ran, and its instructions in them (median).
    per = collections.defaultdict(list)
    for c in ok:
        for n, v in collections.Counter(fname(pc) for pc in c["pcs"]).items():
            per[n].append(v)
    print("  functions run (in how many of the %d calls; median instructions there):" % len(ok))
    for n, vs in sorted(per.items(), key=lambda kv: (-len(kv[1]), -statistics.median(kv[1]))):
        print("    %3d  %6g  %s" % (len(vs), statistics.median(vs), n))
    rep = sorted(ok, key=lambda c: len(c["pcs"]))[len(ok) // 2]
    a = rep["args"]
    print("  one median call: %d instructions (x0=0x%x x1=0x%x x2=0x%x, from %s):"
          % (len(rep["pcs"]), a["x0"], a["x1"], a["x2"], fname(a["lr"])))
    for n, v in collections.Counter(fname(pc) for pc in rep["pcs"]).most_common():
        print("    %6d  %s" % (v, n))
with open(os.environ["LITRACE_REPORT"], "w") as f:
    f.write("\n".join(out) + "\n")
run("kill")
