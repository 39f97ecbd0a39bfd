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


# ----- mm-memblock-diff: what changed in the two arrays since a mark (the tour marks each stop)

_MARK = None


def snapshot():
    """{array name: [(base, size, flags, nid)]} of both arrays now."""
    mb = memblock()
    return {rust_str(t["name"]): regions(t) for t in (mb["memory"], mb["reserved"])}


def region_text(name, r):
    base, size, flags, nid = r
    node = " on node %d" % nid if nid != MAX_NUMNODES else ""
    return "%s\t[%#018x-%#018x], %#018x bytes%s flags: %#x" % (name, base, (base + size - 1) % (1 << 64), size,
                                                              node, flags)


def diff_lines(old, new):
    """One summary line per array, then each region that went (`-`) or came (`+`), by address.
    A region that grew or was cut shows as both."""
    lines = []
    for name in ("memory", "reserved"):
        o, n = old.get(name, []), new.get(name, [])
        so, sn = set(o), set(n)
        changes = [(r, "-") for r in o if r not in sn] + [(r, "+") for r in n if r not in so]
        total = lambda rs: sum(r[1] for r in rs)  # noqa: E731
        lines.append(" %s: %d -> %d regions, %#x -> %#x bytes%s"
                     % (name, len(o), len(n), total(o), total(n), "" if changes else " (unchanged)"))
        for r, sign in sorted(changes, key=lambda c: (c[0][0], c[1] == "+")):
            lines.append("%s %s" % (sign, region_text(name, r)))
    return lines


def mark():
    global _MARK
    _MARK = snapshot()
    return _MARK


class MmMemblockDiff(MmCommand):
    """What changed in memblock since the mark: mm-memblock-diff [mark] (`mark`: remember now)."""

    def __init__(self):
        super().__init__("mm-memblock-diff")

    def run(self, arg):
        if arg == "mark":
            mark()
            gdb.write("mm-memblock-diff: marked\n")
            return
        if arg:
            raise gdb.GdbError("usage: mm-memblock-diff [mark]")
        if _MARK is None:
            raise gdb.GdbError("mm-memblock-diff: no mark yet (run `mm-memblock-diff mark` first)")
        for line in diff_lines(_MARK, snapshot()):
            gdb.write(line + "\n")
