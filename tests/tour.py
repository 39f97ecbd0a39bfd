#!/usr/bin/env python3
"""scripts/tour --batch against the kernel's own log from the same boot.

First the interactive tour on a pseudo-terminal: a GDB command at the prompt, Enter to the
next stop, `continue` refused, `q` back to GDB. Then three tours, each with the serial
console kept (--console):
  - 1 GiB with `memblock=debug mminit_loglevel=1 mm_reports=buddyinfo ptdump vmallocinfo
    slabinfo`, so the kernel prints every memblock change and its reports;
  - the same on `-m 4G --numa 2` (with `rodata=on`: block mappings, so that memblock=debug's
    lines fit the log buffer);
  - a plain `scripts/tour --batch` (nothing extra on the command line).
Each must reach all of its stops, and every stop is checked against the console (or, for
KERN_DEBUG lines the console does not show, against the stop's own log section, once that
section is shown to be the console's lines). Where the kernel prints no report for a stop
(the plain tour), the stop is checked against the numbers it does print, or for consistency.

  primary_entry        MMU off, at the EL of `CPU: booted at EL1`, pc in the image; x0 starts a
                       reserved region; the segments are the `Virtual kernel memory layout:` ones
  start_kernel         MMU on, TTBR1 = init_pg_dir, which maps .text; memblock still empty
  setup_machine_fdt    memblock.memory = the `OF: fdt: memory node` ranges; the device tree
                       (x0) reserved
  arm64_memblock_init  the diff = the logged memblock_remove/memblock_reserve applied to the
                       FDT stop's arrays; the linear-map range = `memory  :`
  paging_init          swapper_pg_dir and its table pages = `mm: paging_init:`; the linear map
                       in mm-ptdump = `memory  :`; memblock diff = the logged changes
  bootmem_init         mm-nodes = `Zone ranges:` ... `Initmem setup node`; mm-zoneinfo =
                       `mminit::zoneinfo`; mm-memblock = `MEMBLOCK configuration:` (or the
                       `mm: memblock:` sizes); memblock diff = the logged changes
  setup_per_cpu_areas  static size = the `s` of `percpu: Embedded`; one unit per CPU of
                       `pcpu-alloc: [g] cpu`; units u apart on a node and on the CPU's node
  build_all_zonelists  `Fallback order for Node`, `Built N zonelists ... Total pages`, `Policy zone`
  mem_init             the `Memory: A/BK available (... RK reserved` numbers; buddyinfo's sum
  kmem_cache_init      every cache as the end-of-boot slabinfo has it, no vmap_area yet
  vmalloc_init         busy areas in the end-of-boot vmallocinfo; busy + free = `vmalloc :`
  smp_init             `SMP: Total of N processors`, each `CPUn: Booted secondary processor` MPIDR
  kernel_init          mm-buddyinfo, mm-vmallocinfo and mm-ptdump = the kernel's reports; the
                       log sections together = the console

    python3 tests/tour.py        # exit 0 if every check passed
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOUR = os.path.join(ROOT, "scripts/tour")
REPORTS = "memblock=debug mminit_loglevel=1 mm_reports=buddyinfo ptdump vmallocinfo slabinfo"
STAGES = ["primary_entry", "start_kernel", "setup_machine_fdt", "arm64_memblock_init", "paging_init",
          "bootmem_init", "setup_per_cpu_areas", "build_all_zonelists", "mem_init", "kmem_cache_init",
          "vmalloc_init", "smp_init", "kernel_init"]
PAGE_OFFSET = 0xFFFF000000000000
failures = 0


def check(ok, what, got=None, want=None):
    global failures
    print(("ok - " if ok else "FAIL - ") + what)
    if not ok:
        failures += 1
        if got is not None:
            print("  got:\n    " + "\n    ".join(map(str, got if isinstance(got, list) else [got])))
        if want is not None:
            print("  want:\n    " + "\n    ".join(map(str, want if isinstance(want, list) else [want])))
    return ok


def strip_ts(line):
    m = re.match(r"^\[\s*\d+\.\d+\] (.*)$", line.rstrip("\r"))
    return m.group(1) if m else None


def run_tour(args):
    """scripts/tour --batch ARGS in its own session (ended at the end, QEMU with it); returns
    (exit status, output, console lines)."""
    console = tempfile.mktemp(prefix="tour-console.")
    p = subprocess.Popen([TOUR, "--batch", "--console", console] + args, cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        out = b""
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    try:
        with open(console, errors="replace") as f:
            con = [l.rstrip("\r\n") for l in f]
        os.unlink(console)
    except OSError:
        con = []
    return p.returncode, out.decode(errors="replace"), con


SECTION_KEYS = [("the kernel log since", "log"), ("memstart_addr and the linear map", "linear"),
                ("the page-table pages", "tables"), ("the numbers of the `Memory:` line", "memory")]


def parse(out):
    """{stage: {section: [lines]}} from the tour's output."""
    stops, cur, sec = {}, None, None
    for line in out.splitlines():
        m = re.match(r"^==== tour stop (\d+)/(\d+): (\w+), at ", line)
        if m:
            cur, sec = {}, None
            stops[m.group(3)] = cur
            continue
        if cur is None:
            continue
        if line.startswith("--- "):
            title = line[4:]
            sec = next((k for p, k in SECTION_KEYS if title.startswith(p)), title)
            cur[sec] = []
            continue
        if line.startswith(("mm-tour: ", "[Inferior ", "scripts/gdb: ", "scripts/tour: ")) or line == "":
            sec = None
            continue
        if sec is not None:
            cur[sec].append(line)
        else:
            cur.setdefault("header", []).append(line)
    return stops


# ----- memblock: the arrays as printed, and the changes memblock=debug logs

RANGE = r"\[(0x[0-9a-f]+)-(0x[0-9a-f]+)\]"


def intervals(regions):
    """Merged [start, end) intervals."""
    out = []
    for s, e in sorted(r for r in regions if r[1] > r[0]):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def sub(iv, s, e):
    out = []
    for a, b in iv:
        if b <= s or e <= a:
            out.append((a, b))
            continue
        if a < s:
            out.append((a, s))
        if e < b:
            out.append((e, b))
    return out


def dump_arrays(lines):
    """{'memory': [(s, e)], 'reserved': [...]} from mm-memblock / MEMBLOCK configuration lines."""
    arr = {"memory": [], "reserved": []}
    for l in lines:
        m = re.match(r"^ ?(memory|reserved)\[0x[0-9a-f]+\]\s+" + RANGE + r", (0x[0-9a-f]+) bytes", l.strip())
        if m and int(m.group(4), 16):
            arr[m.group(1)].append((int(m.group(2), 16), int(m.group(2), 16) + int(m.group(4), 16)))
    return {k: intervals(v) for k, v in arr.items()}


def apply_diff(arr, lines):
    """The arrays after mm-memblock-diff's `-`/`+` lines."""
    new = {k: list(v) for k, v in arr.items()}
    # The regions of one array never overlap: take out what went, then add what came.
    for l in sorted(lines, key=lambda l: not l.startswith("-")):
        m = re.match(r"^([-+]) (memory|reserved)\s+" + RANGE + r", (0x[0-9a-f]+) bytes", l)
        if not m:
            continue
        s, size = int(m.group(3), 16), int(m.group(5), 16)
        if m.group(1) == "-":
            new[m.group(2)] = sub(new[m.group(2)], s, s + size)
        else:
            new[m.group(2)] = intervals(new[m.group(2)] + [(s, s + size)])
    return new


def apply_log(arr, lines):
    """The arrays after the memblock_add/remove/reserve/free lines memblock=debug printed."""
    new = {k: list(v) for k, v in arr.items()}
    n = 0
    for l in lines:
        m = re.match(r"^(memblock_add|memblock_remove|memblock_reserve|memblock_phys_free|memblock_free): "
                     + RANGE, strip_ts(l) or "")
        if not m:
            continue
        n += 1
        s, last = int(m.group(2), 16), int(m.group(3), 16)
        e = min(s + ((last + 1 - s) % (1 << 64)), 1 << 64)  # Linux caps base + size at 2^64
        if e <= s:
            continue
        key = "memory" if m.group(1) in ("memblock_add", "memblock_remove") else "reserved"
        if m.group(1) in ("memblock_add", "memblock_reserve"):
            new[key] = intervals(new[key] + [(s, e)])
        else:
            new[key] = sub(new[key], s, e)
    return new, n


def fmt(arr):
    return ["%s [%#x-%#x)" % (k, s, e) for k in ("memory", "reserved") for s, e in arr[k]]


# ----- the checks, one function per stop

class Boot:
    def __init__(self, name, out, con, debug):
        self.name, self.stops, self.debug = name, parse(out), debug
        self.con = con
        self.text = [t for t in map(strip_ts, con) if t is not None]

    def sec(self, stage, key):
        return self.stops.get(stage, {}).get(key, [])

    def logtext(self, stage):
        return [t for t in map(strip_ts, self.sec(stage, "log")) if t is not None]

    def con_block(self, header, pred, start=0):
        texts = self.text[start:]
        if header not in texts:
            return None
        out = []
        for t in texts[texts.index(header) + 1:]:
            if not pred(t):
                break
            out.append(t)
        return out

    def con_match(self, pattern):
        for t in self.text:
            m = re.match(pattern, t)
            if m:
                return m
        return None

    def ok(self, cond, what, got=None, want=None):
        return check(cond, "%s: %s" % (self.name, what), got, want)

    def layout(self):
        return [t for t in self.text if re.match(r"^\s+\.(text|rodata|init|data|bss) : ", t)]

    def segments(self, stage):
        return [l for l in self.sec(stage, "mm-image") if re.match(r"^\s+\.(text|rodata|init|data|bss) : ", l)]

    def fdt_pa(self):
        m = re.search(r"^x0 (0x[0-9a-f]+): the device tree", "\n".join(self.sec("primary_entry", "mm-image")), re.M)
        return int(m.group(1), 16) if m else None

    # --- stops

    def primary_entry(self):
        img = self.sec("primary_entry", "mm-image")
        el = self.con_match(r"^CPU: booted at EL(\d)")
        m = re.match(r"^MMU off: SCTLR_EL1 (0x[0-9a-f]+), running at EL(\d), pc (0x[0-9a-f]+)", img[0] if img else "")
        self.ok(m is not None and el is not None and int(m.group(1), 16) & 1 == 0 and m.group(2) == el.group(1)
                and int(m.group(3), 16) < PAGE_OFFSET,
                "primary_entry: MMU off at a physical pc, at the EL of `CPU: booted at EL%s`" % (el.group(1) if el else "?"),
                img[:1])
        self.ok(len(self.layout()) == 5 and self.segments("primary_entry") == self.layout(),
                "primary_entry: the image's segments are the `Virtual kernel memory layout:` ones",
                self.segments("primary_entry"), self.layout())
        fdt = self.fdt_pa()
        dump = self.con_block("MEMBLOCK configuration:", lambda t: t.startswith((" memory", " reserved")))
        res = dump_arrays(dump)["reserved"] if dump else dump_arrays(self.sec("setup_machine_fdt", "mm-memblock"))["reserved"]
        self.ok(fdt is not None and any(s <= fdt < e for s, e in res),
                "primary_entry: x0 %s lies in a reserved region of %s" % (
                    hex(fdt) if fdt else "?", "the kernel's memblock dump" if dump else "memblock"))

    def start_kernel(self):
        img = self.sec("start_kernel", "mm-image")
        self.ok(len(img) > 1 and img[0].startswith("MMU on") and "(init_pg_dir)" in img[1],
                "start_kernel: MMU on, TTBR1_EL1 = init_pg_dir", img[:2])
        self.ok(self.segments("start_kernel") == self.layout() and len(self.layout()) == 5,
                "start_kernel: the segments are the `Virtual kernel memory layout:` ones")
        text = int(self.layout()[0].split()[2], 16) if self.layout() else 0
        maps = [re.match(r"^(0x[0-9a-f]+)-(0x[0-9a-f]+)\s", l) for l in self.sec("start_kernel", "mm-ptdump --ttbr1")]
        self.ok(any(m and int(m.group(1), 16) <= text < int(m.group(2), 16) for m in maps),
                "start_kernel: init_pg_dir maps .text's start %#x (the log's layout)" % text)
        mb = self.sec("start_kernel", "mm-memblock")
        self.ok(len(mb) > 1 and mb[1] == " memory size = 0x0000000000000000 reserved size = 0x0000000000000000",
                "start_kernel: memblock is still empty", mb[:2])

    def setup_machine_fdt(self):
        nodes = [re.search(r"\[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\]", t) for t in self.text
                 if t.startswith("OF: fdt: memory node")]
        want = intervals([(int(m.group(1), 16), int(m.group(2), 16) + 1) for m in nodes if m])
        arr = dump_arrays(self.sec("setup_machine_fdt", "mm-memblock"))
        self.ok(len(want) > 0 and arr["memory"] == want,
                "setup_machine_fdt: memblock.memory is the `OF: fdt: memory node` ranges", fmt(arr), want)
        fdt = self.fdt_pa()
        self.ok(fdt is not None and any(s == fdt for s, _ in arr["reserved"]),
                "setup_machine_fdt: the device tree at x0 is reserved")

    def memblock_stage(self, stage, before):
        """The diff at `stage` applied to the arrays at the stop before = the logged changes."""
        state = apply_diff(before, self.sec(stage, "mm-memblock-diff"))
        if self.debug:
            logged, n = apply_log(before, self.sec(stage, "log"))
            self.ok(n > 0 and logged == state, "%s: mm-memblock-diff = the %d memblock changes the kernel logged"
                    % (stage, n), fmt(state), fmt(logged))
        return state

    def arm64_memblock_init(self, fdt_arrays):
        state = self.memblock_stage("arm64_memblock_init", fdt_arrays)
        lin = re.search(r"linear-mapped at (0x[0-9a-f]+) - (0x[0-9a-f]+)", "\n".join(self.sec("arm64_memblock_init", "linear")))
        mem = self.con_match(r"^\s+memory  : (0x[0-9a-f]+) - (0x[0-9a-f]+)")
        self.ok(lin is not None and mem is not None and lin.groups() == mem.groups(),
                "arm64_memblock_init: memstart_addr puts memory at the `memory  :` range of the layout",
                lin.groups() if lin else None, mem.groups() if mem else None)
        if not self.debug:
            img = re.search(r"_text at PA (0x[0-9a-f]+)", "\n".join(self.sec("start_kernel", "mm-image")))
            pa = int(img.group(1), 16) + 0x10000 if img else None  # _stext: the Image header is 64K
            self.ok(pa is not None and any(s <= pa < e for s, e in state["reserved"]),
                    "arm64_memblock_init: the kernel (_stext at PA %s) is reserved" % (hex(pa) if pa else "?"))
        return state

    def paging_init(self, before):
        state = self.memblock_stage("paging_init", before)
        t = re.match(r"^swapper_pg_dir at (0x[0-9a-f]+): \d+ table pages below it, (\d+) of them outside",
                     (self.sec("paging_init", "tables") or [""])[0])
        m = self.con_match(r"^mm: paging_init: swapper_pg_dir at (0x[0-9a-f]+), (\d+) page-table pages")
        self.ok(t is not None and m is not None and t.groups() == m.groups(),
                "paging_init: swapper_pg_dir and its table pages from memblock are `mm: paging_init:`'s",
                self.sec("paging_init", "tables"), m.group(0) if m else None)
        dump = self.sec("paging_init", "mm-ptdump")
        lm = dump[dump.index("---[ Linear Mapping start ]---") + 1:dump.index("---[ Linear Mapping end ]---")] \
            if "---[ Linear Mapping end ]---" in dump else []
        rng = [re.match(r"^(0x[0-9a-f]+)-(0x[0-9a-f]+)", l) for l in lm]
        mem = self.con_match(r"^\s+memory  : (0x[0-9a-f]+) - (0x[0-9a-f]+)")
        self.ok(len(rng) > 0 and all(rng) and mem is not None
                and (rng[0].group(1), rng[-1].group(2)) == mem.groups(),
                "paging_init: mm-ptdump's linear map spans the `memory  :` range", lm, mem.group(0) if mem else None)
        return state

    def bootmem_init(self, before):
        state = self.memblock_stage("bootmem_init", before)
        nodes = self.sec("bootmem_init", "mm-nodes")
        got = [l for l in nodes if not l.startswith(("Node ", "  zone "))]
        want = self.con_block("Zone ranges:", lambda t: not t.startswith(("mm: memblock", "NUMA", "MEMBLOCK")))
        want = ["Zone ranges:"] + [t for t in (want or []) if t != "Movable zone start for each node"
                                   and not re.match(r"^  Node \d+: 0x", t) and not t.startswith("memblock_")]
        last = max([i for i, t in enumerate(want) if t.startswith("Initmem setup node")] or [0])
        want = want[:last + 1]
        self.ok(len(want) > 4 and got == want,
                "bootmem_init: mm-nodes prints the kernel's `Zone ranges:` ... `Initmem setup node` lines", got, want)
        zi = self.con_block("mminit::zoneinfo", lambda t: t.startswith(("Node ", " ")))
        if zi is not None:
            self.ok(len(zi) >= 9 and self.sec("bootmem_init", "mm-zoneinfo") == zi,
                    "bootmem_init: mm-zoneinfo prints the kernel's mminit::zoneinfo", self.sec("bootmem_init", "mm-zoneinfo"), zi)
        mb = self.sec("bootmem_init", "mm-memblock")
        dump = self.con_block("MEMBLOCK configuration:", lambda t: t.startswith((" memory", " reserved")))
        if dump is not None:
            self.ok(len(dump) > 3 and mb == ["MEMBLOCK configuration:"] + dump,
                    "bootmem_init: mm-memblock prints the kernel's memblock=debug dump", mb, dump)
        m = self.con_match(r"^mm: memblock: memory (0x[0-9a-f]+) .* in (\d+) regions, reserved (0x[0-9a-f]+) .* in (\d+) regions")
        h = re.match(r"^ memory size = (0x[0-9a-f]+) reserved size = (0x[0-9a-f]+)", mb[1] if len(mb) > 1 else "")
        cnt = [re.match(r"^ (memory|reserved)\.cnt  = (0x[0-9a-f]+)", l) for l in mb]
        cnt = {c.group(1): int(c.group(2), 16) for c in cnt if c}
        self.ok(m is not None and h is not None and int(h.group(1), 16) == int(m.group(1), 16)
                and int(h.group(2), 16) == int(m.group(3), 16) and cnt.get("memory") == int(m.group(2))
                and cnt.get("reserved") == int(m.group(4)),
                "bootmem_init: mm-memblock's sizes and counts are `mm: memblock:`'s", mb[:2], m.group(0) if m else None)
        self.ok(dump_arrays(mb) == state, "bootmem_init: the diffs since the FDT stop add up to mm-memblock",
                fmt(state), fmt(dump_arrays(mb)))
        return state

    def setup_per_cpu_areas(self, before):
        self.memblock_stage("setup_per_cpu_areas", before)
        pc = self.sec("setup_per_cpu_areas", "mm-percpu")
        emb = self.con_match(r"^percpu: Embedded \d+ pages/cpu s(\d+) r\d+ d\d+ u(\d+)$")
        st = re.match(r"^static per-CPU image .*: (\d+) bytes", pc[0] if pc else "")
        self.ok(emb is not None and st is not None and st.group(1) == emb.group(1),
                "setup_per_cpu_areas: the static per-CPU image is the `s` of `percpu: Embedded`", pc[:1],
                emb.group(0) if emb else None)
        groups = [t for t in self.logtext("setup_per_cpu_areas") if t.startswith("pcpu-alloc: [")]
        cpus_logged = sorted(int(c) for g in groups for c in re.findall(r"\[\d+\]\s+(\d+)", g))
        units = [re.match(r"^CPU(\d+): __per_cpu_offset \S+, unit at (0x[0-9a-f]+) = PA (0x[0-9a-f]+), node (\d+)", l)
                 for l in pc[1:]]
        units = [(int(u.group(1)), int(u.group(2), 16), int(u.group(3), 16), int(u.group(4))) for u in units if u]
        self.ok(len(units) > 0 and [u[0] for u in units] == cpus_logged,
                "setup_per_cpu_areas: a unit for each CPU of `pcpu-alloc:` (%s)" % cpus_logged, pc[1:], groups)
        size = int(emb.group(2)) if emb else 0
        node_ranges = {}
        for t in self.text:
            m = re.match(r"^  node\s+(\d+): " + r"\[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\]", t)
            if m:
                node_ranges.setdefault(int(m.group(1)), []).append((int(m.group(2), 16), int(m.group(3), 16) + 1))
        on_node = all(any(s <= pa and pa + size <= e for s, e in node_ranges.get(n, [])) for _, _, pa, n in units)
        by_node = {}
        for _, va, _, n in units:
            by_node.setdefault(n, []).append(va)
        apart = all(b - a == size for vas in by_node.values() for a, b in zip(sorted(vas), sorted(vas)[1:]))
        self.ok(size > 0 and on_node and apart,
                "setup_per_cpu_areas: each unit of u%d bytes lies in its CPU's node (the `node N:` ranges), "
                "the units of a node u apart" % size, pc)

    def build_all_zonelists(self):
        zl = self.sec("build_all_zonelists", "mm-zonelists")
        got = [l for l in zl if l.startswith("Fallback order")]
        want = [t for t in self.text if t.startswith("Fallback order")]
        self.ok(len(want) > 0 and got == want, "build_all_zonelists: the `Fallback order for Node` lines", got, want)
        b = self.con_match(r"^Built (\d+) zonelists, mobility grouping \w+\.  Total pages: (\d+)$")
        t = re.search(r"^(\d+) zonelists\. Total pages: (\d+) ", "\n".join(zl), re.M)
        self.ok(b is not None and t is not None and b.groups() == t.groups(),
                "build_all_zonelists: `Built %s zonelists ... Total pages: %s`" % (b.groups() if b else ("?", "?")))
        pz = self.con_match(r"^Policy zone: \w+$")
        self.ok(pz is not None and pz.group(0) in zl, "build_all_zonelists: `%s`" % (pz.group(0) if pz else "Policy zone"))

    def mem_init(self):
        mem = "\n".join(self.sec("mem_init", "memory"))
        m = self.con_match(r"^Memory: (\d+)K/(\d+)K available \(.* (\d+)K reserved, (\d+)K cma-reserved\)")
        got = tuple(re.search(p, mem, re.M).group(1) if re.search(p, mem, re.M) else None
                    for p in (r"^free pages in the buddy: \d+ = (\d+)K", r"^present pages: \d+ = (\d+)K",
                              r"^present - totalram - totalcma: (\d+)K", r"^totalcma_pages: \d+ = (\d+)K"))
        self.ok(m is not None and got == m.groups(),
                "mem_init: available/total/reserved/cma-reserved are the `Memory:` line's %s" % (m.groups() if m else "?",), got)
        buddy = sum(sum(int(n) << o for o, n in enumerate(l.split()[4:])) for l in self.sec("mem_init", "mm-buddyinfo"))
        self.ok(m is not None and buddy * 4 == int(m.group(1)),
                "mem_init: mm-buddyinfo's blocks add up to the `Memory:` line's available (%d pages)" % buddy)

    def kmem_cache_init(self):
        rows = [l.split() for l in self.sec("kmem_cache_init", "mm-slabinfo")[2:]]
        here = {r[0]: (r[3], r[4], r[5]) for r in rows if len(r) > 5}
        end = self.con_block("mm: slabinfo", lambda t: not t.startswith("mm: ") and not t.startswith("ptdump"))
        self.ok("kmalloc-128" in here and "kmem_cache" in here and "vmap_area" not in here,
                "kmem_cache_init: kmem_cache and the kmalloc caches exist, vmap_area (vmalloc_init's) not yet",
                sorted(here))
        if end is not None:
            there = {r.split()[0]: tuple(r.split()[3:6]) for r in end[2:] if len(r.split()) > 5}
            self.ok(len(here) > 10 and all(there.get(k) == v for k, v in here.items()),
                    "kmem_cache_init: each of the %d caches has the objsize, objperslab and pagesperslab of the "
                    "end-of-boot slabinfo" % len(here), sorted(here.items()), sorted(there.items()))
        else:
            size = lambda n: int(n[:-1]) << 10 if n.endswith("k") else int(n)  # noqa: E731
            km = {k: v for k, v in here.items() if re.match(r"^kmalloc-\d+k?$", k)}
            self.ok(len(km) >= 7 and all(int(v[0]) == size(k.split("-")[1]) for k, v in km.items()),
                    "kmem_cache_init: each kmalloc-N cache has objects of N bytes", sorted(km.items()))

    def vmalloc_init(self):
        info = self.sec("vmalloc_init", "mm-vmallocinfo")
        end = self.con_block("mm: vmallocinfo", lambda t: t.startswith("0x"))
        if end is not None:
            self.ok(len(info) > 0 and all(l in end for l in info),
                    "vmalloc_init: the %d areas vmalloc_init imported are in the kernel's end-of-boot vmallocinfo"
                    % len(info), info, end)
        areas = self.sec("vmalloc_init", "mm-vmap-areas")
        iv = intervals([(int(m.group(1), 16), int(m.group(2), 16)) for m in
                        (re.match(r"^  (0x[0-9a-f]+)-(0x[0-9a-f]+)", l) for l in areas) if m])
        v = self.con_match(r"^\s+vmalloc : (0x[0-9a-f]+) - (0x[0-9a-f]+)")
        busy = [l for l in areas if l.startswith("busy:")]
        self.ok(v is not None and iv == [(int(v.group(1), 16), int(v.group(2), 16))] and busy
                and int(busy[0].split()[1]) == len(info),
                "vmalloc_init: the busy and free areas tile the `vmalloc :` range; busy = mm-vmallocinfo's %d"
                % len(info), areas, v.group(0) if v else None)

    def smp_init(self):
        cpus = self.sec("smp_init", "mm-cpus")
        tot = self.con_match(r"^SMP: Total of (\d+) processors activated\.$")
        n = re.match(r"^(\d+) CPUs? online", cpus[-1] if cpus else "")
        self.ok(tot is not None and n is not None and tot.group(1) == n.group(1),
                "smp_init: %s CPUs online, as `SMP: Total of` says" % (n.group(1) if n else "?"), cpus)
        booted = {int(m.group(1)): int(m.group(2), 16) for m in
                  (re.match(r"^CPU(\d+): Booted secondary processor (0x[0-9a-f]+)", t) for t in self.text) if m}
        mine = {int(m.group(1)): int(m.group(2), 16) for m in
                (re.match(r"^CPU(\d+): MPIDR (0x[0-9a-f]+), node \d+, online", l) for l in cpus) if m}
        self.ok(len(booted) > 0 and all(mine.get(c) == mp for c, mp in booted.items()),
                "smp_init: each `CPUn: Booted secondary processor` MPIDR is mm-cpus'", cpus, booted)
        # Each secondary's stack is a THREAD_SIZE vmalloc area (Linux: VMAP_STACK).
        new = [l for l in self.sec("smp_init", "mm-vmallocinfo") if l not in self.sec("vmalloc_init", "mm-vmallocinfo")]
        self.ok(len(new) == len(booted) and all(" vmalloc_node pages=4 vmalloc " in l for l in new),
                "smp_init: one new 16K vmalloc area (a stack) per secondary CPU (%d)" % len(booted), new)

    def kernel_init(self):
        b = self.sec("kernel_init", "mm-buddyinfo")
        want = self.con_block("mm: buddyinfo", lambda t: t.startswith("Node "))
        if want is not None:
            self.ok(len(want) > 0 and b == want, "kernel_init: mm-buddyinfo prints the kernel's buddyinfo", b, want)
            v = self.sec("kernel_init", "mm-vmallocinfo")
            wv = self.con_block("mm: vmallocinfo", lambda t: t.startswith("0x"))
            self.ok(wv is not None and len(wv) > 0 and v == wv, "kernel_init: mm-vmallocinfo prints the kernel's vmallocinfo", v, wv)
            p = self.sec("kernel_init", "mm-ptdump")
            i = [k for k, t in enumerate(self.text) if t.startswith("ptdump: kernel page tables")]
            wp = self.con_block(self.text[i[0]], lambda t: True)[:len(p)] if i else None
            self.ok(wp is not None and len(p) > 10 and p == wp, "kernel_init: mm-ptdump prints the kernel's ptdump", p, wp)
        else:
            z = self.sec("kernel_init", "mm-zoneinfo")
            free = sum(int(m.group(1)) for m in (re.match(r"^  pages free\s+(\d+)$", l) for l in z) if m)
            buddy = sum(sum(int(n) << o for o, n in enumerate(l.split()[4:])) for l in b)
            self.ok(free > 0 and free == buddy, "kernel_init: mm-zoneinfo's free pages are mm-buddyinfo's blocks (%d)" % free)
        # The log sections, stop after stop, hold every console line up to kernel_init, in
        # order (and the KERN_DEBUG lines the console does not show, such as pcpu-alloc:).
        logs = [l for s in STAGES for l in self.sec(s, "log")]
        ts = lambda l: float(re.match(r"^\[\s*(\d+\.\d+)\]", l).group(1))  # noqa: E731
        con = [l for l in self.con if strip_ts(l) is not None and logs and ts(l) <= ts(logs[-1])]
        it = iter(logs)
        missing = [l for l in con if not any(l == d for d in it)]
        self.ok(len(con) > 20 and not missing,
                "the stops' log sections hold the console's %d lines up to kernel_init, in order" % len(con), missing[:5])

    def all(self):
        missing = [s for s in STAGES if s not in self.stops]
        self.ok(not missing, "the tour stopped at all %d stages" % len(STAGES), missing)
        self.primary_entry()
        self.start_kernel()
        self.setup_machine_fdt()
        fdt_arrays = dump_arrays(self.sec("setup_machine_fdt", "mm-memblock"))
        s = self.arm64_memblock_init(fdt_arrays)
        s = self.paging_init(s)
        s = self.bootmem_init(s)
        self.setup_per_cpu_areas(s)
        self.build_all_zonelists()
        self.mem_init()
        self.kmem_cache_init()
        self.vmalloc_init()
        self.smp_init()
        self.kernel_init()


def tour(name, args, debug):
    t0 = time.time()
    rc, out, con = run_tour(args)
    check(rc == 0 and "scripts/tour: %d stops" % len(STAGES) in out,
          "%s: scripts/tour --batch %s reached every stop (exit %s, %.1f s)" % (name, " ".join(args), rc, time.time() - t0))
    if rc != 0:
        print(out[-3000:])
    check(len(con) > 20, "%s: --console kept the kernel's console" % name)
    Boot(name, out, con, debug).all()


class Pty:
    """scripts/tour (interactive) on a pseudo-terminal, in its own session."""

    def __init__(self):
        import pty
        self.master, slave = pty.openpty()
        self.p = subprocess.Popen([TOUR], cwd=ROOT, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        self.buf = b""

    def until(self, tok, timeout=120):
        import select
        end = time.time() + timeout
        while tok.encode() not in self.buf:
            r, _, _ = select.select([self.master], [], [], max(0, end - time.time()))
            try:
                d = os.read(self.master, 65536) if r else b""
            except OSError:
                d = b""
            if not d:
                return None
            self.buf += d
        i = self.buf.index(tok.encode()) + len(tok)
        got, self.buf = self.buf[:i], self.buf[i:]
        return got.decode(errors="replace")

    def send(self, line):
        os.write(self.master, line.encode() + b"\n")

    def close(self):
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait()
        os.close(self.master)


def interactive():
    """The prompt between stops: a GDB command runs, Enter goes on, a command that would run
    the kernel is refused, q leaves the tour with GDB at the stop."""
    t = Pty()
    try:
        first = t.until("tour 1/13 primary_entry")
        t.until("> ")
        check(first is not None and "==== tour stop 1/13: primary_entry" in first,
              "interactive: scripts/tour stops at primary_entry and prompts")
        t.send("info registers x0")
        out = t.until("tour 1/13 primary_entry")
        t.until("> ")
        check(out is not None and re.search(r"x0\s+0x[0-9a-f]+", out) is not None,
              "interactive: a GDB command at the prompt runs (info registers x0)", out)
        t.send("")
        out = t.until("tour 2/13 start_kernel")
        t.until("> ")
        check(out is not None and "==== tour stop 2/13: start_kernel" in out and "mm-image" in out,
              "interactive: Enter goes to the next stop (start_kernel)", out)
        t.send("continue")
        out = t.until("tour 2/13 start_kernel")
        t.until("> ")
        check(out is not None and "would run the kernel past the tour's breakpoints" in out,
              "interactive: `continue` is refused at the prompt", out)
        t.send("q")
        out = t.until("(gdb) ")
        check(out is not None and "left at stop 2; GDB is yours" in out, "interactive: q leaves the tour for GDB", out)
        t.send("mm-memblock")
        out = t.until("(gdb) ")
        check(out is not None and "MEMBLOCK configuration:" in out, "interactive: GDB works after the tour", out)
        t.send("quit")
    finally:
        t.close()


def main():
    interactive()
    tour("1G", ["--append", REPORTS], True)
    # rodata=on: with the linear map in pages, memblock=debug logs each of paging_init's 2056
    # page-table allocations on 4 GiB, more than the 128 KiB log buffer holds, so the stops'
    # log sections (read from the buffer) would miss lines the console has.
    tour("4G NUMA 2", ["-m", "4G", "--numa", "2", "--append", "rodata=on " + REPORTS], True)
    tour("plain", [], False)
    print("tests/tour.py: %s" % ("all passed" if failures == 0 else "%d failed" % failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
