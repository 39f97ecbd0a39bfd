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
                      "        cma      %d" % num(zone["cma_pages"]),
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


# ----- mm-nodes and mm-zonelists: what bootmem_init and build_all_zonelists built

def mem_range(start_pfn, end_pfn):
    return "[mem %#018x-%#018x]" % (start_pfn << 12, (end_pfn << 12) - 1)


def nodes_lines():
    """free_area_init()'s report, rebuilt from the pg_data_t and zones: `Zone ranges:` (each
    zone type's span over all nodes), the memblock node ranges, `Initmem setup node`, then
    each node's zones."""
    from . import memblock
    nodes = pgdats(node_map(True))
    if not nodes:
        raise NotYet("no nodes yet (bootmem_init's arch_numa_init sets up NODE_DATA)")
    spans = {}
    for _, pgdat in nodes:
        for zone in populated_zones(pgdat):
            if num(zone["spanned_pages"]):
                s = num(zone["zone_start_pfn"])
                e = s + num(zone["spanned_pages"])
                z = num(zone["zone_idx"])
                lo, hi = spans.get(z, (s, e))
                spans[z] = (min(lo, s), max(hi, e))
    lines = ["Zone ranges:"]
    for z, name in enumerate(ZONE_NAMES[:-1]):  # ZONE_MOVABLE has its own line in Linux
        lines.append("  %-8s %s" % (name, mem_range(*spans[z]) if z in spans else "empty"))
    lines.append("Early memory node ranges")
    for base, size, _, nid in sorted(memblock.regions(memblock.memblock()["memory"]), key=lambda r: (r[3], r[0])):
        lines.append("  node %3d: [mem %#018x-%#018x]" % (nid, base, base + size - 1))
    for nid, pgdat in nodes:
        s = num(pgdat["node_start_pfn"])
        lines.append("Initmem setup node %d %s" % (nid, mem_range(s, s + num(pgdat["node_spanned_pages"]))))
    for nid, pgdat in nodes:
        lines.append("Node %d: start_pfn %d, spanned %d, present %d pages" % (
            nid, num(pgdat["node_start_pfn"]), num(pgdat["node_spanned_pages"]), num(pgdat["node_present_pages"])))
        for zone in populated_zones(pgdat):
            if num(zone["spanned_pages"]):
                s = num(zone["zone_start_pfn"])
                lines.append("  zone %-8s %s spanned %d, present %d, managed %d" % (
                    ZONE_NAMES[num(zone["zone_idx"])], mem_range(s, s + num(zone["spanned_pages"])),
                    num(zone["spanned_pages"]), num(zone["present_pages"]), num(zone["managed_pages"])))
    return lines


ZONELIST_NAMES = ["fallback (ZONELIST_FALLBACK)", "this node only (ZONELIST_NOFALLBACK)"]


def zonelists(pgdat, which):
    zl = pgdat["node_zonelists"][which]
    refs = zl["_zonerefs"]
    return [(num(refs[i]["nid"]), num(refs[i]["zone_idx"])) for i in range(num(zl["nr"]))]


def zonelists_lines():
    """Each node's two zonelists, and what build_all_zonelists() prints from them."""
    from .boot import cpu_to_node
    m = node_map(True)
    nodes = dict(pgdats(m))
    if not any(zonelists(p, 0) for p in nodes.values()):
        raise NotYet("no zonelists yet (build_all_zonelists has not run)")
    lines, built, policy = [], 0, 0
    for nid, pgdat in nodes.items():
        for which, label in enumerate(ZONELIST_NAMES):
            refs = zonelists(pgdat, which)
            lines.append("Node %d, zonelist %s: %s" % (nid, label, ", ".join(
                "Node %d %s" % (n, ZONE_NAMES[z]) for n, z in refs) or "empty"))
            policy = max([policy] + [z for _, z in refs if z != len(ZONE_NAMES) - 1])
        order = []
        for n, _ in zonelists(pgdat, 0):
            if n not in order:
                order.append(n)
        if order:
            built += 1
            lines.append("Fallback order for Node %d: %s" % (nid, "".join("%d " % n for n in order)))
    # Linux: nr_free_zone_pages(gfp_zone(GFP_HIGHUSER_MOVABLE)) on the boot CPU's node.
    total = 0
    home = nodes.get(cpu_to_node(0))
    for n, z in (zonelists(home, 0) if home is not None else []):
        zone = nodes[n]["node_zones"][z]
        managed = num(zone["managed_pages"])
        high = num(zone["_watermark"][2]) + num(zone["watermark_boost"])
        total += max(managed - high, 0)
    lines.append("%d zonelists. Total pages: %d (managed pages above the high watermark in node %d's "
                 "fallback zones)" % (built, total, cpu_to_node(0)))
    lines.append("Policy zone: %s" % ZONE_NAMES[policy])
    return lines


def memory_lines():
    """The numbers of mem_init_print_info()'s `Memory: A/B available (... R reserved ...)`."""
    pa = once("mm::page_alloc::PAGE_ALLOC", "no buddy allocator yet (mem_init has not run)")
    free = present = managed = 0
    for _, pgdat in pgdats(buddy_nodes()):
        for zone in populated_zones(pgdat):
            free += sum(n << o for o, n in enumerate(free_counts(zone)))
            present += num(zone["present_pages"])
            managed += num(zone["managed_pages"])
    totalram = num(pa["totalram_pages"])
    totalcma = num(pa["totalcma_pages"])
    return ["free pages in the buddy: %d = %dK (the `Memory:` line's available)" % (free, free * 4),
            "present pages: %d = %dK (its total, Linux: physpages)" % (present, present * 4),
            "totalram_pages: %d = %dK, zones' managed pages: %d" % (totalram, totalram * 4, managed),
            "totalcma_pages: %d = %dK (its cma-reserved)" % (totalcma, totalcma * 4),
            "present - totalram - totalcma: %dK (its reserved)" % ((present - totalram - totalcma) * 4)]


class MmNodes(MmCommand):
    """Print the zone ranges and node ranges as free_area_init() reports them (mm-nodes)."""

    def __init__(self):
        super().__init__("mm-nodes")

    def run(self, arg):
        for line in nodes_lines():
            gdb.write(line + "\n")


class MmZonelists(MmCommand):
    """Print each node's zonelists, the fallback order and total pages (mm-zonelists)."""

    def __init__(self):
        super().__init__("mm-zonelists")

    def run(self, arg):
        for line in zonelists_lines():
            gdb.write(line + "\n")
