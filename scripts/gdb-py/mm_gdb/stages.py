"""mm-break-stages: a breakpoint on each stage of start_kernel, by name."""
import re

import gdb

from .utils import elf_symtab

# src/init/main.rs and setup_arch (src/arch/aarch64/kernel/setup.rs), in boot order. A stage
# the compiler inlined has no symbol and is skipped (said so).
STAGES = ["start_kernel", "setup_arch", "setup_machine_fdt", "parse_early_param", "arm64_memblock_init",
          "paging_init", "bootmem_init", "psci_dt_init", "setup_per_cpu_areas", "build_all_zonelists",
          "mm_init", "mem_init", "kmem_cache_init", "pgtable_init", "vmalloc_init", "kmem_cache_init_late",
          "setup_per_cpu_pageset", "smp_init", "init_per_zone_wmark_min", "free_initmem", "mark_readonly",
          "kernel_init"]

PREFERRED = ("arm64_mm::init::main::", "arm64_mm::arch::aarch64::kernel::setup::", "arm64_mm::arch::aarch64::mm::")


def demangle(sym):
    """A legacy-mangled Rust name (_ZN8arm64_mm4init4main12start_kernel17h...E) as a path
    without the hash; other names as they are."""
    if not sym.startswith("_ZN"):
        return sym
    parts, i = [], 3
    while i < len(sym) and sym[i].isdigit():
        j = i
        while sym[j].isdigit():
            j += 1
        n = int(sym[i:j])
        parts.append(sym[j:j + n])
        i = j + n
    if parts and re.match(r"^h[0-9a-f]{16}$", parts[-1]):
        parts.pop()
    return "::".join(parts)


_FUNCS = None


def functions():
    """{path: address} of the kernel's function symbols, from the ELF's .symtab (GDB's Python
    has no minimal-symbol iterator; the Rust DWARF names are not all linespec-friendly)."""
    global _FUNCS
    if _FUNCS is None:
        _FUNCS = {}
        for raw, info, value in elf_symtab():
            if info & 0xF == 2 and value:  # STT_FUNC
                _FUNCS.setdefault(demangle(raw), value)
    return _FUNCS


def find_function(name):
    """The address of the kernel function whose last path component is `name`, or None
    (inlined everywhere)."""
    paths = [p for p in functions() if p == name or p.endswith("::" + name)]
    # The stage itself before a helper of the same name (init::main's build_all_zonelists
    # calls mm::zonelist's).
    paths.sort(key=lambda p: (not p.startswith(PREFERRED), len(p)))
    return functions()[paths[0]] if paths else None


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
            gdb.write("mm-break-stages: %s at %#x\n" % (name, a))
            gdb.execute("hbreak *%#x" % a)
