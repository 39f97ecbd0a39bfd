"""mm-tour: the memory bring-up, stage by stage (scripts/tour; docs/TOUR.md says the same in prose).

It starts at primary_entry (scripts/gdb --early stops there) and runs the kernel to each stop
in boot order: a hardware breakpoint on the stage's first instruction, then a temporary one on
its return address (x30 on entry), so a stop "at the end" of a stage comes right after it
returned. At each stop it prints the stage's Linux and arm64-mm source, the kernel log lines
printed since the last stop (from the log buffer, as mm-dmesg reads it) and what the stage
built, each section headed by the GDB command that prints it.

    mm-tour            interactive: Enter goes to the next stop, `q` leaves the tour (GDB is
                       then yours), anything else is run as a GDB command
    mm-tour --batch    the whole tour without pausing; the last line says how many stops
"""
import gdb

from . import dmesg, memblock, pgtable
from .boot import elf_symbol, reg
from .stages import find_function
from .utils import NotYet, PAGE_OFFSET, memstart_addr, num, sym

# (stage, where, Linux, arm64-mm, sections). `where`: "entry" stops at the stage's first
# instruction, "end" right after it returns. A section is a GDB command, or (title, function).
STOPS = [
    ("primary_entry", "entry",
     "arch/arm64/kernel/head.S primary_entry: the first instruction, MMU off, x0 = the device tree",
     "src/arch/aarch64/head.S primary_entry",
     ["mm-image"]),
    ("start_kernel", "entry",
     "init/main.c start_kernel(), entered from head.S's __primary_switched with the MMU on",
     "src/init/main.rs start_kernel",
     ["mm-image", "mm-ptdump --ttbr1", "mm-memblock"]),
    ("setup_machine_fdt", "end",
     "arch/arm64/kernel/setup.c setup_machine_fdt() -> drivers/of/fdt.c early_init_dt_scan() -> "
     "early_init_dt_scan_memory() -> early_init_dt_add_memory_arch() -> memblock_add()",
     "src/arch/aarch64/kernel/setup.rs setup_machine_fdt, src/drivers/of/fdt.rs",
     ["log", "mm-memblock"]),
    ("arm64_memblock_init", "end",
     "arch/arm64/mm/init.c arm64_memblock_init(): memblock_remove() beyond the PA range and the "
     "linear region, memstart_addr, mem= (memblock_mem_limit_remove_map), memblock_reserve() of "
     "the kernel, the initrd, early_init_fdt_scan_reserved_mem()",
     "src/arch/aarch64/mm/init.rs arm64_memblock_init",
     ["log", "mm-memblock-diff", "linear"]),
    ("paging_init", "end",
     "arch/arm64/mm/mmu.c paging_init(): map_kernel() and map_mem() (__map_memblock) into "
     "swapper_pg_dir, then memblock_phys_free() of init_pg_dir",
     "src/arch/aarch64/mm/mmu.rs paging_init",
     ["log", "tables", "mm-ptdump", "mm-memblock-diff"]),
    ("bootmem_init", "end",
     "arch/arm64/mm/init.c bootmem_init(): arm64_numa_init(), sparse_init(), zone_sizes_init() -> "
     "mm/page_alloc.c free_area_init() -> free_area_init_node() -> free_area_init_core(), "
     "memblock_dump_all()",
     "src/arch/aarch64/mm/init.rs bootmem_init, src/mm/free_area_init.rs, src/mm/sparse.rs",
     ["log", "mm-nodes", "mm-zoneinfo", "mm-memblock-diff", "mm-memblock"]),
    ("setup_per_cpu_areas", "end",
     "drivers/base/arch_numa.c setup_per_cpu_areas() -> mm/percpu.c pcpu_embed_first_chunk()",
     "src/init/main.rs setup_per_cpu_areas, src/mm/percpu.rs",
     ["log", "mm-percpu", "mm-memblock-diff"]),
    ("build_all_zonelists", "end",
     "mm/page_alloc.c build_all_zonelists() -> build_all_zonelists_init() -> __build_all_zonelists() "
     "-> build_zonelists()",
     "src/init/main.rs build_all_zonelists, src/mm/zonelist.rs",
     ["log", "mm-zonelists"]),
    ("mem_init", "end",
     "arch/arm64/mm/init.c mem_init() -> mm/memblock.c memblock_free_all() -> "
     "free_low_memory_core_early() -> __free_pages_core() (what free_all_bootmem() was)",
     "src/arch/aarch64/mm/init.rs mem_init, src/mm/page_alloc/mm_init.rs",
     ["log", "mm-buddyinfo", "memory"]),
    ("kmem_cache_init", "end",
     "mm/slub.c kmem_cache_init(): bootstrap kmem_cache and kmem_cache_node, then "
     "mm/slab_common.c create_kmalloc_caches()",
     "src/init/main.rs kmem_cache_init, src/mm/slub/create.rs, src/mm/slab_common.rs",
     ["log", "mm-slabinfo"]),
    ("vmalloc_init", "end",
     "mm/vmalloc.c vmalloc_init(): vmap_area_cachep, import the early vmlist, "
     "vmap_init_free_space()",
     "src/mm/vmalloc/api.rs vmalloc_init, src/mm/vmalloc.rs",
     ["log", "mm-vmallocinfo", "mm-vmap-areas"]),
    ("smp_init", "end",
     "kernel/smp.c smp_init() -> bringup_nonboot_cpus() -> arch/arm64/kernel/smp.c __cpu_up() "
     "(PSCI CPU_ON) -> secondary_start_kernel()",
     "src/arch/aarch64/kernel/smp.rs smp_init, secondary_start_kernel",
     ["log", "mm-cpus", "mm-vmallocinfo"]),
    ("kernel_init", "entry",
     "init/main.c kernel_init(): the end of init, after page_alloc_init_late(), free_initmem() and "
     "mark_readonly()",
     "src/init/main.rs (start_kernel's tail, rest_init), src/main.rs kernel_init",
     ["log", "mm-buddyinfo", "mm-zoneinfo", "mm-vmallocinfo", "mm-ptdump"]),
]

_last_log = None


def log_lines():
    """The log records printed since the last call (all of them the first time, or when the
    last one seen has been overwritten)."""
    global _last_log
    recs = [t for _, t in dmesg.records()[0]]
    new = recs
    if _last_log is not None and _last_log in recs:
        new = recs[len(recs) - recs[::-1].index(_last_log):]
    if recs:
        _last_log = recs[-1]
    return new


def linear_lines():
    pstart = memstart_addr()
    mb = memblock.snapshot()["memory"]
    lines = ["memstart_addr (PHYS_OFFSET) %#x: __va(pa) = (pa - PHYS_OFFSET) | PAGE_OFFSET" % pstart]
    if mb:
        start, end = mb[0][0], mb[-1][0] + mb[-1][1]
        lines.append("memory [%#x-%#x) will be linear-mapped at 0x%016x - 0x%016x"
                     % (start, end, ((start - pstart) | PAGE_OFFSET) % (1 << 64), ((end - pstart) | PAGE_OFFSET) % (1 << 64)))
    return lines


def tables_lines():
    root = pgtable.swapper_pg_dir_phys()
    voff = num(sym("arch::aarch64::memory::kimage_voffset"))
    text, end = (elf_symbol("_text") - voff) % (1 << 64), (elf_symbol("_end") - voff) % (1 << 64)
    tables = pgtable.table_pages(root)
    outside = [t for t in tables if not text <= t < end]
    return ["swapper_pg_dir at %#x: %d table pages below it, %d of them outside the image (from memblock)"
            % (root, len(tables), len(outside))]


def section(title):
    """The lines of one section: a GDB command's output, or one of the tour's own."""
    own = {"log": log_lines, "linear": linear_lines, "tables": tables_lines,
           "memory": lambda: memory_lines()}
    try:
        if title in own:
            return own[title]()
        if title == "mm-memblock-diff":
            lines = memblock.diff_lines(memblock._MARK or {}, memblock.snapshot())
            memblock.mark()
            return lines
        if title == "mm-memblock":
            memblock.mark()
        return gdb.execute(title, to_string=True).splitlines()
    except NotYet as e:
        return [str(e)]
    except gdb.MemoryError as e:
        return ["cannot read kernel memory (%s)" % e]


def memory_lines():
    from .mmzone import memory_lines as m
    return m()


TITLES = {"log": "the kernel log since the last stop (mm-dmesg)",
          "linear": "memstart_addr and the linear map (p arm64_mm::arch::aarch64::memory::memstart_addr)",
          "tables": "the page-table pages (mm-ptdump walks them)",
          "memory": "the numbers of the `Memory:` line"}


class Tour:
    def __init__(self, batch):
        self.batch = batch
        self.n = 0

    def show(self, i):
        stage, where, linux, ours, sections = STOPS[i]
        at = "its first instruction" if where == "entry" else "its end (the instruction after the call)"
        gdb.write("\n==== tour stop %d/%d: %s, at %s\n" % (i + 1, len(STOPS), stage, at))
        f = gdb.selected_frame()
        sal = f.find_sal()
        where_src = " (%s:%d)" % (sal.symtab.filename, sal.line) if sal.symtab else ""
        name = (f.name() or "??").split("<")[0]  # without the generic arguments
        gdb.write("pc %#x in %s%s\n" % (f.pc(), name, where_src))
        gdb.write("Linux: %s\n" % linux)
        gdb.write("arm64-mm: %s\n" % ours)
        for title in sections:
            gdb.write("--- %s\n" % TITLES.get(title, title))
            for line in section(title):
                gdb.write(line + "\n")
        self.n += 1

    def run_to(self, i):
        """Runs the kernel to stop i: True there, None if the stage has no symbol (inlined:
        the stop is skipped), False if the kernel stopped elsewhere."""
        stage, where = STOPS[i][0], STOPS[i][1]
        addr = find_function(stage)
        if addr is None:
            gdb.write("\nmm-tour: stop %d/%d skipped: no function %s in the kernel (inlined?)\n"
                      % (i + 1, len(STOPS), stage))
            return None
        if not self.cont_to(addr):
            return False
        if where == "end":
            return self.cont_to(reg("x30"))
        return True

    def cont_to(self, addr):
        bp = gdb.Breakpoint("*%#x" % addr, type=gdb.BP_HARDWARE_BREAKPOINT, internal=True, temporary=True)
        quiet = gdb.parameter("suppress-cli-notifications")
        try:
            gdb.execute("set suppress-cli-notifications on")
            gdb.execute("continue", to_string=True)
        finally:
            gdb.execute("set suppress-cli-notifications %s" % ("on" if quiet else "off"))
            if bp.is_valid():
                bp.delete()
        if reg("pc") != addr:
            gdb.write("mm-tour: the kernel stopped at %#x, not at %#x\n" % (reg("pc"), addr))
            return False
        return True

    def pause(self, i):
        """The prompt between stops: True to go on."""
        while True:
            try:
                line = input("tour %d/%d %s (Enter: next stop, q: leave the tour, or a GDB command)> "
                             % (i + 1, len(STOPS), STOPS[i][0]))
            except (EOFError, KeyboardInterrupt):
                gdb.write("\n")
                return False
            line = line.strip()
            if not line:
                return True
            if line in ("q", "quit"):
                return False
            if line.split()[0] in RESUMING:
                gdb.write("mm-tour: `%s` would run the kernel past the tour's breakpoints; Enter goes on, "
                          "q leaves the tour\n" % line)
                continue
            try:
                gdb.execute(line)
            except gdb.error as e:
                gdb.write("%s\n" % e)

    def run(self):
        if not gdb.execute("info symbol $pc", to_string=True).startswith("primary_entry"):
            raise gdb.GdbError("mm-tour starts at primary_entry: run scripts/tour, or scripts/gdb --early "
                               "--ex mm-tour")
        memblock._MARK = None
        global _last_log
        _last_log = None
        for i in range(len(STOPS)):
            reached = True if i == 0 else self.run_to(i)
            if reached is None:
                continue
            if not reached:
                break
            self.show(i)
            if not self.batch and i + 1 < len(STOPS) and not self.pause(i):
                gdb.write("mm-tour: left at stop %d; GDB is yours\n" % (i + 1))
                return
        gdb.write("\nmm-tour: %d of %d stops\n" % (self.n, len(STOPS)))


RESUMING = {"c", "continue", "fg", "n", "next", "s", "step", "si", "stepi", "ni", "nexti", "finish", "fin",
            "u", "until", "advance", "jump", "j", "run", "r", "start", "starti", "kill", "detach"}


class MmTour(gdb.Command):
    """Walk the memory bring-up stage by stage from primary_entry: mm-tour [--batch]."""

    def __init__(self):
        super().__init__("mm-tour", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        if arg.strip() not in ("", "--batch"):
            raise gdb.GdbError("usage: mm-tour [--batch]")
        self.dont_repeat()
        Tour(arg.strip() == "--batch").run()
