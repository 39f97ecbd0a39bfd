"""mm-page ADDR|PFN: one struct page decoded, in the monitor's `page` format."""
import gdb

from . import memblock
from .pgtable import walk_va
from .utils import (MmCommand, NotYet, PAGE_END, PAGE_OFFSET, PAGE_SHIFT, ZONE_NAMES, lm_va, memstart_addr,
                    num, pfn_to_page, typed_at)

PG_RESERVED, PG_HEAD = 12, 16
PAGE_TYPE_BASE, PG_BUDDY = 0xF0000000, 0x80
FLAG_NAMES = [(0, "locked"), (7, "waiters"), (8, "error"), (1, "referenced"), (2, "uptodate"),
              (3, "dirty"), (4, "lru"), (5, "active"), (6, "workingset"), (9, "slab"),
              (10, "owner_priv_1"), (11, "arch_1"), (12, "reserved"), (13, "private"),
              (14, "private_2"), (15, "writeback"), (16, "head"), (17, "mappedtodisk"),
              (18, "reclaim"), (19, "swapbacked"), (20, "unevictable"), (21, "mlocked"),
              (22, "hwpoison"), (23, "arch_2")]
NODES_PGSHIFT, ZONES_PGSHIFT = 60, 58


def flag_names(flags):
    """Linux: %pGp."""
    s = "%#x(" % flags + "".join(n + "|" for b, n in FLAG_NAMES if flags & (1 << b))
    return s + "node=%d|zone=%d)" % ((flags >> NODES_PGSHIFT) & 0xF, (flags >> ZONES_PGSHIFT) & 3)


def parse_pfn(arg):
    try:
        n = int(gdb.parse_and_eval(arg).cast(gdb.lookup_type("u64")))
    except gdb.error:
        raise gdb.GdbError("usage: mm-page ADDR|PFN")
    if n >= PAGE_OFFSET:
        if n < PAGE_END:
            return ((n & ~PAGE_OFFSET) + memstart_addr()) >> PAGE_SHIFT
        pa = walk_va(n)
        if pa is None:
            raise NotYet("VA %#x not mapped" % n)
        return pa >> PAGE_SHIFT
    return n


def page_lines(pfn):
    if not memblock.early_pfn_valid(pfn):
        raise NotYet("no struct page for that PFN")
    page = pfn_to_page(pfn)
    p = typed_at("arm64_mm::mm::page::Page", page)
    try:
        flags = num(p["flags"])
    except gdb.MemoryError:
        raise NotYet("no struct page at %#x yet (sparse_init in bootmem_init maps the vmemmap)" % page)
    refcount = num(p["_refcount"])
    mapcount = num(p["_mapcount"])
    private = num(p["private"])
    lru_next = num(p["lru"]["next"])
    phys = pfn << PAGE_SHIFT
    lines = ["page:%016x pfn:%#x phys:%#x va:%#x" % (page, pfn, phys, lm_va(phys)),
             "node:%d zone:%s refcount:%d mapcount:%d" % ((flags >> NODES_PGSHIFT) & 0xF,
                                                         ZONE_NAMES[(flags >> ZONES_PGSHIFT) & 3],
                                                         refcount, mapcount + 1),
             "flags: " + flag_names(flags)]
    if (mapcount & 0xFFFFFFFF) & (PAGE_TYPE_BASE | PG_BUDDY) == PAGE_TYPE_BASE:
        lines.append("in the buddy: head of a free order-%d block" % (private & 0xFFFFFFFF))
    elif lru_next & 1:
        lines.append("tail page of compound head %016x" % (lru_next - 1))
    elif flags & (1 << PG_RESERVED):
        lines.append("reserved (not managed by the buddy)")
    elif refcount > 0:
        lines.append("allocated")
    else:
        lines.append("free: inside a buddy block, or on a per-CPU list")
    return lines


class MmPage(MmCommand):
    """Decode the struct page of a PFN, a linear-map VA or a vmalloc VA: mm-page ADDR|PFN."""

    def __init__(self):
        super().__init__("mm-page", gdb.COMPLETE_EXPRESSION)

    def run(self, arg):
        if not arg:
            raise gdb.GdbError("usage: mm-page ADDR|PFN")
        for line in page_lines(parse_pfn(arg)):
            gdb.write(line + "\n")
