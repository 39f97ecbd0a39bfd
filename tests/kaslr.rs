//! KASLR's linear-map randomisation (Linux: arch/arm64/kernel/kaslr.c and the
//! CONFIG_RANDOMIZE_BASE block of arm64_memblock_init()): QEMU's virt board puts a random
//! `/chosen/kaslr-seed` in the tree on every boot; its top 16 bits move memstart_addr down
//! by a multiple of 1 GiB, so RAM sits at a different place in the linear map each boot.
//! QEMU's `-seed N` makes its random numbers, and so the layout, repeat: two seeds, two
//! layouts (the exact `memory  :` lines below), and every check here passes on both. With
//! `nokaslr`, or a tree without a seed, the linear map starts RAM at PAGE_OFFSET.
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
use arm64_mm::mm::gfp::GFP_KERNEL;
use arm64_mm::mm::memblock::MEMBLOCK;
use arm64_mm::mm::page_alloc::page_alloc;
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
    ktest::finish()
}
