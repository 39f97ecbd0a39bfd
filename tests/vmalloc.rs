//! vmalloc_init and the vmalloc family on the real machine: virtually contiguous areas of
//! scattered pages, every page usable, a guard page after each area that faults (and is
//! reported as such), vfree giving back pages and address space, lazy purging with one TLB
//! flush per burst, 10 000 random vmalloc/vfree without leaks or fragmentation, ioremap of
//! the PL011 driving the UART, vmallocinfo. On two CPUs: an area freed on CPU 0 after CPU 1
//! read it faults on CPU 1 too (vfree's TLB flush is broadcast, `TLBI VAALE1IS`), and a
//! vm_map_ram mapping made on CPU 1 is unmapped from CPU 0.
#![no_std]
#![no_main]

use arm64_mm::arch::aarch64::esr::FaultKind;
use arm64_mm::arch::aarch64::kernel::extable::probe_read_u8;
use arm64_mm::arch::aarch64::kernel::smp::num_online_cpus;
use arm64_mm::arch::aarch64::kernel::smp_call::smp_call_function_single;
use arm64_mm::arch::aarch64::mm::mmu::PAGES_FOR_TABLES;
use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::boot_command_line;
use arm64_mm::mm::page_alloc::page_alloc;
use arm64_mm::mm::vmalloc::api::{
    ioremap, iounmap, is_vmalloc_addr, nr_vmap_blocks, purge_vmap_area_lazy, vfree, vm_map_ram,
    vm_unmap_ram, vmalloc, vmalloc_node, vmalloc_to_page, vmallocinfo, vmap_area_cache_pages,
    vmap_stats, vzalloc, VMAP_FLUSHES,
};
use arm64_mm::mm::PhysAddr;
use arm64_mm::{check, qemu_test};
use core::sync::atomic::{AtomicU64, Ordering};

qemu_test!(
    r#"
run -m 128M --smp 1
expect-output 0xffff8000
expect-output vmalloc
expect-output paging_init
expect-output hello from an ioremapped PL011
run -m 256M --smp 2
expect-output ok - after vfree and the lazy purge on CPU 0, CPU 1's read of the old address faults
expect-output ok - a vm_map_ram mapping made on CPU 1 reads the page on CPU 0
run -m 128M --smp 1 --append "test.guard"
expect-exit 1
expect-output vmalloc guard page of the area
expect-output Unable to handle kernel paging request at virtual address ffff8000
run -m 4G --numa 2 --append "test.node vmallocinfo"
expect-output mm: vmallocinfo
expect-output stack guard
"#
);

const PAGE: u64 = 4096;

/// What CPU 1 probes, and what it found: the byte + 1, or 0 if the read faulted.
static PROBE_ADDR: AtomicU64 = AtomicU64::new(0);
static PROBE_SEEN: AtomicU64 = AtomicU64::new(u64::MAX);

fn probe_on_this_cpu(_: usize) {
    let seen = probe_read_u8(PROBE_ADDR.load(Ordering::Relaxed)).map_or(0, |b| b as u64 + 1);
    PROBE_SEEN.store(seen, Ordering::Relaxed);
}

/// CPU 1's read of `addr`: Some(byte), or None if it faulted.
fn read_on_cpu1(addr: u64) -> Option<u8> {
    PROBE_ADDR.store(addr, Ordering::Relaxed);
    PROBE_SEEN.store(u64::MAX, Ordering::Relaxed);
    smp_call_function_single(1, probe_on_this_cpu, 0, true).expect("CPU 1 online");
    match PROBE_SEEN.load(Ordering::Relaxed) {
        0 => None,
        v => Some((v - 1) as u8),
    }
}

/// A vm_map_ram() of the page at `info` (a *const PagePtr), made on the CPU that runs it.
static MAPPED_ON_CPU1: AtomicU64 = AtomicU64::new(0);
fn map_on_this_cpu(info: usize) {
    // SAFETY: the caller passes a pointer to a live PagePtr and waits for us.
    let page = unsafe { *(info as *const arm64_mm::mm::page_alloc::PagePtr) };
    let va = vm_map_ram(&[page], 0).map_or(0, |a| a.as_u64());
    MAPPED_ON_CPU1.store(va, Ordering::Relaxed);
}

/// The cross-CPU checks (needs CPU 1 online).
fn two_cpus() {
    let pa = page_alloc().unwrap();
    // vfree's flush reaches CPU 1's TLB. The lazy list is emptied first, so the purge
    // below flushes just this area page by page (a larger purge flushes everything).
    purge_vmap_area_lazy();
    let a = vmalloc(PAGE).expect("vmalloc").as_u64();
    // SAFETY: our area.
    unsafe { (a as *mut u8).write_volatile(0x5a) };
    check!(
        read_on_cpu1(a) == Some(0x5a),
        "CPU 1 reads a page CPU 0 vmalloc'ed"
    );
    vfree(a);
    purge_vmap_area_lazy();
    check!(
        read_on_cpu1(a).is_none(),
        "after vfree and the lazy purge on CPU 0, CPU 1's read of the old address faults (no stale TLB entry)"
    );
    // vm_map_ram on CPU 1 (its vmap block queue), vm_unmap_ram on CPU 0.
    let blocks0 = nr_vmap_blocks();
    let page = pa
        .alloc_pages(arm64_mm::mm::gfp::GFP_KERNEL, 0)
        .expect("page");
    // SAFETY: our page, through the linear map.
    unsafe { pa.page_address(page).as_mut_ptr::<u64>().write(0xc0ffee) };
    smp_call_function_single(1, map_on_this_cpu, &page as *const _ as usize, true)
        .expect("CPU 1 online");
    let va = MAPPED_ON_CPU1.load(Ordering::Relaxed);
    // SAFETY: CPU 1 mapped our page there.
    let ok = va != 0 && unsafe { (va as *const u64).read_volatile() } == 0xc0ffee;
    check!(
        ok,
        "a vm_map_ram mapping made on CPU 1 reads the page on CPU 0"
    );
    check!(
        nr_vmap_blocks() == blocks0 + 1,
        "CPU 1 made a vmap block of its own ({} blocks, {} before)",
        nr_vmap_blocks(),
        blocks0
    );
    vm_unmap_ram(va, 1);
    // The flush is lazy (it comes with the block's purge), so only the tables are checked.
    check!(
        vmalloc_to_page(va).is_none(),
        "CPU 0 unmapped CPU 1's mapping (the page-table entry is gone)"
    );
    pa.__free_pages(page, 0);
}

/// Physical pfn behind each page of an area.
fn pfn_of(addr: u64) -> u64 {
    let p = vmalloc_to_page(addr).expect("mapped");
    page_alloc().unwrap().page_to_pfn(p.as_ptr()).0
}

fn fill_and_check(addr: u64, size: u64, seed: u64) -> bool {
    let p = addr as *mut u64;
    let words = size / 8;
    // SAFETY: the area is ours and `size` bytes long.
    unsafe {
        for i in (0..words).step_by(64) {
            p.add(i as usize).write_volatile(seed ^ i);
        }
        (0..words)
            .step_by(64)
            .all(|i| p.add(i as usize).read_volatile() == seed ^ i)
    }
}

#[no_mangle]
pub fn kernel_init() -> ! {
    let pa = page_alloc().expect("buddy");
    let cmd = boot_command_line();
    pa.drain_all_pages(None);
    let free0 = pa.nr_free_pages();
    let tables0 = PAGES_FOR_TABLES.load(Ordering::Relaxed) + vmap_area_cache_pages();
    let stats0 = vmap_stats().expect("vmap trees consistent");

    if cmd.contains("test.guard") {
        let a = vmalloc(PAGE).expect("one page");
        // SAFETY: deliberately reads the guard page: the kernel must report it and die.
        unsafe { core::ptr::read_volatile((a.as_u64() + PAGE) as *const u8) };
    }
    if cmd.contains("test.node") {
        for nid in [0, 1] {
            let a = vmalloc_node(64 * PAGE, nid).expect("area");
            let on_node = (0..64).all(|i| {
                let p = vmalloc_to_page(a.as_u64() + i * PAGE).unwrap();
                // SAFETY: a mapped page has an initialised struct page.
                unsafe { p.as_ref() }.page_to_nid() == nid
            });
            check!(on_node, "vmalloc_node({}) pages are on node {}", nid, nid);
            vfree(a.as_u64());
        }
        ktest::finish();
    }

    // One page, 1 MiB, and more than the largest free physical block (order 10 = 4 MiB).
    for size in [PAGE, 1 << 20, 8 << 20] {
        let a = vzalloc(size).expect("vzalloc");
        check!(
            is_vmalloc_addr(a.as_u64()),
            "vzalloc({:#x}) = {:#x} is a vmalloc address",
            size,
            a.as_u64()
        );
        // SAFETY: the area is ours.
        let zero = (0..size / 8)
            .step_by(509)
            .all(|i| unsafe { (a.as_ptr::<u64>()).add(i as usize).read_volatile() } == 0);
        check!(zero, "vzalloc({:#x}) is zeroed", size);
        check!(
            fill_and_check(a.as_u64(), size, size),
            "every page of {:#x} bytes reads back",
            size
        );
        if size == 8 << 20 {
            let pages = size / PAGE;
            let contiguous =
                (1..pages).all(|i| pfn_of(a.as_u64() + i * PAGE) == pfn_of(a.as_u64()) + i);
            check!(
                !contiguous,
                "8 MiB of vmalloc is backed by non-contiguous pages"
            );
        }
        let r = probe_read_u8(a.as_u64() + crate_align(size));
        check!(
            matches!(r, Err(f) if f.kind == FaultKind::Translation),
            "the page after the area is an unmapped guard: {:?}",
            r
        );
        vfree(a.as_u64());
    }

    // A burst of frees costs one TLB flush, when the lazy areas are purged.
    let mut areas = [0u64; 100];
    for a in areas.iter_mut() {
        *a = vmalloc(2 * PAGE).expect("area").as_u64();
    }
    purge_vmap_area_lazy();
    let flushes = VMAP_FLUSHES.load(Ordering::Relaxed);
    for a in areas {
        vfree(a);
    }
    purge_vmap_area_lazy();
    check!(
        VMAP_FLUSHES.load(Ordering::Relaxed) - flushes == 1,
        "100 vfree, one TLB flush"
    );

    // 10 000 alternating vmalloc/vfree of random sizes.
    let mut seed = 0xdead_beefu64;
    let mut live = [0u64; 16];
    for i in 0..10_000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let slot = (seed >> 40) as usize % live.len();
        if live[slot] != 0 {
            vfree(live[slot]);
            live[slot] = 0;
        }
        if i % 2 == 0 {
            let size = ((seed >> 20) % 64 + 1) * PAGE;
            live[slot] = vmalloc(size).map_or(0, |a| a.as_u64());
        }
    }
    for a in live.iter().filter(|&&a| a != 0) {
        vfree(*a);
    }
    purge_vmap_area_lazy();
    pa.drain_all_pages(None);
    let stats = vmap_stats().expect("vmap trees consistent after 10 000 operations");
    // Page tables made for the vmalloc range stay, as in Linux, and so do the vmap_area
    // cache's pages; everything else comes back.
    let tables = PAGES_FOR_TABLES.load(Ordering::Relaxed) + vmap_area_cache_pages() - tables0;
    check!(
        pa.nr_free_pages() + tables == free0,
        "every page back in the buddy ({} free + {} page-table pages, {} at start)",
        pa.nr_free_pages(),
        tables,
        free0
    );
    check!(
        stats.nr_busy == stats0.nr_busy
            && stats.nr_free == stats0.nr_free
            && stats.free_bytes == stats0.free_bytes,
        "the vmap space is back as it was: {} busy, {} free areas ({} / {} at start)",
        stats.nr_busy,
        stats.nr_free,
        stats0.nr_busy,
        stats0.nr_free
    );

    // vm_map_ram: small mappings from a per-CPU 4 MiB block, freed block by block.
    let blocks0 = nr_vmap_blocks();
    let mut pages = [core::ptr::NonNull::<arm64_mm::mm::page::Page>::dangling(); 4];
    for (i, p) in pages.iter_mut().enumerate() {
        *p = pa
            .alloc_pages(arm64_mm::mm::gfp::GFP_KERNEL, 0)
            .expect("page");
        // SAFETY: our page, through the linear map.
        unsafe {
            pa.page_address(*p)
                .as_mut_ptr::<u64>()
                .write(0xab00 + i as u64)
        };
    }
    let mut maps = [0u64; 300];
    for m in maps.iter_mut() {
        *m = vm_map_ram(&pages, 0).expect("vm_map_ram").as_u64();
    }
    // SAFETY: each mapping shows our four pages.
    let same = maps.iter().all(|&m| {
        (0..4).all(|i| unsafe { ((m + i * PAGE) as *const u64).read_volatile() } == 0xab00 + i)
    });
    check!(
        same,
        "300 vm_map_ram mappings of 4 pages read the pages ({} blocks)",
        nr_vmap_blocks() - blocks0
    );
    check!(
        nr_vmap_blocks() - blocks0 == 2,
        "1200 pages came from two 4 MiB vmap blocks"
    );
    for m in maps {
        vm_unmap_ram(m, 4);
    }
    check!(
        nr_vmap_blocks() == blocks0 + 1,
        "fully dirty blocks are freed; the partly used one stays"
    );
    for p in pages {
        pa.__free_pages(p, 0);
    }

    // ioremap of the PL011: a working console mapping.
    let uart = ioremap(PhysAddr(0x0900_0000), 0x1000).expect("ioremap");
    for b in b"hello from an ioremapped PL011\r\n" {
        // SAFETY: the PL011's data register through the new device mapping.
        unsafe { (uart.as_u64() as *mut u32).write_volatile(*b as u32) };
    }
    check!(
        is_vmalloc_addr(uart.as_u64()),
        "ioremap gives a vmalloc-range address"
    );
    vmallocinfo(&mut |l| arm64_mm::pr_info!("{}", l));
    iounmap(uart.as_u64());
    if num_online_cpus() >= 2 {
        two_cpus();
    }
    ktest::finish()
}

fn crate_align(size: u64) -> u64 {
    size.div_ceil(PAGE) * PAGE
}
