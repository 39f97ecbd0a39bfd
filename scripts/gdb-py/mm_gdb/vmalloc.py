"""mm-vmallocinfo: /proc/vmallocinfo over the busy vmap areas (src/mm/vmalloc/api.rs VMAP)."""
import gdb

from .utils import MAX_NUMNODES, MmCommand, NotYet, num, peel, raw_word, rust_str, sym, typed_at, u64

VMAP_AREA = "arm64_mm::mm::vmalloc::VmapArea"
VM_FLAGS = [(0x1, "ioremap"), (0x2, "vmalloc"), (0x4, "vmap"), (0x8, "user"), (0x10, "dma-coherent")]
VM_UNINITIALIZED = 0x20
NODES_PGSHIFT = 60


def option(v):
    """The payload of a Rust Option value, or None (GDB resolves the active variant)."""
    t = v.type.strip_typedefs()
    for f in t.fields():
        if f.name == "Some":
            inner = v[f]
            return inner["__0"]
        if f.name == "None":
            return None
    # Older layouts: look at the dynamic type's single variant field.
    fields = v.dynamic_type.fields()
    if len(fields) == 1 and fields[0].name == "Some":
        return v[fields[0]]["__0"]
    return None


def tree_nodes(tree):
    """The VmapAreas of a VaTree, address order (its sorted `next` list)."""
    out, p = [], raw_word(tree["head"])
    while p and len(out) < 1000000:
        va = typed_at(VMAP_AREA, p)
        out.append(va)
        p = raw_word(va["next"])
    return out


def vmallocinfo_lines():
    v = peel(sym("mm::vmalloc::api::VMAP"))
    if not num(v["vmap_initialized"]):
        raise NotYet("vmalloc is not initialised yet (vmalloc_init in mm_init has not run)")
    busy = tree_nodes(v["busy"])
    ranges = [(num(a["va_start"]), num(a["va_end"])) for a in busy]
    lines = []
    for a in busy:
        start, end = num(a["va_start"]), num(a["va_end"])
        vm = option(a["vm"])
        if vm is None:
            lines.append("0x%016x-0x%016x %7d vm_map_ram" % (start, end, end - start))
            continue
        addr, size, flags = num(vm["addr"]), num(vm["size"]), num(vm["flags"])
        line = "0x%016x-0x%016x %7d" % (addr, addr + size, size)
        caller = option(vm["caller"])
        if caller is not None:
            line += " " + rust_str(caller)
        nr_pages, pages = num(vm["nr_pages"]), num(vm["pages"])
        if nr_pages:
            line += " pages=%d" % nr_pages
        if num(vm["phys_addr"]):
            line += " phys=0x%016x" % num(vm["phys_addr"])
        line += "".join(" " + n for bit, n in VM_FLAGS if flags & bit)
        if pages and any(s <= pages < e for s, e in ranges):
            line += " vpages"
        if not flags & VM_UNINITIALIZED and pages:
            counts = [0] * MAX_NUMNODES
            for i in range(nr_pages):
                page = u64(pages + 8 * i)
                if page:
                    counts[(u64(page) >> NODES_PGSHIFT) & 0xF] += 1
            line += "".join(" N%d=%d" % (n, c) for n, c in enumerate(counts) if c)
        lines.append(line)
    if busy:
        for a in tree_nodes(v["purge"]):
            start, end = num(a["va_start"]), num(a["va_end"])
            lines.append("0x%016x-0x%016x %7d unpurged vm_area" % (start, end, end - start))
    return lines


class MmVmallocinfo(MmCommand):
    """Print the vmalloc areas in use (Linux: /proc/vmallocinfo)."""

    def __init__(self):
        super().__init__("mm-vmallocinfo")

    def run(self, arg):
        for line in vmallocinfo_lines():
            gdb.write(line + "\n")


def vmap_areas_lines():
    """Both trees vmalloc_init() fills: the busy areas (the vmlist it imported, and whatever was
    allocated since) and the free space around them (vmap_init_free_space())."""
    v = peel(sym("mm::vmalloc::api::VMAP"))
    if not num(v["vmap_initialized"]):
        raise NotYet("vmalloc is not initialised yet (vmalloc_init in mm_init has not run)")
    lines = []
    for name in ("busy", "free"):
        areas = tree_nodes(v[name])
        total = sum(num(a["va_end"]) - num(a["va_start"]) for a in areas)
        lines.append("%s: %d areas, %d bytes" % (name, len(areas), total))
        for a in areas:
            start, end = num(a["va_start"]), num(a["va_end"])
            lines.append("  0x%016x-0x%016x %15d" % (start, end, end - start))
    lines.append("vmap_init_free_space covered [0x%016x-0x%016x)" % (num(v["vmap_start"]), num(v["vmap_end"])))
    return lines


class MmVmapAreas(MmCommand):
    """Print the busy and free vmap areas (Linux: vmap_area_list and free_vmap_area_list)."""

    def __init__(self):
        super().__init__("mm-vmap-areas")

    def run(self, arg):
        for line in vmap_areas_lines():
            gdb.write(line + "\n")
