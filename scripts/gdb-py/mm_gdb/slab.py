"""mm-slabinfo: /proc/slabinfo over SLUB's cache list (src/mm/slab_common.rs SLUB)."""
import gdb

from .utils import MAX_NUMNODES, MmCommand, NotYet, field_offset, num, once, peel, rust_str, typed_at, u64

KMEM_CACHE = "arm64_mm::mm::slub::slub_def::KmemCache"
KMEM_CACHE_NODE = "arm64_mm::mm::slub::slub_def::KmemCacheNode"
SLAB_LIST_OFFSET = 8  # struct slab's slab_list overlays page->lru


def list_entries(head, link_offset, reverse=False):
    """The addresses of the structures on a list_head ring (`link_offset`: where the link is)."""
    out, cur = [], u64(head + (8 if reverse else 0))
    while cur and cur != head and len(out) < 100000:
        out.append(cur - link_offset)
        cur = u64(cur + (8 if reverse else 0))
    return out


def caches():
    try:
        slub = once("mm::slab_common::SLUB", "")
    except NotYet:
        raise NotYet("no slab allocator yet (kmem_cache_init in mm_init has not run)")
    head = int(peel(slub["slab_caches"]).address)
    link = field_offset(gdb.lookup_type(KMEM_CACHE), "list")
    return [typed_at(KMEM_CACHE, a) for a in list_entries(head, link)]


def slabinfo(s):
    nr_slabs = nr_objs = nr_free = 0
    for nid in range(MAX_NUMNODES):
        n = num(s["node"][nid])
        if not n:
            continue
        node = typed_at(KMEM_CACHE_NODE, n)
        nr_slabs += num(node["nr_slabs"])
        nr_objs += num(node["total_objects"])
        lists = peel(node["list_lock"])
        for slab in list_entries(int(lists["partial"].address), SLAB_LIST_OFFSET):
            c = u64(slab + field_offset(gdb.lookup_type("arm64_mm::mm::slub::slub_def::Slab"), "counters"))
            nr_free += ((c >> 16) & 0x7FFF) - (c & 0xFFFF)
    oo = num(s["oo"])
    return nr_objs - nr_free, nr_objs, oo & 0xFFFF, oo >> 16, nr_slabs


def slabinfo_lines():
    lines = ["slabinfo - version: 2.1",
             "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
             " : tunables <limit> <batchcount> <sharedfactor>"
             " : slabdata <active_slabs> <num_slabs> <sharedavail>"]
    for s in caches():
        active, total, per_slab, order, slabs = slabinfo(s)
        lines.append("%-17s %6d %6d %6d %4d %4d : tunables %4d %4d %4d : slabdata %6d %6d %6d"
                     % (rust_str(s["name"]), active, total, num(s["size"]), per_slab, 1 << order,
                        0, 0, 0, slabs, slabs, 0))
    return lines


class MmSlabinfo(MmCommand):
    """Print SLUB's caches (Linux: /proc/slabinfo)."""

    def __init__(self):
        super().__init__("mm-slabinfo")

    def run(self, arg):
        for line in slabinfo_lines():
            gdb.write(line + "\n")
