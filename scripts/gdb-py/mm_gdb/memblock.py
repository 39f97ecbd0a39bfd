"""mm-memblock: memblock's two arrays, as __memblock_dump_all() (memblock=debug) prints them."""
import gdb

from .utils import MAX_NUMNODES, MmCommand, addr, field_offset, num, peel, rust_str, sym, typed_at, u64

MEMBLOCK = "mm::memblock::MEMBLOCK"


def regions(t):
    """(base, size, flags, nid) of each region in use of a MemblockType value."""
    cnt = num(t["cnt"])
    ext = t["ext"]  # Option<ExtArray>: None is a null `ptr` (NonNull's niche)
    ext_t = gdb.lookup_type("arm64_mm::mm::memblock::ExtArray")
    ptr = u64(addr(ext) + field_offset(ext_t, "ptr"))
    rtype = gdb.lookup_type("arm64_mm::mm::memblock::MemblockRegion")
    out = []
    for i in range(cnt):
        r = t["init_regions"][i] if ptr == 0 else typed_at(
            "arm64_mm::mm::memblock::MemblockRegion", ptr + i * rtype.sizeof)
        out.append((num(r["base"]), num(r["size"]), num(r["flags"]), num(r["nid"])))
    return out


def memblock():
    return peel(sym(MEMBLOCK))


def dump_lines():
    mb = memblock()
    mem, res = mb["memory"], mb["reserved"]
    lines = ["MEMBLOCK configuration:",
             " memory size = %#018x reserved size = %#018x" % (num(mem["total_size"]), num(res["total_size"]))]
    for t in (mem, res):
        name = rust_str(t["name"])
        lines.append(" %s.cnt  = %#x" % (name, num(t["cnt"])))
        for idx, (base, size, flags, nid) in enumerate(regions(t)):
            end = (base + size - 1) % (1 << 64)
            node = " on node %d" % nid if nid != MAX_NUMNODES else ""
            lines.append(" %s[%#x]\t[%#018x-%#018x], %#018x bytes%s flags: %#x"
                         % (name, idx, base, end, size, node, flags))
    return lines


def mem_pfn_ranges():
    """Linux: for_each_mem_pfn_range() over every node: [PFN_UP(base), PFN_DOWN(end))."""
    out = []
    for base, size, _, _ in regions(memblock()["memory"]):
        s, e = (base + 4095) >> 12, (base + size) >> 12
        if s < e:
            out.append((s, e))
    return out


def early_pfn_valid(pfn):
    """Linux: pfn_valid() with early sections only (src/mm/free_area_init.rs)."""
    shift = 27 - 12  # PFN_SECTION_SHIFT
    s, e = (pfn >> shift) << shift, ((pfn >> shift) + 1) << shift
    return any(rs < e and s < re for rs, re in mem_pfn_ranges())


class MmMemblock(MmCommand):
    """Print memblock's memory and reserved arrays (Linux: memblock_dump_all's format)."""

    def __init__(self):
        super().__init__("mm-memblock")

    def run(self, arg):
        for line in dump_lines():
            gdb.write(line + "\n")
