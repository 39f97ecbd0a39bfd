"""mm-ptdump [VA]: swapper_pg_dir, in /sys/kernel/debug/kernel_page_tables' format (the
kernel's ptdump), or one address's walk (the monitor's `ptdump VA`)."""
import re
import struct

import gdb

from .utils import (MmCommand, NotYet, PAGE_END, PAGE_OFFSET, VMEMMAP_START, lm_va, num, read, sym)

LEVEL_NAMES = ["PGD", "PUD", "PMD", "PTE"]
OA_MASK = ((1 << 48) - 1) & ~0xFFF
VMEMMAP_END = VMEMMAP_START + ((PAGE_END - PAGE_OFFSET) >> 6)
MODULES_END = PAGE_END + (128 << 20)
VMALLOC_END = VMEMMAP_START - (256 << 20)
FIXADDR_TOP = VMEMMAP_START - (32 << 20)
FIXADDR_START = FIXADDR_TOP - (1030 << 12)  # END_OF_FIXED_ADDRESSES pages (src/arch/aarch64/fixmap.rs)
PCI_IO_END = VMEMMAP_START - (8 << 20)
MARKERS = [(PAGE_OFFSET, "Linear Mapping start"), (PAGE_END, "Linear Mapping end"),
           (PAGE_END, "Modules start"), (MODULES_END, "Modules end"),
           (MODULES_END, "vmalloc() area"), (VMALLOC_END, "vmalloc() end"),
           (FIXADDR_START, "Fixmap start"), (FIXADDR_TOP, "Fixmap end"),
           (PCI_IO_END - (16 << 20), "PCI I/O start"), (PCI_IO_END, "PCI I/O end"),
           (VMEMMAP_START, "vmemmap start"), (VMEMMAP_END, "vmemmap end")]


def kimage_voffset():
    return num(sym("arch::aarch64::memory::kimage_voffset"))


def swapper_pg_dir_phys():
    # A linker symbol, without a type: `info address` gives it (the image's copy, or the
    # physical alias scripts/gdb also loads — which is already the physical address).
    out = gdb.execute("info address swapper_pg_dir", to_string=True)
    m = re.search(r" is at (0x[0-9a-f]+)", out)
    if not m:
        raise gdb.GdbError("no swapper_pg_dir symbol: " + out.strip())
    va = int(m.group(1), 16)
    if va < PAGE_OFFSET:
        return va
    off = kimage_voffset()
    if off == 0:
        raise NotYet("kimage_voffset is not set yet (head.S sets it before start_kernel)")
    return (va - off) % (1 << 64)


def read_table(pa):
    """The 512 entries of the table at `pa`: through the linear map, else (early, or a table in
    the image) through the kernel image's mapping."""
    try:
        data = read(lm_va(pa), 4096)
    except (gdb.MemoryError, NotYet):
        data = read((pa + kimage_voffset()) % (1 << 64), 4096)
    return struct.unpack("<512Q", data)


def is_table(level, d):
    return level < 3 and d & 3 == 3


def walk_va(va):
    """The physical address `va` maps to in swapper_pg_dir, or None."""
    table = swapper_pg_dir_phys()
    for level in range(4):
        shift = 39 - 9 * level
        d = read_table(table)[(va >> shift) & 511]
        if not d & 1:
            return None
        if is_table(level, d):
            table = d & OA_MASK
            continue
        return (d & OA_MASK & ~((1 << shift) - 1)) + (va & ((1 << shift) - 1))
    return None


def dump_prot(d):
    bits = [(d & 1, " ", "F"), (d >> 6 & 1, "USR", "   "), (d >> 7 & 1, "ro", "RW"),
            (d >> 53 & 1, "NX", "x "), ((d >> 8 & 3) == 3, "SHD", "   "), (d >> 10 & 1, "AF", "  "),
            (d >> 11 & 1, "NG", "  "), (d >> 52 & 1, "CON", "   "), ((d >> 1 & 1) == 1, "   ", "BLK"),
            (d >> 54 & 1, "UXN", "   ")]
    s = "".join(" " + (a if on else b) for on, a, b in bits)
    attr = {0: "MEM/NORMAL", 1: "MEM/NORMAL-TAGGED", 2: "MEM/NORMAL-NC", 3: "DEVICE/nGnRnE",
            4: "DEVICE/nGnRE"}.get(d >> 2 & 7, "")
    return s + (" " + attr if attr else "")


def leaves(table, level, base, pxn_table):
    size = 1 << (39 - 9 * level)
    for i, d in enumerate(read_table(table)):
        start = (base + i * size) % (1 << 64)
        if d & 1 and is_table(level, d):
            yield from leaves(d & OA_MASK, level + 1, start, pxn_table or bool(d >> 59 & 1))
        else:
            yield start, level, d, pxn_table


def ttbr1_root():
    """The table TTBR1_EL1 points at (init_pg_dir before paging_init, then swapper_pg_dir)."""
    return int(gdb.parse_and_eval("$TTBR1_EL1")) & OA_MASK


def table_pages(root):
    """The physical addresses of the table pages below `root` (not `root` itself)."""
    out = []

    def walk(table, level):
        for d in read_table(table):
            if d & 1 and is_table(level, d):
                out.append(d & OA_MASK)
                walk(d & OA_MASK, level + 1)
    walk(root, 0)
    return out


def ptdump_lines(root=None):
    root = swapper_pg_dir_phys() if root is None else root
    if not any(d & 1 for d in read_table(root)):
        raise NotYet("swapper_pg_dir is empty (paging_init has not run; the kernel runs on init_pg_dir)")
    lines, run, marker = [], None, 0

    def emit_markers(a):
        nonlocal marker
        while marker < len(MARKERS) and MARKERS[marker][0] <= a:
            lines.append("---[ %s ]---" % MARKERS[marker][1])
            marker += 1

    def print_run(r, end):
        if not r["valid"]:
            return
        delta, units = ((end - r["start"]) % (1 << 64)) >> 10, "KMGTPE"
        u = 0
        while delta & 1023 == 0 and delta != 0 and u < 5:
            delta >>= 10
            u += 1
        lines.append("0x%016x-0x%016x   %9d%s %s%s" % (r["start"], end, delta, units[u],
                                                     LEVEL_NAMES[r["level"]], dump_prot(r["prot"])))

    marks = {m[0] for m in MARKERS}
    for start, level, d, pxn in leaves(root, 0, PAGE_OFFSET, False):
        valid = bool(d & 1)
        prot = ((d & ~OA_MASK) | (1 << 53 if pxn else 0)) if valid else 0
        same = (run is not None and run["level"] == level and run["prot"] == prot and run["valid"] == valid
                and run["marker"] == marker and start not in marks)
        if not same:
            if run is not None:
                print_run(run, start)
            emit_markers(start)
            run = {"start": start, "level": level, "prot": prot, "valid": valid, "marker": marker}
    if run is not None:
        print_run(run, 0)
    emit_markers((1 << 64) - 1)
    return lines


def walk_one_lines(va):
    lines, table = [], swapper_pg_dir_phys()
    for level in range(4):
        shift = 39 - 9 * level
        idx = (va >> shift) & 511
        d = read_table(table)[idx]
        line = "%s[%3d] @ %#x: %#018x" % (LEVEL_NAMES[level], idx, table, d)
        if not d & 1:
            lines.append(line + " (invalid)")
            return lines
        if is_table(level, d):
            lines.append(line + " table")
            table = d & OA_MASK
            continue
        pa = (d & OA_MASK & ~((1 << shift) - 1)) + (va & ((1 << shift) - 1))
        lines.append(line + " -> %#x" % pa + dump_prot(d))
        return lines
    return lines


class MmPtdump(MmCommand):
    """Dump swapper_pg_dir (Linux: kernel_page_tables), or walk one VA: mm-ptdump [VA|--ttbr1].
    --ttbr1 dumps the tables TTBR1_EL1 points at (init_pg_dir before paging_init)."""

    def __init__(self):
        super().__init__("mm-ptdump", gdb.COMPLETE_EXPRESSION)

    def run(self, arg):
        if arg == "--ttbr1":
            out = ptdump_lines(ttbr1_root())
        elif arg:
            va = int(gdb.parse_and_eval(arg).cast(gdb.lookup_type("u64")))
            out = walk_one_lines(va)
        else:
            out = ptdump_lines()
        for line in out:
            gdb.write(line + "\n")
