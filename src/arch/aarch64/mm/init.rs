//! arm64 memory initialisation (Linux: arch/arm64/mm/init.c): arm64_memblock_init(), which
//! trims memblock to what the linear map can hold and reserves what is in use, and
//! bootmem_init(), which runs once the linear map exists.

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::ID_AA64MMFR0_EL1;
use tock_registers::interfaces::Readable;

use crate::arch::aarch64::fixmap::FIXADDR_START;
use crate::arch::aarch64::kernel::kaslr;
use crate::arch::aarch64::kernel::time::timed;
use crate::arch::aarch64::memory::{
    __va, high_memory, memstart_addr, pa_symbol, PAGE_END, PAGE_OFFSET,
};
use crate::arch::aarch64::memory::{pfn_to_page, phys_to_virt};
use crate::arch::aarch64::memory::{
    FIXADDR_TOP, MODULES_END, MODULES_VADDR, PCI_IO_END, PCI_IO_START, VMALLOC_END, VMALLOC_START,
    VMEMMAP_END, VMEMMAP_START,
};
use crate::arch::aarch64::mm::clear_page::clear_page;
use crate::arch::aarch64::mm::mmu::{crash_mem_map, vmemmap_populate};
use crate::drivers::of::fdt::EarlyScan;
use crate::drivers::of::libfdt::Fdt;
use crate::kernel::params::{self, SetupResult};
use crate::kernel::sections;
use crate::mm::memblock::{self, MEMBLOCK};
use crate::mm::{Pfn, PhysAddr, PAGE_SIZE};

/// Linux: PHYS_MASK_SHIFT (CONFIG_ARM64_PA_BITS = 48).
pub const PHYS_MASK_SHIFT: u32 = 48;
/// Linux: ARM64_MEMSTART_ALIGN — 1 GiB with 4 KiB pages (PUD_SHIFT > SECTION_SIZE_BITS).
pub const ARM64_MEMSTART_ALIGN: u64 = 1 << 30;

/// Linux: memory_limit — from `mem=`, PHYS_ADDR_MAX when absent.
static MEMORY_LIMIT: AtomicU64 = AtomicU64::new(u64::MAX);

/// Linux: early_mem() — `mem=SIZE` limits the memory the kernel uses. Linux's memparse
/// would read garbage as 0 and carry on; a bad value is reported as malformed instead.
fn early_mem(val: Option<&str>) -> SetupResult {
    let (v, rest) = val
        .and_then(params::memparse)
        .ok_or("expected a size such as mem=512M")?;
    if !rest.is_empty() {
        return Err("trailing characters after the size");
    }
    let limit = v & !(PAGE_SIZE - 1);
    MEMORY_LIMIT.store(limit, Ordering::Relaxed);
    pr_notice!("Memory limited to {}MB", limit >> 20);
    Ok(())
}
crate::early_param!("mem", early_mem);

/// Linux: phys_initrd_start / phys_initrd_size, after arm64_memblock_init checked them.
pub static PHYS_INITRD: spin::Once<(PhysAddr, u64)> = spin::Once::new();

/// The physical address bits this CPU implements (ID_AA64MMFR0_EL1.PARange).
pub fn cpu_pa_bits() -> u32 {
    match ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange) {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        5 => 48,
        _ => 52,
    }
}

/// Is `[start, end)` inside the memory nodes of `fdt` (touching nodes count as one)?
fn fdt_covers(fdt: &Fdt, start: u64, end: u64) -> bool {
    let mut at = start;
    while at < end {
        let next = fdt
            .memory_ranges()
            .filter(|r| r.base.as_u64() <= at && at - r.base.as_u64() < r.size)
            .map(|r| r.base.as_u64().saturating_add(r.size))
            .max();
        match next {
            Some(n) => at = n,
            None => return false,
        }
    }
    true
}

/// Linux: arm64_memblock_init().
pub fn arm64_memblock_init(scan: &EarlyScan, fdt: &Fdt) {
    let linear_region_size = PAGE_END - PAGE_OFFSET;
    let text = pa_symbol(sections::_text() as *const u8);
    let stext = pa_symbol(sections::_stext() as *const u8);
    let end = pa_symbol(sections::_end() as *const u8);
    let mut mb = MEMBLOCK.lock();

    // Remove memory above our supported physical address size.
    let _ = mb.remove(PhysAddr(1 << PHYS_MASK_SHIFT), u64::MAX);
    // Linux stops at PHYS_MASK_SHIFT; memory past what this CPU can address would fault
    // when the linear map touches it, so it goes too, with a message.
    let pa_bits = cpu_pa_bits();
    if pa_bits < PHYS_MASK_SHIFT && mb.end_of_dram().as_u64() > 1 << pa_bits {
        pr_warn!(
            "memblock: ignoring memory above the CPU's {}-bit physical address range [mem {:#018x}-{:#018x}]",
            pa_bits,
            1u64 << pa_bits,
            mb.end_of_dram().as_u64() - 1
        );
        let _ = mb.remove(PhysAddr(1 << pa_bits), u64::MAX);
    }
    if mb.memory().total_size() == 0 {
        drop(mb);
        panic!("no usable memory: the device tree's memory nodes give none the kernel can address");
    }

    // Select a suitable value for the base of physical memory.
    let mut memstart = mb.start_of_dram().align_down(ARM64_MEMSTART_ALIGN).as_u64();
    if mb.end_of_dram().as_u64() - memstart > linear_region_size {
        pr_warn!("Memory doesn't fit in the linear mapping, VA_BITS too small");
    }
    // Remove the memory the linear map cannot cover, but never the kernel image.
    let _ = mb.remove(
        PhysAddr((memstart + linear_region_size).max(end.as_u64())),
        u64::MAX,
    );
    if memstart + linear_region_size < mb.end_of_dram().as_u64() {
        memstart = crate::mm::addr::align_up(
            mb.end_of_dram().as_u64() - linear_region_size,
            ARM64_MEMSTART_ALIGN,
        );
        let _ = mb.remove(PhysAddr(0), memstart);
    }
    memstart_addr.store(memstart, Ordering::Relaxed);

    // Apply `mem=`, then add back the kernel, which must stay reachable.
    let limit = MEMORY_LIMIT.load(Ordering::Relaxed);
    if limit != u64::MAX {
        mb.mem_limit_remove_map(limit);
        let _ = mb.add(text, end - text);
    }

    let mut initrd = scan.initrd.map(|i| (i.start, i.size()));
    if let Some((start, size)) = initrd {
        // Add the initrd back if the limits above removed it, as long as the linear map
        // can still reach it.
        let base = start.align_down(PAGE_SIZE);
        let size = crate::mm::addr::align_up(start.as_u64() + size, PAGE_SIZE) - base.as_u64();
        let dram = mb.start_of_dram().as_u64();
        if base.as_u64() < dram || base.as_u64() + size > dram + linear_region_size {
            pr_warn!("initrd not fully accessible via the linear mapping -- please check your bootloader ...");
            initrd = None;
        } else if !fdt_covers(fdt, base.as_u64(), base.as_u64() + size) {
            // Linux adds the range as memory whatever lies there; an initrd in a hole would
            // then hand pages that do not exist to the buddy. Refused with the words of
            // Linux's reserve_initrd_mem() (init/initramfs.c).
            pr_err!(
                "INITRD: 0x{:08x}+0x{:08x} is not a memory region - disabling initrd",
                base.as_u64(),
                size
            );
            initrd = None;
        } else {
            let _ = mb.add(base, size);
            let _ = mb.clear_nomap(base, size);
            let _ = mb.reserve(base, size);
        }
    }
    if let Some(i) = initrd {
        PHYS_INITRD.call_once(|| i);
    }

    // CONFIG_RANDOMIZE_BASE: move the linear map by the seed (kaslr_early_init()).
    let memstart = kaslr::randomize_memstart(
        memstart,
        linear_region_size,
        cpu_pa_bits(),
        ARM64_MEMSTART_ALIGN,
    );
    memstart_addr.store(memstart, Ordering::Relaxed);

    // Register the kernel text, kernel data and initial page tables (Linux reserves from
    // _stext: the 64 KiB Image header segment before it is not kept).
    let _ = mb.reserve(stext, end - stext);
    drop(mb);

    crate::drivers::of::fdt::early_init_fdt_scan_reserved_mem(fdt, &mut MEMBLOCK.lock());

    let mb = MEMBLOCK.lock();
    let end_of_dram = mb.end_of_dram();
    drop(mb);
    high_memory.store(__va(end_of_dram - 1).as_u64() + 1, Ordering::Relaxed);
}

/// Linux: CONFIG_DEFERRED_STRUCT_PAGE_INIT (y in arm64's defconfig): memmap_init() leaves
/// all but the first section of each node's highest zone to [`page_alloc_init_late`].
pub const DEFERRED_STRUCT_PAGE_INIT: bool = true;

/// Linux: arm64_dma_phys_limit — the end of ZONE_DMA, set in bootmem_init.
pub static ARM64_DMA_PHYS_LIMIT: AtomicU64 = AtomicU64::new(0);

/// Linux: max_pfn — the last pfn of memory plus one, set in bootmem_init.
pub static MAX_PFN: AtomicU64 = AtomicU64::new(0);

/// Linux: max_pfn, read.
#[inline]
pub fn max_pfn() -> Pfn {
    Pfn(MAX_PFN.load(Ordering::Relaxed))
}

/// Linux: CRASH_ALIGN, DEFAULT_CRASH_KERNEL_LOW_SIZE.
const CRASH_ALIGN: u64 = 2 << 20;
const DEFAULT_CRASH_KERNEL_LOW_SIZE: u64 = 128 << 20;

/// Linux: reserve_crashkernel_low().
fn reserve_crashkernel_low(low_size: u64, low_max: u64) -> bool {
    let base =
        MEMBLOCK
            .lock()
            .phys_alloc_range(low_size, CRASH_ALIGN, PhysAddr(0), PhysAddr(low_max));
    match base {
        None => {
            pr_err!(
                "cannot allocate crashkernel low memory (size:{:#x}).",
                low_size
            );
            false
        }
        Some(b) => {
            pr_info!(
                "crashkernel low memory reserved: {:#010x} - {:#010x} ({} MB)",
                b.as_u64(),
                b.as_u64() + low_size,
                low_size >> 20
            );
            true
        }
    }
}

/// The crash kernel region, once reserved (Linux: crashk_res).
pub static CRASHK_RES: spin::Once<(PhysAddr, u64)> = spin::Once::new();

/// Linux: reserve_crashkernel() (arm64, 6.1) — `crashkernel=X[@offset]` below the DMA limit
/// first, else high memory plus a low part; `crashkernel=X,high` [`crashkernel=Y,low`].
fn reserve_crashkernel() {
    use crate::kernel::crash_core::{
        parse_crashkernel, parse_crashkernel_high, parse_crashkernel_low, CrashError,
    };
    let cmdline = crate::kernel::params::boot_command_line();
    let low_max = ARM64_DMA_PHYS_LIMIT.load(Ordering::Relaxed);
    let high_max = 1u64 << PHYS_MASK_SHIFT;
    let mut crash_max = low_max;
    let mut low_size = 0;
    let total = MEMBLOCK.lock().phys_mem_size();
    let ck = match parse_crashkernel(cmdline, total) {
        Err(CrashError::NotFound) => {
            let Ok(ck) = parse_crashkernel_high(cmdline, 0) else {
                return;
            };
            if ck.size == 0 {
                return;
            }
            low_size = match parse_crashkernel_low(cmdline, 0) {
                Ok(l) => l.size,
                Err(CrashError::NotFound) => DEFAULT_CRASH_KERNEL_LOW_SIZE,
                Err(_) => return,
            };
            crash_max = high_max;
            ck
        }
        Err(_) => return,
        Ok(ck) if ck.size == 0 => return,
        Ok(ck) => ck,
    };
    let size = crate::mm::addr::align_up(ck.size, PAGE_SIZE);
    let fixed_base = ck.base != 0;
    let mut start = ck.base;
    if fixed_base {
        crash_max = ck.base + size;
    }
    let base = loop {
        let got = MEMBLOCK.lock().phys_alloc_range(
            size,
            CRASH_ALIGN,
            PhysAddr(start),
            PhysAddr(crash_max),
        );
        match got {
            Some(b) => break b,
            // The low attempt failed: high memory, with the minimum low part Linux keeps.
            None if !fixed_base && crash_max == low_max => {
                crash_max = high_max;
                low_size = DEFAULT_CRASH_KERNEL_LOW_SIZE;
                start = 0;
            }
            None => {
                pr_warn!("cannot allocate crashkernel (size:{:#x})", size);
                return;
            }
        }
    };
    if base.as_u64() > low_max.saturating_sub(low_size)
        && low_size != 0
        && !reserve_crashkernel_low(low_size, low_max)
    {
        let _ = MEMBLOCK.lock().phys_free(base, size);
        return;
    }
    pr_info!(
        "crashkernel reserved: {:#018x} - {:#018x} ({} MB)",
        base.as_u64(),
        base.as_u64() + size,
        size >> 20
    );
    CRASHK_RES.call_once(|| (base, size));
}

/// Linux: bootmem_init() — everything that needs the linear map: memtest, NUMA, the
/// vmemmap, the zones and the memory map, the crash kernel; then `memblock=debug`'s dump.
/// `of_numa_init` reads the device tree's NUMA description (Linux: of_numa_init()).
pub fn bootmem_init(of_numa_init: &mut crate::mm::numa::FwNumaInit) {
    use crate::mm::free_area_init::PAGES_PER_SECTION;
    use crate::mm::free_area_init::{
        free_area_init, zone_dma_bits, zone_movable_params, zone_sizes_init, Memmap,
    };
    use crate::mm::mmzone::NODE_DATA_EARLY;
    use crate::mm::numa::{arch_numa_init, NumaInfo, NUMA_EARLY};

    let (start, end) = {
        let mb = MEMBLOCK.lock();
        (mb.start_of_dram(), mb.end_of_dram())
    };
    let (min, max) = (start.pfn_up(), end.pfn_down());
    crate::mm::memtest::early_memtest(min.phys(), max.phys());
    MAX_PFN.store(max.0, Ordering::Relaxed);

    let mut numa = NUMA_EARLY.lock();
    *numa = NumaInfo::from_cmdline();
    let mut nodes = NODE_DATA_EARLY.lock();
    arch_numa_init(
        &mut numa,
        Some(of_numa_init),
        &mut MEMBLOCK.lock(),
        &mut nodes,
        phys_to_virt,
    );

    // Linux: sparse_init() — the memmap of every present section, on its node.
    timed("sparse_init", || {
        crate::mm::sparse::sparse_init(&MEMBLOCK, |s| {
            let first = pfn_to_page(s.start_pfn()) as u64;
            let last = pfn_to_page(s.end_pfn()) as u64;
            vmemmap_populate(first, last, s.nid);
        })
    });

    // Linux: zone_sizes_init() → free_area_init(), over the whole memmap.
    let limits = zone_sizes_init(start, end, zone_dma_bits(u64::MAX), max);
    ARM64_DMA_PHYS_LIMIT.store(limits.arm64_dma_phys_limit.as_u64(), Ordering::Relaxed);
    let first_pfn = min.align_down(PAGES_PER_SECTION);
    let last_pfn = max.align_up(PAGES_PER_SECTION);
    // SAFETY: sparse_init mapped the struct pages of every section that holds memory, and
    // free_area_init touches no others; nothing else uses the memmap yet.
    let mut memmap =
        unsafe { Memmap::from_raw(pfn_to_page(first_pfn), first_pfn, last_pfn - first_pfn) }
            .deferred_struct_page_init(DEFERRED_STRUCT_PAGE_INIT);
    timed("free_area_init", || {
        free_area_init(
            &mut MEMBLOCK.lock(),
            &mut nodes,
            &numa,
            &limits.max_zone_pfns,
            &zone_movable_params(),
            0,
            Some(&mut memmap),
        )
    });
    drop(nodes);
    drop(numa);

    // Linux: reserve the CMA area after arm64_dma_phys_limit was initialised.
    crate::mm::cma::contiguous::dma_contiguous_reserve(limits.arm64_dma_phys_limit);

    if crash_mem_map() {
        reserve_crashkernel();
    }
    let mb = MEMBLOCK.lock();
    pr_info!(
        "mm: memblock: memory {:#x} ({} KiB) in {} regions, reserved {:#x} ({} KiB) in {} regions",
        mb.phys_mem_size(),
        mb.phys_mem_size() >> 10,
        mb.memory().cnt(),
        mb.reserved_size(),
        mb.reserved_size() >> 10,
        mb.reserved().cnt()
    );
    mb.dump_all();
}

/// The linear map covers `[memstart_addr, memstart_addr + 2^47)`; memory outside was removed.
pub fn linear_map_phys_range() -> (PhysAddr, PhysAddr) {
    let mb = memblock::MEMBLOCK.lock();
    (mb.start_of_dram(), mb.end_of_dram())
}

/// The linker's section boundaries, as `mem_init_print_info` reads them.
fn kernel_symbols() -> crate::mm::page_alloc::KernelSymbols {
    crate::mm::page_alloc::KernelSymbols {
        _stext: sections::_stext(),
        _etext: sections::_etext(),
        __start_rodata: sections::__start_rodata(),
        __end_rodata: sections::__end_rodata(),
        __init_begin: sections::__init_begin(),
        __init_end: sections::__init_end(),
        _sinittext: sections::__inittext_begin(),
        _einittext: sections::__inittext_end(),
        _sdata: sections::_sdata(),
        _edata: sections::_edata(),
        __bss_start: sections::__bss_start(),
        __bss_stop: sections::__bss_stop(),
    }
}

/// Linux: num_online_cpus() as the page allocator's hook wants it.
fn num_online_cpus() -> u32 {
    crate::kernel::cpu::num_online_cpus() as u32
}

/// Linux: cpumask_weight(cpumask_of_node(nid)) — arm64 adds a CPU to its node's mask as
/// it comes online (numa_add_cpu()), so this counts the node's online CPUs.
fn nr_cpus_node(nid: i32) -> u32 {
    crate::kernel::cpu::for_each_online_cpu()
        .filter(|&c| crate::mm::numa::cpu_to_node(c) == nid)
        .count() as u32
}

/// Linux: __pa() as the page allocator wants it (typed).
fn pa_of(va: crate::mm::VirtAddr) -> PhysAddr {
    crate::arch::aarch64::memory::__pa(va)
}

/// Linux: ARCH_LOW_ADDRESS_LIMIT (arm64) — the last byte memblock_alloc_low() may hand out:
/// the end of ZONE_DMA.
fn arch_low_address_limit() -> PhysAddr {
    PhysAddr(ARM64_DMA_PHYS_LIMIT.load(Ordering::Relaxed) - 1)
}

/// Linux: memset(p, 0, len) as arm64's memset does a large block: the whole pages with
/// DC ZVA ([`clear_page`]), the rest with stores.
///
/// # Safety
/// `p` is a linear-map address of `len` writable bytes nobody else uses.
unsafe fn swiotlb_memzero(p: *mut u8, len: usize) {
    let page = crate::mm::PAGE_SIZE as usize;
    let head = (p as usize).next_multiple_of(page) - p as usize;
    let head = head.min(len);
    let pages = (len - head) / page;
    // SAFETY: every range below lies inside the caller's `len` bytes; the middle ones are
    // whole, page-aligned pages of it.
    unsafe {
        core::ptr::write_bytes(p, 0, head);
        for i in 0..pages {
            clear_page(p.add(head + i * page));
        }
        let done = head + pages * page;
        core::ptr::write_bytes(p.add(done), 0, len - done);
    }
}

/// Linux: swiotlb_init(max_pfn > PFN_DOWN(arm64_dma_phys_limit), SWIOTLB_VERBOSE), as
/// arm64's mem_init() calls it: a bounce buffer when memory reaches above what ZONE_DMA
/// covers (or `swiotlb=force`), from memblock_alloc_low().
fn arm64_swiotlb_init() {
    use crate::include::numa::NUMA_NO_NODE;
    use crate::kernel::dma::swiotlb::{swiotlb_init, SwiotlbEnv, SwiotlbHooks, SWIOTLB_VERBOSE};
    use crate::mm::memblock::MEMBLOCK_LOW_LIMIT;

    let dma_limit = ARM64_DMA_PHYS_LIMIT.load(Ordering::Relaxed);
    let addressing_limit = max_pfn() > PhysAddr(dma_limit).pfn_down();
    // Not zeroed here: swiotlb's init zeroes the buffer once, with DC ZVA.
    let mut alloc_low = |size, align| {
        MEMBLOCK.lock().alloc_try_nid_raw(
            size,
            align,
            MEMBLOCK_LOW_LIMIT,
            arch_low_address_limit(),
            NUMA_NO_NODE,
        )
    };
    let mut alloc = |size, align| MEMBLOCK.lock().alloc(size, align);
    swiotlb_init(
        addressing_limit,
        SWIOTLB_VERBOSE,
        SwiotlbEnv {
            memblock_alloc_low: &mut alloc_low,
            memblock_alloc: &mut alloc,
            num_possible_cpus: crate::arch::aarch64::kernel::smp::num_possible_cpus(),
            hooks: SwiotlbHooks {
                phys_to_virt,
                virt_to_phys: crate::arch::aarch64::memory::virt_to_phys::<u8>,
                smp_processor_id: crate::arch::aarch64::percpu::smp_processor_id,
                clock_ns: crate::arch::aarch64::kernel::time::sched_clock,
                memzero: swiotlb_memzero,
            },
        },
    );
}

/// Linux: mem_init() (arm64) — the swiotlb bounce buffer when memory exceeds the DMA limit,
/// then every free memblock range to the buddy allocator. `mem_init_print_info` follows in
/// mm_init.
pub fn mem_init() {
    arm64_swiotlb_init();
    let nodes =
        crate::mm::mmzone::node_data_map().expect("build_all_zonelists published NODE_DATA");
    let mut env = crate::mm::page_alloc::PageAllocEnv::new(crate::arch::aarch64::memory::vmemmap());
    env.phys_to_virt = Some(phys_to_virt);
    env.virt_to_phys = Some(pa_of);
    env.clear_page = Some(clear_page);
    env.cpu_to_node = crate::mm::numa::cpu_to_node;
    env.with_cpu_node_map(crate::mm::numa::cpu_node_map());
    env.smp_processor_id = crate::arch::aarch64::percpu::smp_processor_id;
    // SAFETY: `cpu_number` is the kernel's per-CPU `cpu_number`; TPIDR_EL1 holds each CPU's
    // offset from smp_prepare_boot_cpu / secondary_start_kernel on, and 0 (the static
    // image, the boot CPU's 0) before.
    unsafe { env.with_cpu_number(&crate::arch::aarch64::percpu::cpu_number) };
    env.num_online_cpus = num_online_cpus;
    env.nr_cpus_node = nr_cpus_node;
    // SAFETY: the vmemmap backs every present section (sparse_init), __va/__pa are the
    // linear map's, and NODE_DATA is published and lives for the kernel's lifetime.
    unsafe { crate::mm::page_alloc::page_alloc_init(nodes, env) };
    crate::mm::page_alloc::memblock_free_all();
}

/// Deferred init's CPUs: the online ones, started through cross-CPU calls.
struct Padata;

/// What [`Padata::run_on`] hands each CPU: the work, and how many have finished it.
struct PadataWork<'w> {
    work: &'w (dyn Fn(usize) + Sync),
    done: core::sync::atomic::AtomicUsize,
}

/// The cross-CPU call of [`Padata::run_on`]: `info` is a `&PadataWork`.
fn padata_work_fn(info: usize) {
    // SAFETY: run_on passes the address of a PadataWork it keeps alive until every CPU has
    // counted itself done here.
    let w = unsafe { &*(info as *const PadataWork) };
    (w.work)(crate::arch::aarch64::percpu::smp_processor_id());
    w.done.fetch_add(1, Ordering::Release);
}

impl crate::mm::page_alloc::PadataSmp for Padata {
    fn node_cpus(&self, nid: i32, out: &mut [usize]) -> usize {
        let mut n = 0;
        for c in crate::kernel::cpu::for_each_online_cpu() {
            if crate::mm::numa::cpu_to_node(c) == nid && n < out.len() {
                out[n] = c;
                n += 1;
            }
        }
        n
    }

    fn online_cpus(&self, out: &mut [usize]) -> usize {
        let mut n = 0;
        for c in crate::kernel::cpu::for_each_online_cpu() {
            if n < out.len() {
                out[n] = c;
                n += 1;
            }
        }
        n
    }

    /// Linux: padata's queue_work() to each helper, the caller's own share, then
    /// wait_for_completion().
    fn run_on(&self, cpus: &[usize], work: &(dyn Fn(usize) + Sync)) {
        use crate::arch::aarch64::kernel::smp_call::smp_call_function_single;
        let me = crate::arch::aarch64::percpu::smp_processor_id();
        let w = PadataWork {
            work,
            done: core::sync::atomic::AtomicUsize::new(0),
        };
        let info = &w as *const PadataWork as usize;
        let mut started = 0;
        for &cpu in cpus.iter().filter(|&&c| c != me) {
            // A CPU that went offline cannot help: its share is done here.
            match smp_call_function_single(cpu, padata_work_fn, info, false) {
                Ok(()) => started += 1,
                Err(_) => work(cpu),
            }
        }
        if cpus.contains(&me) {
            work(me);
        }
        while w.done.load(Ordering::Acquire) < started {
            // SAFETY: a hint; under single-threaded TCG it lets the helpers run.
            unsafe { core::arch::asm!("yield", options(nomem, nostack, preserves_flags)) };
        }
    }

    fn jiffies(&self) -> u64 {
        use crate::arch::aarch64::kernel::time::{counter, frequency};
        (counter() as u128 * crate::mm::page_alloc::HZ as u128 / frequency() as u128) as u64
    }
}

/// Linux: page_alloc_init_late() (kernel_init_freeable(), after smp_init()) — deferred
/// struct-page init on each node's online CPUs, `node N deferred pages initialised in Mms`.
pub fn page_alloc_init_late() {
    crate::mm::page_alloc::page_alloc_init_late(&Padata);
    // Linux: page_alloc_init_late()'s shuffle_free_memory() of every node with memory,
    // once all of it is in the buddy (`page_alloc.shuffle=1`).
    use crate::mm::page_alloc::shuffle::{shuffle_enabled, SHUFFLE_ORDER};
    let Some(pa) = crate::mm::page_alloc::page_alloc().filter(|_| shuffle_enabled()) else {
        return;
    };
    // memblock, then the zone locks: the order memblock_free_all() takes them in.
    let mb = memblock::MEMBLOCK.lock();
    let valid = |pfn| crate::mm::free_area_init::early_pfn_valid(&mb, pfn);
    let nodes = pa.nr_online_nodes() as i32;
    let swaps: u64 = (0..nodes)
        .map(|nid| pa.shuffle_free_memory(nid, &valid))
        .sum();
    // Ours: Linux prints one pr_debug line per swap.
    pr_debug!(
        "page_alloc: shuffle: {} blocks of order {} swapped",
        swaps,
        SHUFFLE_ORDER
    );
}

/// Linux (up to 4.x): mem_init()'s "Virtual kernel memory layout:" — the regions of the
/// map drawn at the top of arch/aarch64/memory.rs, with the kernel's segments and the memory mapped.
pub fn print_vm_layout() {
    use crate::kernel::sections::*;
    let kb = |a: u64, b: u64| (b - a) >> 10;
    let (mb, gb) = (
        |a: u64, b: u64| (b - a) >> 20,
        |a: u64, b: u64| (b - a) >> 30,
    );
    let dram = crate::mm::memblock::MEMBLOCK.lock().start_of_dram();
    let (mem_start, mem_end) = (__va(dram).as_u64(), high_memory.load(Ordering::Relaxed));
    let fix_start = FIXADDR_START;
    pr_notice!("Virtual kernel memory layout:");
    pr_notice!(
        "    modules : 0x{:016x} - 0x{:016x}   ({:6} MB)",
        MODULES_VADDR,
        MODULES_END,
        mb(MODULES_VADDR, MODULES_END)
    );
    pr_notice!(
        "    vmalloc : 0x{:016x} - 0x{:016x}   ({:6} GB)",
        VMALLOC_START,
        VMALLOC_END,
        gb(VMALLOC_START, VMALLOC_END)
    );
    for (name, a, b) in [
        ("      .text", _text(), _etext()),
        ("    .rodata", __start_rodata(), __init_begin()),
        ("      .init", __init_begin(), __init_end()),
        ("      .data", _sdata(), _edata()),
        ("       .bss", __bss_start(), __bss_stop()),
    ] {
        pr_notice!(
            "{} : 0x{:016x} - 0x{:016x}   ({:6} KB)",
            name,
            a,
            b,
            kb(a, crate::mm::addr::align_up(b, 1024))
        );
    }
    pr_notice!(
        "    fixed   : 0x{:016x} - 0x{:016x}   ({:6} KB)",
        fix_start,
        FIXADDR_TOP,
        kb(fix_start, FIXADDR_TOP)
    );
    pr_notice!(
        "    PCI I/O : 0x{:016x} - 0x{:016x}   ({:6} MB)",
        PCI_IO_START,
        PCI_IO_END,
        mb(PCI_IO_START, PCI_IO_END)
    );
    pr_notice!(
        "    vmemmap : 0x{:016x} - 0x{:016x}   ({:6} GB maximum)",
        VMEMMAP_START,
        VMEMMAP_END,
        gb(VMEMMAP_START, VMEMMAP_END)
    );
    pr_notice!(
        "    memory  : 0x{:016x} - 0x{:016x}   ({:6} MB)",
        mem_start,
        mem_end,
        mb(mem_start, mem_end)
    );
}

/// Linux: mem_init_print_info() — the `Memory:` line from the linker's section sizes.
pub fn mem_init_print_info() {
    crate::mm::page_alloc::mem_init_print_info(&kernel_symbols());
}

/// Linux: free_initmem() (arm64) — the init sections go back to the buddy, poisoned, and
/// their kernel-image mapping is removed, so a stale call into init code faults.
pub fn free_initmem() {
    let s = kernel_symbols();
    let (begin, end) = (s.__init_begin, s.__init_end);
    crate::mm::page_alloc::free_reserved_area(
        crate::arch::aarch64::memory::kimg_to_phys(crate::mm::VirtAddr(begin)),
        crate::arch::aarch64::memory::kimg_to_phys(crate::mm::VirtAddr(end)),
        crate::mm::page_alloc::POISON_FREE_INITMEM,
        Some("unused kernel"),
    );
    crate::arch::aarch64::mm::mmu::unmap_kernel_range(begin, end);
}
