//! KASLR's linear-map randomisation (Linux: arch/arm64/kernel/kaslr.c and the
//! CONFIG_RANDOMIZE_BASE block of arm64_memblock_init()): QEMU's virt board puts a random
//! `/chosen/kaslr-seed` in the tree on every boot; its top 16 bits move memstart_addr down
//! by a multiple of 1 GiB, so RAM sits at a different place in the linear map each boot.
//! QEMU's `-seed N` makes its random numbers, and so the layout, repeat: two seeds, two
//! layouts (the exact `memory  :` lines below), and every check here passes on both. With
//! `nokaslr`, or a tree without a seed, the linear map starts RAM at PAGE_OFFSET.
//!
//! The page allocator's shuffle (`page_alloc.shuffle=1`, Linux's mm/shuffle.c) is checked
//! here too: without it the order-10 blocks of a fresh one-CPU boot come out in address
//! order, with it they do not, and all of them come out and go back either way.
//!
//! In the guest: memstart_addr is exactly what the seed gives (recomputed from the seed
//! and the memory), every memblock region is reachable through the linear map at its
//! randomised address (__va/__pa and pfn_to_page/page_to_pfn invert each other), and pages
//! from the buddy are written and read back through their addresses.
#![no_std]
#![no_main]

use arm64_mm::arch::aarch64::kernel::kaslr::{kaslr_state, memstart_randomized, KaslrStatus};
use arm64_mm::arch::aarch64::memory::{
    __pa, __va, page_to_pfn, pfn_to_page, phys_offset, PAGE_END, PAGE_OFFSET,
};
use arm64_mm::arch::aarch64::mm::init::{cpu_pa_bits, ARM64_MEMSTART_ALIGN};
use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::boot_command_line;
use arm64_mm::mm::gfp::{__GFP_NOWARN, GFP_KERNEL};
use arm64_mm::mm::memblock::MEMBLOCK;
use arm64_mm::mm::page_alloc::page_alloc;
use arm64_mm::mm::page_alloc::shuffle::shuffle_enabled;
use arm64_mm::mm::{PhysAddr, PAGE_SIZE};
use arm64_mm::{check, qemu_test};

qemu_test!(
    r#"
run -m 1G -- -seed 1
expect-output KASLR enabled
expect-output     memory  : 0xffff3fc000000000 - 0xffff3fc040000000   (  1024 MB)
expect-no-output FAIL
run -m 1G -- -seed 2
expect-output KASLR enabled
expect-output     memory  : 0xffff6918c0000000 - 0xffff691900000000   (  1024 MB)
expect-no-output FAIL
run -m 4G --smp 2 --numa 2 -- -seed 3
expect-output KASLR enabled
expect-no-output FAIL
run -m 1G --append "nokaslr" -- -seed 1
expect-output KASLR disabled on command line
expect-output     memory  : 0xffff000000000000 - 0xffff000040000000   (  1024 MB)
run -m 1G -- -machine dtb-kaslr-seed=off
expect-output KASLR disabled due to lack of seed
expect-output     memory  : 0xffff000000000000 - 0xffff000040000000   (  1024 MB)
run -m 1G --append "page_alloc.shuffle=1 loglevel=8 test.shuffle"
expect-output page_alloc: shuffle:
expect-output ok - page_alloc.shuffle=1: the order-10 blocks come out of address order
run -m 1G --smp 1 --append "page_alloc.shuffle=maybe test.noshuffle"
expect-output Booting kernel: `maybe' invalid for parameter `page_alloc.shuffle'
expect-output ok - without shuffling, the order-10 blocks come out in address order
"#
);

#[no_mangle]
pub fn kernel_init() -> ! {
    let (status, seed) = kaslr_state();
    let start = MEMBLOCK.lock().start_of_dram();
    let base = start.align_down(ARM64_MEMSTART_ALIGN).as_u64();
    let expected = memstart_randomized(
        base,
        PAGE_END - PAGE_OFFSET,
        cpu_pa_bits(),
        ARM64_MEMSTART_ALIGN,
        seed,
    );
    arm64_mm::pr_info!(
        "kaslr: {:?}, memstart_offset_seed {:#06x}, memstart_addr {:#x}, RAM from {:#x}",
        status,
        seed,
        phys_offset(),
        __va(start).as_u64()
    );
    let nokaslr = boot_command_line()
        .split_whitespace()
        .any(|a| a == "nokaslr");
    match status {
        KaslrStatus::Enabled => check!(
            !nokaslr && seed != 0 && phys_offset() == expected && phys_offset() != base,
            "the seed's top bits {:#06x} moved memstart_addr from {:#x} to {:#x}",
            seed,
            base,
            phys_offset()
        ),
        _ => check!(
            seed == 0 && phys_offset() == base && __va(start).as_u64() == PAGE_OFFSET,
            "{:?}: memstart_addr is memory's start rounded down to 1 GiB ({:#x})",
            status,
            base
        ),
    }

    // Every region reachable and the conversions inverse to each other.
    let mut bad = 0;
    let mut regions = 0;
    for r in MEMBLOCK.lock().memory().regions() {
        regions += 1;
        let (lo, hi) = (r.base.as_u64(), r.base.as_u64() + r.size - 1);
        for pa in [lo, lo + r.size / 2, hi] {
            let va = __va(PhysAddr(pa));
            let in_lm = va.as_u64() >= PAGE_OFFSET && va.as_u64() < PAGE_END;
            let pfn = arm64_mm::mm::Pfn(pa >> 12);
            if !in_lm || __pa(va).as_u64() != pa || page_to_pfn(pfn_to_page(pfn)) != pfn {
                bad += 1;
            }
        }
    }
    check!(
        bad == 0,
        "__va/__pa and pfn_to_page/page_to_pfn invert each other over {} memory regions",
        regions
    );

    // Pages through their randomised linear-map addresses.
    let pa = page_alloc().expect("buddy");
    let mut ok = 0;
    for order in [0u32, 3, 9] {
        if let Some(p) = pa.alloc_pages(GFP_KERNEL, order) {
            let va = pa.page_address(p);
            let phys = pa.page_to_pfn(p.as_ptr()).phys();
            let n = (PAGE_SIZE << order) as usize / 8;
            let w = va.as_mut_ptr::<u64>();
            for i in (0..n).step_by(511) {
                // SAFETY: the block is ours, mapped at its linear address.
                unsafe { w.add(i).write_volatile(phys.as_u64() ^ i as u64) };
            }
            let same = (0..n)
                .step_by(511)
                // SAFETY: as above.
                .all(|i| unsafe { w.add(i).read_volatile() } == phys.as_u64() ^ i as u64);
            if same && __va(phys) == va && __pa(va) == phys {
                ok += 1;
            }
            pa.__free_pages(p, order);
        }
    }
    check!(
        ok == 3,
        "blocks of order 0, 3 and 9 written and read back at their linear addresses"
    );
    shuffle_check();
    ktest::finish()
}

/// Takes every free order-10 block, checks how they came out, and gives them back.
fn shuffle_check() {
    let pa = page_alloc().expect("buddy");
    // NR_FREE_PAGES leaves out the per-CPU lists: empty them first, as at the end.
    pa.drain_all_pages(None);
    let free0 = pa.nr_free_pages();
    let mut pfns = [0u64; 512];
    let mut n = 0;
    while n < pfns.len() {
        match pa.alloc_pages(GFP_KERNEL | __GFP_NOWARN, 10) {
            Some(p) => {
                pfns[n] = pa.page_to_pfn(p.as_ptr()).0;
                n += 1;
            }
            None => break,
        }
    }
    // Ascending or descending runs: a fresh buddy hands out its top blocks in address order.
    let ordered = pfns[..n].windows(2).filter(|w| w[1] == w[0] + 1024).count();
    let reversed = pfns[..n].windows(2).filter(|w| w[0] == w[1] + 1024).count();
    let in_order = ordered.max(reversed);
    let shuffled = shuffle_enabled();
    arm64_mm::pr_info!(
        "kaslr: {} order-10 blocks, {} of {} neighbours in address order (shuffle {})",
        n,
        in_order,
        n.saturating_sub(1),
        shuffled
    );
    if boot_command_line().contains("test.shuffle") {
        check!(
            shuffled && n >= 32 && in_order < n / 2,
            "page_alloc.shuffle=1: the order-10 blocks come out of address order ({} of {} \
             neighbours in order)",
            in_order,
            n - 1
        );
    } else if boot_command_line().contains("test.noshuffle") {
        // One CPU: deferred init frees the blocks in address order. (With more, the CPUs
        // free their parts of a node at once and the lists interleave.)
        check!(
            !shuffled && n >= 32 && in_order >= (n - 1) * 3 / 4,
            "without shuffling, the order-10 blocks come out in address order ({} of {})",
            in_order,
            n - 1
        );
    }
    for &pfn in &pfns[..n] {
        pa.__free_pages(
            core::ptr::NonNull::new(pa.pfn_to_page(arm64_mm::mm::Pfn(pfn))).unwrap(),
            10,
        );
    }
    pa.drain_all_pages(None);
    check!(
        pa.nr_free_pages() == free0,
        "every order-10 block went back ({} free pages, {} before)",
        pa.nr_free_pages(),
        free0
    );
}
