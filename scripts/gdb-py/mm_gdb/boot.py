"""mm-image, mm-cpus and mm-percpu: the CPU's view at a stop — the MMU and the kernel image's
segments (Linux: the `Virtual kernel memory layout:` lines), the CPUs (smp_init), and the
per-CPU units setup_per_cpu_areas embedded (the `percpu: Embedded` line)."""

import gdb

from .utils import MmCommand, NotYet, PAGE_OFFSET, elf_symtab, memstart_addr, num, once, peel, sym

NR_CPUS = 256  # src/include/numa.rs
SEGMENTS = [("      .text", "_text", "_etext"), ("    .rodata", "__start_rodata", "__init_begin"),
            ("      .init", "__init_begin", "__init_end"), ("      .data", "_sdata", "_edata"),
            ("       .bss", "__bss_start", "__bss_stop")]

_SYMS = None


def elf_symbol(name):
    """The value of any symbol of the ELF's .symtab (linker symbols have no type in DWARF)."""
    global _SYMS
    if _SYMS is None:
        _SYMS = {}
        for nm, _, value in elf_symtab():
            _SYMS.setdefault(nm, value)
    if name not in _SYMS:
        raise gdb.GdbError("no symbol %s in the kernel" % name)
    return _SYMS[name]


def reg(name):
    return int(gdb.parse_and_eval("$" + name)) % (1 << 64)


def mmu_on():
    return bool(reg("SCTLR") & 1)


def image_lines():
    sctlr, cpsr, pc = reg("SCTLR"), reg("cpsr"), reg("pc")
    text = elf_symbol("_text")
    lines = ["MMU %s: SCTLR_EL1 %#x, running at EL%d, pc %#x (%s)"
             % ("on" if sctlr & 1 else "off", sctlr, (cpsr >> 2) & 3, pc,
                "virtual" if pc >= PAGE_OFFSET else "physical: the image's load address")]
    if sctlr & 1:
        ttbr1 = reg("TTBR1_EL1") & ((1 << 48) - 2)
        voff = num(sym("arch::aarch64::memory::kimage_voffset"))
        names = {(elf_symbol(n) - voff) % (1 << 64): n for n in ("init_pg_dir", "swapper_pg_dir")}
        lines.append("TTBR1_EL1 %#x (%s), kimage_voffset %#x: the image's VA - PA; _text at PA %#x"
                     % (ttbr1, names.get(ttbr1, "?"), voff, (text - voff) % (1 << 64)))
    else:
        lines.append("x0 %#x: the device tree's physical address (Linux: __fdt_pointer)" % reg("x0"))
    lines.append("The image's segments (Linux: the `Virtual kernel memory layout:` lines):")
    for label, a, b in SEGMENTS:
        start, end = elf_symbol(a), elf_symbol(b)
        lines.append("%s : 0x%016x - 0x%016x   (%6d KB)" % (label, start, end, (((end + 1023) & ~1023) - start) >> 10))
    return lines


def nr_cpu_ids():
    return num(sym("arch::aarch64::kernel::smp::NR_CPU_IDS"))


def cpu_possible(cpu):
    return bool(num(sym("arch::aarch64::kernel::smp::CPU_POSSIBLE")[cpu]))


def cpu_online(cpu):
    return bool(num(sym("kernel::cpu::CPU_ONLINE_MASK")[cpu // 64]) >> (cpu % 64) & 1)


def per_cpu_offsets():
    """{cpu: __per_cpu_offset[cpu]} of the possible CPUs, or NotYet."""
    offs = once("mm::percpu::PER_CPU_OFFSET", "no per-CPU areas yet (setup_per_cpu_areas has not run)")
    return {c: num(offs["offsets"][c]) for c in range(min(nr_cpu_ids(), NR_CPUS)) if cpu_possible(c)}


def cpu_to_node(cpu):
    try:
        numa = once("mm::numa::NUMA_INFO", "")
    except NotYet:
        numa = peel(sym("mm::numa::NUMA_EARLY"))
    return num(numa["cpu_to_node_map"][cpu])


def machine_cpus():
    """[(mpidr)] of the CPU nodes setup_machine_fdt kept, in logical order."""
    m = once("arch::aarch64::kernel::setup::MACHINE", "no machine description yet (setup_machine_fdt)")
    cpus = m["cpus"]
    return [num(cpus["cpus"][i]["mpidr"]) for i in range(num(cpus["nr"]))]


def cpus_lines():
    mpidrs = machine_cpus()
    lines = []
    for cpu in range(min(nr_cpu_ids(), len(mpidrs))):
        state = "online" if cpu_online(cpu) else ("possible, offline" if cpu_possible(cpu) else "not possible")
        lines.append("CPU%d: MPIDR 0x%010x, node %d, %s" % (cpu, mpidrs[cpu], cpu_to_node(cpu), state))
    n = sum(1 for c in range(min(nr_cpu_ids(), NR_CPUS)) if cpu_online(c))
    lines.append("%d CPU%s online (Linux: num_online_cpus())" % (n, "" if n == 1 else "s"))
    return lines


def lm_pa(va):
    """Linux: __pa() of a linear-map address."""
    return (va & ~PAGE_OFFSET) + memstart_addr()


def percpu_lines():
    offs = per_cpu_offsets()
    start, end = elf_symbol("__per_cpu_start"), elf_symbol("__per_cpu_end")
    lines = ["static per-CPU image [%#x-%#x): %d bytes (the `s` of `percpu: Embedded`)" % (start, end, end - start)]
    for cpu, off in sorted(offs.items()):
        unit = (start + off) % (1 << 64)
        lines.append("CPU%d: __per_cpu_offset %#018x, unit at %#x = PA %#x, node %d"
                     % (cpu, off, unit, lm_pa(unit), cpu_to_node(cpu)))
    return lines


class MmImage(MmCommand):
    """Print the MMU state and the kernel image's segments (mm-image)."""

    def __init__(self):
        super().__init__("mm-image")

    def run(self, arg):
        for line in image_lines():
            gdb.write(line + "\n")


class MmCpus(MmCommand):
    """Print each CPU: its MPIDR, node and whether it is online (mm-cpus)."""

    def __init__(self):
        super().__init__("mm-cpus")

    def run(self, arg):
        for line in cpus_lines():
            gdb.write(line + "\n")


class MmPercpu(MmCommand):
    """Print the per-CPU units: each CPU's __per_cpu_offset and where its unit lies (mm-percpu)."""

    def __init__(self):
        super().__init__("mm-percpu")

    def run(self, arg):
        for line in percpu_lines():
            gdb.write(line + "\n")

