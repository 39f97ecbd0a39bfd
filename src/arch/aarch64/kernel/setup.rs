//! setup_arch() and the boot protocol's leftovers (Linux: arch/arm64/kernel/setup.c).
//!
//! setup_machine_fdt() reads the device tree once into a [`MachineDesc`] (the tree, the
//! command line, what the early scan found, the CPUs, PSCI), written once while one CPU
//! runs and read-only after: everything later reads the description, never the tree's
//! address again.

// Device-tree diagnostics are returned by value (no alloc to box them), on cold paths.
#![allow(clippy::result_large_err)]

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::{MIDR_EL1, MPIDR_EL1};
use tock_registers::interfaces::Readable;

use super::psci::{self, PsciProbe};
use super::smp::SmpCpus;
use super::time::timed;
use crate::arch::aarch64::memory::MIN_KIMG_ALIGN;
use crate::arch::aarch64::mm::mmu::{
    cpu_uninstall_idmap, early_fixmap_init, earlycon_map, fixmap_remap_fdt,
};
use crate::arch::aarch64::mm::pgtable::{PAGE_KERNEL, PAGE_KERNEL_RO};
use crate::arch::aarch64::mm::{init as mm_init, mmu};
use crate::drivers::of::fdt::{early_init_dt_scan_nodes, EarlyScan};
use crate::drivers::of::libfdt::Fdt;
use crate::drivers::of::of_numa::of_numa_init;
use crate::drivers::tty::pl011::{self, DEFAULT_PL011_BASE};
use crate::include::numa::NR_CPUS;
use crate::kernel::params::{self, boot_command_line, set_boot_command_line};
use crate::kernel::sections::kernel_image_range;
use crate::mm::memblock::{self, Memblock, MEMBLOCK};
use crate::mm::numa::{NumaError, NumaInfo};
use crate::mm::PhysAddr;

/// Linux: __fdt_pointer — x0 at entry, stored by head.S.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static __fdt_pointer: AtomicU64 = AtomicU64::new(0);

/// Linux: boot_args[] — x0..x3 at entry, stored by head.S.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static boot_args: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// Linux: __boot_cpu_mode — CurrentEL at entry (EL1 = 0x4, EL2 = 0x8).
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static __boot_cpu_mode: AtomicU64 = AtomicU64::new(0);

/// Linux: nr_cpu_ids — the CPUs the device tree lists (at least the boot CPU), as
/// setup_machine_fdt() counted them.
pub fn nr_cpu_ids() -> usize {
    machine().cpus.nr_cpu_ids()
}

/// The machine as the device tree describes it, parsed once by setup_machine_fdt().
pub struct MachineDesc {
    /// The validated tree, mapped read-only in the fixmap (Linux: initial_boot_params).
    pub fdt: Fdt<'static>,
    /// Linux: of_flat_dt_get_machine_name() — for `Machine model:` and the Oops header
    /// (dump_stack_set_arch_desc()).
    pub name: Option<&'static str>,
    /// What early_init_dt_scan_nodes() found besides memory, which it put into memblock:
    /// the initrd, for arm64_memblock_init.
    pub early_scan: EarlyScan,
    /// The CPUs of `/cpus` (Linux: of_parse_and_init_cpus()).
    pub cpus: SmpCpus<'static>,
    /// The PSCI node's conduit (Linux: psci_dt_init()'s probing).
    pub psci: PsciProbe<'static>,
}

impl MachineDesc {
    /// Linux: of_numa_init(), as arch_numa_init() runs it: the tree's NUMA description with
    /// the node ids of the CPUs of [`MachineDesc::cpus`].
    pub fn of_numa_init(&self, numa: &mut NumaInfo, mb: &mut Memblock) -> Result<(), NumaError> {
        let kept = self.cpus.cpus().iter().map(|c| c.numa_node_id);
        // CPUs past NR_CPUS are not kept but still name NUMA nodes (Linux's of_numa walks
        // every CPU node); read them only on a machine that has them.
        let rest = (self.cpus.total() > NR_CPUS).then(|| {
            super::smp::of_cpus(&self.fdt)
                .filter_map(|c| c.ok())
                .skip(NR_CPUS)
                .map(|c| c.numa_node_id)
        });
        of_numa_init(numa, &self.fdt, kept.chain(rest.into_iter().flatten()), mb)
    }
}

/// Written once by setup_machine_fdt() while only the boot CPU runs; read-only after.
static MACHINE: spin::Once<MachineDesc> = spin::Once::new();

/// The machine description setup_machine_fdt() parsed.
pub fn machine() -> &'static MachineDesc {
    MACHINE
        .get()
        .expect("machine description used before setup_machine_fdt")
}

/// The device tree `setup_machine_fdt` validated (the QEMU tests check memblock against it).
pub fn device_tree() -> &'static Fdt<'static> {
    &machine().fdt
}

/// Linux: dump_stack_print_info() — the CPU/task/hardware header of oopses and dumps.
pub fn dump_stack_print_info() {
    let cpu = crate::arch::aarch64::percpu::smp_processor_id();
    pr_emerg!(
        "CPU: {} PID: 0 Comm: swapper/{} Not tainted {} #1",
        cpu,
        cpu,
        env!("CARGO_PKG_VERSION")
    );
    if let Some(name) = MACHINE.get().and_then(|m| m.name) {
        pr_emerg!("Hardware name: {} (DT)", name);
    }
}

/// Linux: setup_machine_fdt() — map the device tree, reserve it, check it, scan it (memory
/// into memblock, /chosen, the CPUs, PSCI), print the machine model; the result is the
/// machine description. An invalid tree is fatal, with the reason.
fn setup_machine_fdt(dt_phys: PhysAddr) -> &'static MachineDesc {
    let (virt, size) = match fixmap_remap_fdt(dt_phys, PAGE_KERNEL) {
        Ok(m) => m,
        Err(e) => invalid_fdt(dt_phys, 0, &e),
    };
    let _ = memblock::memblock_reserve(dt_phys, size as u64);
    // SAFETY: fixmap_remap_fdt mapped `size` bytes at `virt` for the kernel's lifetime
    // (the mapping only changes permissions below, never the address).
    let blob = unsafe { core::slice::from_raw_parts(virt, size) };
    let dt = match Fdt::new(blob) {
        Ok(dt) => dt,
        Err(e) => invalid_fdt(dt_phys, virt as u64, &e),
    };
    let bootargs = match dt.chosen().map(|c| c.bootargs()) {
        Some(Ok(b)) => b,
        Some(Err(d)) => {
            d.print("OF: fdt: ");
            None
        }
        None => None,
    };
    set_boot_command_line(bootargs.unwrap_or(""));
    let early_scan = early_init_dt_scan_nodes(&dt, &mut MEMBLOCK.lock());
    // Early fixups are done: map the FDT read-only now, as Linux does.
    if let Err(e) = fixmap_remap_fdt(dt_phys, PAGE_KERNEL_RO) {
        invalid_fdt(dt_phys, virt as u64, &e);
    }
    let name = dt.machine_name();
    if let Some(name) = name {
        pr_info!("Machine model: {}", name);
    }
    MACHINE.call_once(|| MachineDesc {
        fdt: dt,
        name,
        early_scan,
        cpus: SmpCpus::of_parse_and_init_cpus(&dt),
        psci: psci::psci_dt_probe(&dt),
    })
}

/// Prints the memory the device tree describes (Linux prints these only with pr_debug
/// in early_init_dt_scan_memory; here they are part of the story).
pub fn report_memory_nodes(m: &MachineDesc) {
    let dt = &m.fdt;
    let (ac, sc) = (dt.root_addr_cells(), dt.root_size_cells());
    pr_info!(
        "OF: fdt: root #address-cells = {}, #size-cells = {}",
        ac,
        sc
    );
    for r in dt.memory_ranges() {
        let mut extra = crate::kernel::printk::LineBuf::<160>::new();
        if let Some(nid) = r.nid {
            let _ = core::fmt::Write::write_fmt(&mut extra, format_args!(" numa-node-id {}", nid));
        }
        if r.hotpluggable {
            let _ = core::fmt::Write::write_str(&mut extra, " hotpluggable");
        }
        pr_info!(
            "OF: fdt: memory node {}: [mem {:#018x}-{:#018x}] ({} MiB){}",
            r.node.path(),
            r.base.as_u64(),
            r.end().as_u64().saturating_sub(1),
            r.size >> 20,
            extra.as_str()
        );
    }
    if let Some(i) = m.early_scan.initrd {
        pr_info!(
            "OF: fdt: initrd [mem {:#018x}-{:#018x}]",
            i.start.as_u64(),
            i.end.as_u64() - 1
        );
    }
}

/// Linux's message for a device tree it cannot use; it spins, we stop the machine.
fn invalid_fdt(dt_phys: PhysAddr, virt: u64, why: &dyn core::fmt::Display) -> ! {
    pr_crit!(
        "\nError: invalid device tree blob at physical address {:#018x} (virtual address {:#018x})\n\
         The dtb must be 8-byte aligned and must not exceed 2 MB in size\n\
         \nPlease check your bootloader.",
        dt_phys.as_u64(),
        virt
    );
    panic!("invalid device tree: {}", why);
}

/// The UART `earlycon=` named, if any (Linux: `earlycon=pl011,<addr>` or
/// `earlycon=pl011,mmio32,<addr>`).
static EARLYCON_BASE: AtomicU64 = AtomicU64::new(0);

/// Linux: param_setup_earlycon().
fn param_setup_earlycon(val: Option<&str>) -> params::SetupResult {
    let Some(val) = val else { return Ok(()) };
    let mut parts = val.split(',');
    let name = parts.next().unwrap_or("");
    if name.starts_with("ttyAMA") || name == "ttyS0" {
        return Ok(()); // `console=ttyAMA0` also reaches here; it names no address.
    }
    if name != "pl011" {
        return Err("only pl011 is supported");
    }
    let addr = parts
        .find(|p| *p != "mmio" && *p != "mmio32")
        .and_then(params::parse_u64)
        .ok_or("expected pl011,<address>")?;
    EARLYCON_BASE.store(addr, Ordering::Relaxed);
    Ok(())
}
early_param!("earlycon", param_setup_earlycon);

/// `console=` is Linux's and handled by the console layer; we accept it so it is not
/// reported as unknown.
fn console_setup(_val: Option<&str>) -> params::SetupResult {
    Ok(())
}
setup_param!("console", console_setup);

/// `panic=N` is accepted for Linux compatibility; this kernel always stops on panic.
fn panic_setup(_val: Option<&str>) -> params::SetupResult {
    Ok(())
}
setup_param!("panic", panic_setup);

/// Registers the boot console: `earlycon=` first, then `/chosen/stdout-path`, then the
/// QEMU default. Linux needs `earlycon` on the command line; this kernel always wants one.
fn setup_boot_console(m: &MachineDesc) {
    let from_param = EARLYCON_BASE.load(Ordering::Relaxed);
    let base = if from_param != 0 {
        from_param
    } else {
        match m.fdt.stdout() {
            Ok(Some(out)) => match out.base() {
                Ok(Some(pa)) => pa.as_u64(),
                Ok(None) => DEFAULT_PL011_BASE,
                Err(d) => {
                    d.print("OF: fdt: ");
                    DEFAULT_PL011_BASE
                }
            },
            Ok(None) => DEFAULT_PL011_BASE,
            Err(d) => {
                d.print("OF: fdt: ");
                DEFAULT_PL011_BASE
            }
        }
    };
    pl011::earlycon_setup(PhysAddr(base), earlycon_map(PhysAddr(base)), "");
}

/// Linux: setup_arch(), in its order, on the device tree start_kernel() was given (Linux
/// reads `__fdt_pointer`; head.S passes the same x0 to start_kernel()).
pub fn setup_arch(fdt_phys: PhysAddr) {
    early_fixmap_init();
    let m = timed("setup_machine_fdt", || setup_machine_fdt(fdt_phys));
    report_memory_nodes(m);
    params::parse_early_param(boot_command_line());
    setup_boot_console(m);
    // Linux: early_init_dt_scan_chosen()'s add_bootloader_randomness() of `rng-seed`; the
    // timer's count is the boot's own contribution (random_init's cycle counter).
    if let Some(seed) = m.fdt.chosen().and_then(|c| c.rng_seed()) {
        crate::kernel::random::add_randomness(seed);
    }
    crate::kernel::random::add_randomness(&super::time::counter().to_le_bytes());
    // Linux runs kaslr_early_init() from head.S, before start_kernel; its seed is used
    // first by arm64_memblock_init() below.
    super::kaslr::kaslr_early_init(&m.fdt, boot_command_line());
    cpu_uninstall_idmap();
    let [_, x1, x2, x3] = boot_args.each_ref().map(|a| a.load(Ordering::Relaxed));
    if x1 != 0 || x2 != 0 || x3 != 0 {
        pr_err!(
            "WARNING: x1-x3 nonzero in violation of boot protocol:\n\tx1: {:016x}\n\tx2: {:016x}\n\tx3: {:016x}\n\
             This indicates a broken bootloader or old kernel",
            x1, x2, x3
        );
    }
    let (text, end) = kernel_image_range();
    let text_pa = crate::arch::aarch64::memory::pa_symbol(text as *const u8);
    if !text_pa.is_aligned(MIN_KIMG_ALIGN) {
        pr_warn!("[Firmware Bug]: Kernel image misaligned at boot, please fix your bootloader!");
    }
    // Linux reserves the image in arm64_memblock_init without checking that memory holds
    // it; a tree whose memory misses the loaded kernel then fails much later (freeing init
    // memory that has no struct page). Stop here and say why. (No memory at all is
    // arm64_memblock_init's `no usable memory`.)
    let mb = MEMBLOCK.lock();
    let covered = mb.phys_mem_size() == 0 || mb.is_region_memory(text_pa, end - text);
    drop(mb);
    if !covered {
        panic!(
            "the kernel image [mem {:#018x}-{:#018x}] is not inside the memory the device tree describes",
            text_pa.as_u64(),
            text_pa.as_u64() + (end - text) - 1
        );
    }
    timed("arm64_memblock_init", || {
        mm_init::arm64_memblock_init(&m.early_scan, &m.fdt)
    });
    timed("paging_init", mmu::paging_init);
    // SAFETY: from here on the linear map covers all of memblock's memory, so __va of any
    // memblock address is mapped.
    unsafe { memblock::memblock_set_phys_to_virt(crate::arch::aarch64::memory::phys_to_virt) };
    memblock::memblock_set_virt_to_phys(crate::arch::aarch64::memory::virt_to_phys);
    // kmemleak's pool, now that __va() of memblock memory is mapped (kmemleak=on only).
    crate::mm::kmemleak::kmemleak_alloc_pool();
    early_heap_init();
    mm_init::print_vm_layout();
    timed("bootmem_init", || {
        mm_init::bootmem_init(&mut |numa, mb| m.of_numa_init(numa, mb))
    });
    psci::psci_dt_init(&m.psci);
    // Linux: smp_init_cpus() — each CPU on its node (secondary CPUs are not started yet).
    m.cpus
        .smp_init_cpus(&mut crate::mm::numa::NUMA_EARLY.lock());
}

/// The early heap behind Rust's global allocator until kmem_cache_init (ours: Linux has
/// no Rust allocations to serve this early). Its memory stays reserved in memblock.
const EARLY_HEAP_SIZE: u64 = 256 << 10;

fn early_heap_init() {
    let p = MEMBLOCK.lock().alloc(EARLY_HEAP_SIZE, crate::mm::PAGE_SIZE);
    match p {
        // SAFETY: memblock gave us this zeroed, linear-mapped range; it is never freed.
        Some(p) => unsafe {
            crate::mm::heap::early_heap_init(p.as_ptr() as usize, EARLY_HEAP_SIZE as usize)
        },
        None => pr_warn!(
            "mm: no memory for the early heap; Rust allocations fail until kmem_cache_init"
        ),
    }
}

/// Linux: the banner lines of start_kernel()/setup_arch().
pub fn print_boot_banner() {
    pr_info!(
        "Booting Linux on physical CPU {:#012x} [{:#010x}]",
        MPIDR_EL1.get() & 0xff_00ff_ffff,
        MIDR_EL1.get() as u32
    );
    pr_notice!(
        "arm64-mm version {} (rustc, {} build) #1 SMP — Linux 6.1's arm64 memory bring-up",
        env!("CARGO_PKG_VERSION"),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let mode = __boot_cpu_mode.load(Ordering::Relaxed);
    pr_info!("CPU: booted at EL{}, running at EL1", (mode >> 2) & 3);
}
