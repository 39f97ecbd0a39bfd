//! start_kernel() (Linux: init/main.c): the boot stages in Linux's order, one call each.
//! The work is in the callees; this file is the table of contents of the boot.

use crate::arch::aarch64::kernel::process::PANIC_HOOKS;
use crate::arch::aarch64::kernel::time::{self, timed};
use crate::arch::aarch64::kernel::{setup, smp};
use crate::arch::aarch64::mm::{init as mm_init, mmu, ptdump};
use crate::kernel::params::boot_command_line;
use crate::kernel::{panic, params, printk, stages};

/// Linux: start_kernel(). Entered from head.S on the boot stack, MMU on, at the kernel's
/// virtual address, with the device tree's physical address (also in `__fdt_pointer`),
/// which it hands to setup_arch().
#[no_mangle]
pub extern "C" fn start_kernel(fdt_phys: u64) -> ! {
    panic::set_panic_hooks(&PANIC_HOOKS);
    printk::set_clock(time::sched_clock);
    stages::set_stage_clock(time::frequency);
    crate::mm::vmalloc::api::set_vmalloc_arch(&crate::arch::aarch64::mm::vmalloc::VMALLOC_ARCH);
    crate::mm::kmemleak::kmemleak_set_env(KMEMLEAK_ENV);
    setup::print_boot_banner();
    timed("setup_arch", || {
        setup::setup_arch(crate::mm::PhysAddr(fdt_phys))
    });
    timed("setup_per_cpu_areas", setup_per_cpu_areas);
    timed("build_all_zonelists", build_all_zonelists);
    pr_notice!("Kernel command line: {}", boot_command_line());
    params::parse_late_params(boot_command_line());
    timed("mm_init", mm_init);
    // Linux: start_kernel()'s kfence_init(), once the slab allocator is up.
    if crate::mm::kfence::kfence_enabled_early() {
        timed("kfence_init", kfence_init);
    }
    timed(
        "kmem_cache_init_late",
        crate::mm::slab_common::kmem_cache_init_late,
    );
    timed("setup_per_cpu_pageset", || {
        crate::mm::page_alloc::setup_per_cpu_pageset(setup::nr_cpu_ids())
    });
    // Linux: kernel_init_freeable()'s smp_init(), before the initcalls and free_initmem
    // (the secondaries turn their MMU on through init_idmap_pg_dir, freed with init).
    timed("smp_init", || {
        let mode = setup::__boot_cpu_mode.load(core::sync::atomic::Ordering::Relaxed);
        smp::smp_init(&setup::machine().cpus, mode)
    });
    // Linux: kernel_init_freeable()'s page_alloc_init_late(), before the initcalls.
    timed("page_alloc_init_late", mm_init::page_alloc_init_late);
    // Linux: "Initialize page ext after all struct pages are initialized." (A stage of
    // its own only when a client needs page_ext: with none, Linux's does nothing.)
    if crate::mm::page_owner::page_owner_enabled() {
        timed("page_ext_init", page_ext_init);
    }
    // Linux: core_initcall(cma_init_reserved_areas) — the CMA areas join the buddy.
    crate::mm::cma::cma_init_reserved_areas();
    // What kernel_init()'s initcalls and its end do for memory:
    timed(
        "init_per_zone_wmark_min",
        crate::mm::page_alloc::init_per_zone_wmark_min,
    );
    crate::arch::aarch64::kernel::kaslr::kaslr_init();
    crate::mm::kmemleak::kmemleak_late_init();
    timed("free_initmem", mm_init::free_initmem);
    timed("mark_readonly", mark_readonly);
    if let Some(pa) = crate::mm::page_alloc::page_alloc() {
        let mb_valid = |pfn: crate::mm::Pfn| {
            crate::mm::free_area_init::early_pfn_valid(&crate::mm::memblock::MEMBLOCK.lock(), pfn)
        };
        crate::mm::show::print_mm_reports(pa, &mb_valid);
    }
    crate::mm::vmalloc::api::print_vmallocinfo_if_asked();
    crate::mm::slab_common::print_slabinfo_if_asked();
    ptdump::ptdump_check_boot();
    crate::init::report::report_at_end_of_init();
    rest_init()
}

/// Linux: setup_per_cpu_areas() (drivers/base/arch_numa.c) — one unit per possible CPU,
/// on its node, holding a copy of the static per-CPU image.
fn setup_per_cpu_areas() {
    use crate::mm::{memblock::MEMBLOCK, numa::NUMA_EARLY, percpu};
    // Linux: for_each_possible_cpu() — a CPU below nr_cpu_ids whose enable method was
    // refused is not possible and gets no unit.
    let mut cpus = [0usize; crate::include::numa::NR_CPUS];
    let mut n = 0;
    for cpu in (0..setup::nr_cpu_ids()).filter(|&c| smp::cpu_possible(c)) {
        cpus[n] = cpu;
        n += 1;
    }
    let numa = NUMA_EARLY.lock();
    let offsets = percpu::setup_per_cpu_areas(
        crate::kernel::sections::percpu_static_image(),
        &cpus[..n],
        &|c| numa.cpu_to_node(c),
        &|a, b| numa.node_distance(a, b),
        &mut MEMBLOCK.lock(),
    )
    .unwrap_or_else(|e| panic!("Failed to initialize percpu areas (err={}).", e.errno()));
    drop(numa);
    percpu::set_per_cpu_offsets(offsets);
    smp::smp_prepare_cpus(setup::nr_cpu_ids());
}

/// Linux: build_all_zonelists(NULL) — each node's fallback order; from here the node and
/// NUMA data are read-only (published).
fn build_all_zonelists() {
    use crate::mm::{mmzone, numa, zonelist};
    {
        let numa = numa::NUMA_EARLY.lock();
        zonelist::build_all_zonelists(&mut mmzone::NODE_DATA_EARLY.lock(), &numa);
    }
    crate::mm::show::mminit_print_zoneinfo(mmzone::node_data_publish());
    numa::numa_publish();
}

/// Linux: mm_init() — the allocators, in Linux 6.1's order: the `mem auto-init:` line
/// (report_meminit), the buddy takes over from memblock (mem_init), then prints `Memory:`.
fn mm_init() {
    init_mem_debugging_and_hardening();
    crate::mm::kfence::kfence_alloc_pool(&mut |size, align| {
        crate::mm::memblock::MEMBLOCK
            .lock()
            .alloc(size, align)
            .map_or(core::ptr::null_mut(), |p| p.as_ptr())
    });
    crate::mm::page_alloc::report_meminit(crate::mm::page_alloc::MemInit::from_boot_params());
    stack_depot_early_init();
    timed("mem_init", mm_init::mem_init);
    mm_init::mem_init_print_info();
    timed("kmem_cache_init", kmem_cache_init);
    timed("pgtable_init", mmu::pgtable_init);
    timed("vmalloc_init", crate::mm::vmalloc::api::vmalloc_init);
    // Rust allocations above kmalloc's limit go to vmalloc from here (Linux's kvmalloc).
    crate::mm::heap::KERNEL_HEAP.set_vmalloc_hooks(crate::mm::vmalloc::api::kvmalloc_hooks());
}

/// Linux: init_mem_debugging_and_hardening()'s debugging half — the page allocator's hooks
/// for debug_pagealloc (the arch's __kernel_map_pages) and page_owner, set before mem_init()
/// gives it memory (init_on_alloc/free are set by page_alloc_init()).
fn init_mem_debugging_and_hardening() {
    use crate::arch::aarch64::kernel::stacktrace::stack_trace_save;
    use crate::mm::{debug_page_alloc, page_owner};
    let env = page_owner::PageOwnerEnv {
        stack_trace_save,
        clock: time::sched_clock,
        cpu: crate::arch::aarch64::percpu::smp_processor_id,
    };
    let mut hooks = page_owner::page_debug_hooks(env);
    if debug_page_alloc::debug_pagealloc_enabled() {
        hooks.kernel_map_pages = Some(mmu::__kernel_map_pages);
    }
    debug_page_alloc::set_kernel_page_debug_hooks(hooks);
}

/// What kmemleak asks of the arch: the stack, the generic timer, the CPU, __va, its pool
/// from memblock, and the roots of a scan.
const KMEMLEAK_ENV: crate::mm::kmemleak::KmemleakEnv = crate::mm::kmemleak::KmemleakEnv {
    stack_trace_save: crate::arch::aarch64::kernel::stacktrace::stack_trace_save,
    clock: time::sched_clock,
    cpu: crate::arch::aarch64::percpu::smp_processor_id,
    phys_to_virt: |pa| crate::arch::aarch64::memory::phys_to_virt(crate::mm::PhysAddr(pa)) as u64,
    alloc_pool: kmemleak_alloc_pool,
    for_each_root: kmemleak_roots,
};

/// kmemleak's pool: from memblock, not tracked (MEMBLOCK_ALLOC_NOLEAKTRACE).
fn kmemleak_alloc_pool(bytes: u64) -> *mut u8 {
    use crate::mm::memblock::{MEMBLOCK, MEMBLOCK_ALLOC_NOLEAKTRACE, MEMBLOCK_LOW_LIMIT};
    MEMBLOCK
        .lock()
        .alloc_try_nid(
            bytes,
            64,
            MEMBLOCK_LOW_LIMIT,
            MEMBLOCK_ALLOC_NOLEAKTRACE,
            crate::include::numa::NUMA_NO_NODE,
        )
        .map_or(core::ptr::null_mut(), |p| p.as_ptr())
}

/// Linux: kmemleak_scan()'s roots — data and bss, each possible CPU's per-CPU area, and the
/// stacks (Linux scans every task's; here each online CPU's: the boot CPU's init_stack,
/// the secondaries' vmalloc'ed stacks in their per-CPU `kernel_stack_lo`).
fn kmemleak_roots(f: &mut dyn FnMut(&'static str, u64, u64)) {
    use crate::arch::aarch64::{memory::THREAD_SIZE, percpu::kernel_stack_lo};
    use crate::kernel::sections as sec;
    f("data", sec::_sdata(), sec::_edata());
    f("bss", sec::__bss_start(), sec::__bss_stop());
    for cpu in (0..setup::nr_cpu_ids()).filter(|&c| smp::cpu_possible(c)) {
        let off = crate::mm::percpu::per_cpu_offset(cpu);
        if off != 0 {
            f(
                "percpu",
                sec::__per_cpu_start().wrapping_add(off),
                sec::__per_cpu_end().wrapping_add(off),
            );
        }
    }
    f("stack", sec::init_stack(), sec::init_stack_top());
    for cpu in (1..setup::nr_cpu_ids()).filter(|&c| crate::kernel::cpu::cpu_online(c)) {
        // SAFETY: an online CPU has its per-CPU unit; kernel_stack_lo is a per-CPU static.
        let lo = unsafe { crate::mm::percpu::per_cpu_ptr(&kernel_stack_lo, cpu) }
            .load(core::sync::atomic::Ordering::Relaxed);
        if lo != 0 {
            f("stack", lo, lo + THREAD_SIZE);
        }
    }
}

/// Linux: stack_depot_early_init() — the depot's hash table and pool from memblock, if
/// page_owner asked for it. (Linux sizes the table by nr_kernel_pages; the present pages
/// give the same power of two but for machines within 2% of a boundary.)
fn stack_depot_early_init() {
    let pages: u64 = crate::mm::mmzone::node_data_publish()
        .pgdats()
        .map(|p| p.node_present_pages)
        .sum();
    crate::kernel::stackdepot::stack_depot_early_init(pages, &mut |size, align| {
        crate::mm::memblock::MEMBLOCK
            .lock()
            .alloc(size, align)
            .map_or(core::ptr::null_mut(), |p| p.as_ptr())
    });
}

/// Linux: page_ext_init() (kernel_init_freeable(), after page_alloc_init_late()) — the
/// per-section page_ext tables, if page_owner needs them.
fn page_ext_init() {
    let Some(pa) = crate::mm::page_alloc::page_alloc() else {
        return;
    };
    let section_present = |pfn: crate::mm::Pfn| {
        crate::mm::free_area_init::early_pfn_valid(&crate::mm::memblock::MEMBLOCK.lock(), pfn)
    };
    crate::mm::page_ext::page_ext_init(
        pa,
        &[&crate::mm::page_owner::PAGE_OWNER_OPS],
        &section_present,
    );
}

/// Linux: kmem_cache_init() — SLUB bootstraps its own caches and the kmalloc caches over
/// the buddy, prints the `SLUB:` line, and takes over Rust's global allocator from the
/// early heap.
fn kmem_cache_init() {
    use crate::mm::{page_alloc, slub::SlubParams};
    let pa: &'static dyn crate::mm::slub::SlabPageSource =
        page_alloc::page_alloc().expect("mem_init ran");
    let nodes = crate::mm::numa::numa_publish().nr_online_nodes();
    // The freelist randomisation and hardened-pointer seed (Linux: get_random_bytes).
    let seed = crate::kernel::random::get_random_u64();
    let m = page_alloc::page_alloc().expect("mem_init ran").meminit();
    let params = SlubParams::new(setup::nr_cpu_ids() as u32, nodes, seed)
        .with_boot_params()
        .with_meminit(m.init_on_alloc, m.init_on_free)
        .with_kmemleak(crate::mm::kmemleak::kmemleak_enabled());
    // SAFETY: arm64's per-CPU cpu_number, read at TPIDR_EL1's offset (percpu.rs).
    let params = unsafe { params.with_cpu_number(&crate::arch::aarch64::percpu::cpu_number) };
    let slub = crate::mm::slab_common::kmem_cache_init(pa, params);
    // From here on the global allocator serves new allocations with kmalloc.
    crate::mm::heap::KERNEL_HEAP.slab_ready(slub);
}

/// Linux: kfence_init() — the guard pages protected through the arch's
/// kfence_protect_page(), the stacks saved by the frame-pointer unwinder, SLUB's hook set.
fn kfence_init() {
    use crate::mm::kfence::core::KfenceEnv;
    let env = KfenceEnv {
        protect_page: crate::arch::aarch64::mm::kfence::kfence_protect_page,
        stack_trace_save: crate::arch::aarch64::kernel::stacktrace::stack_trace_save,
        clock: time::sched_clock,
        counter: time::counter,
        counter_freq: time::frequency(),
        cpu: crate::arch::aarch64::percpu::smp_processor_id,
        set_slab: Some(crate::mm::kfence::kernel_set_slab),
        print_info: setup::dump_stack_print_info,
    };
    let slub = crate::mm::slab_common::slub().expect("kmem_cache_init ran");
    crate::mm::kfence::kfence_init(env, slub, crate::kernel::random::get_random_u64());
}

/// Linux: mark_readonly() — rodata becomes read-only once boot stops writing it.
fn mark_readonly() {
    mmu::mark_rodata_ro();
}

/// What runs when the boot stages are done: the kernel binary's `kernel_init` (the end of
/// boot) or a QEMU test's (its checks). Linux: rest_init() → kernel_init().
fn rest_init() -> ! {
    extern "Rust" {
        fn kernel_init() -> !;
    }
    // SAFETY: every kernel binary (src/main.rs, each tests/*.rs) defines exactly one
    // `#[no_mangle] fn kernel_init() -> !`; the linker rejects zero or two.
    unsafe { kernel_init() }
}
