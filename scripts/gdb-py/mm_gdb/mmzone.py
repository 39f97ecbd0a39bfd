"""mm-buddyinfo and mm-zoneinfo: /proc/buddyinfo and /proc/zoneinfo over NODE_DATA."""
import gdb

from .utils import MAX_NUMNODES, MmCommand, NotYet, ZONE_NAMES, num, once, peel, raw_word, sym, typed_at

PGDAT = "arm64_mm::mm::mmzone::PglistData"


def node_map(early_ok):
    """The NodeDataMap: the published one, else (early_ok) NODE_DATA_EARLY as it is being built."""
    try:
        return once("mm::mmzone::NODE_DATA", "")
    except NotYet:
        if not early_ok:
            raise NotYet("no NODE_DATA yet (published by build_all_zonelists)")
    return peel(sym("mm::mmzone::NODE_DATA_EARLY"))


def pgdats(m):
    """(nid, PglistData) for each node with a pg_data_t, lowest first."""
    out = []
    for nid in range(MAX_NUMNODES):
        p = raw_word(m["node_data"][nid])  # Option<NonNull<PglistData>>
        if p:
            out.append((nid, typed_at(PGDAT, p)))
    return out


def populated_zones(pgdat):
    for z in range(len(ZONE_NAMES)):
        zone = pgdat["node_zones"][z]
        yield zone


def buddy_nodes():
    try:
        pa = once("mm::page_alloc::PAGE_ALLOC", "")
    except NotYet:
        raise NotYet("no buddy allocator yet (mem_init has not run); memblock manages memory")
    return typed_at("arm64_mm::mm::mmzone::NodeDataMap", num(pa["nodes"]))


def free_counts(zone):
    """nr_free of each order, 0s for a zone whose free lists are not initialised."""
    fa = peel(zone["free_area"]["__0"])
    orders = fa.type.strip_typedefs().range()[1] + 1
    if num(zone["initialized"]) == 0:
        return [0] * orders
    return [num(fa[o]["nr_free"]) for o in range(orders)]


def buddyinfo_lines():
    lines = []
    for nid, pgdat in pgdats(buddy_nodes()):
        for zone in populated_zones(pgdat):
            if num(zone["present_pages"]) == 0:
                continue
            name = ZONE_NAMES[num(zone["zone_idx"])]
            lines.append("Node %d, zone %8s " % (num(pgdat["node_id"]), name)
                         + "".join("%6d " % n for n in free_counts(zone)))
    return lines


def zoneinfo_lines():
    lines = []
    for nid, pgdat in pgdats(node_map(True)):
        for zone in populated_zones(pgdat):
            present, spanned = num(zone["present_pages"]), num(zone["spanned_pages"])
            if present == 0 and spanned == 0:
                continue
            wm = [num(zone["_watermark"][i]) for i in range(3)]
            free = num(zone["vm_stat"][0])  # NR_FREE_PAGES
            free = free if free < (1 << 63) else 0
            lines += ["Node %d, zone %8s" % (num(pgdat["node_id"]), ZONE_NAMES[num(zone["zone_idx"])]),
                      "  pages free     %d" % max(free, 0),
                      "        min      %d" % wm[0],
                      "        low      %d" % wm[1],
                      "        high     %d" % wm[2],
                      "        spanned  %d" % spanned,
                      "        present  %d" % present,
                      "        managed  %d" % num(zone["managed_pages"]),
                      "  start_pfn:           %d" % num(zone["zone_start_pfn"])]
    if not lines:
        raise NotYet("no zones yet (free_area_init in bootmem_init sets them up)")
    return lines


class MmBuddyinfo(MmCommand):
    """Print the buddy allocator's free blocks per order (Linux: /proc/buddyinfo)."""

    def __init__(self):
        super().__init__("mm-buddyinfo")

    def run(self, arg):
        for line in buddyinfo_lines():
            gdb.write(line + "\n")


class MmZoneinfo(MmCommand):
    """Print each zone's sizes and watermarks (Linux: /proc/zoneinfo, the sizes part)."""

    def __init__(self):
        super().__init__("mm-zoneinfo")

    def run(self, arg):
        for line in zoneinfo_lines():
            gdb.write(line + "\n")
