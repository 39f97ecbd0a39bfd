"""mm-break-stages: a breakpoint on each stage of start_kernel, by name."""
import re

import gdb

# src/init/main.rs and setup_arch (src/arch/aarch64/kernel/setup.rs), in boot order. A stage
# the compiler inlined has no symbol and is skipped (said so).
STAGES = ["start_kernel", "setup_arch", "setup_machine_fdt", "parse_early_param", "arm64_memblock_init",
          "paging_init", "bootmem_init", "psci_dt_init", "setup_per_cpu_areas", "build_all_zonelists",
          "mm_init", "mem_init", "kmem_cache_init", "pgtable_init", "vmalloc_init", "kmem_cache_init_late",
          "setup_per_cpu_pageset", "smp_init", "init_per_zone_wmark_min", "free_initmem", "mark_readonly",
          "kernel_init"]


def find_function(name):
    """The address of the kernel function whose last path component is `name`."""
    pat = "^(arm64_mm::)?(.*::)?%s$" % re.escape(name)
    out = gdb.execute("info functions -q -n %s" % ("^" + name + "$" if name in ("start_kernel", "kernel_init")
                                                     else "::" + name + "$"), to_string=True)
    for line in out.splitlines():
        m = re.search(r"(\S+)\(", line)
        if m and re.match(pat, m.group(1).split("<")[0]):
            s = gdb.lookup_global_symbol(m.group(1)) or gdb.lookup_static_symbol(m.group(1))
            if s is not None and s.type is not None and s.type.code == gdb.TYPE_CODE_FUNC:
                return int(s.value().address)
    return None


class MmBreakStages(gdb.Command):
    """Set a hardware breakpoint at each boot stage of start_kernel (mm-break-stages [STAGE...])."""

    def __init__(self):
        super().__init__("mm-break-stages", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        names = arg.split() or STAGES
        for name in names:
            a = find_function(name)
            if a is None:
                gdb.write("mm-break-stages: %s: no such function (inlined?), skipped\n" % name)
                continue
            gdb.execute("hbreak *%#x" % a)
