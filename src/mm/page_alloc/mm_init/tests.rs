//! Tests of boot memory into the buddy (`page_alloc/mm_init.rs`): memblock_free_all()'s
//! split, the `Memory:` line against Linux 6.1's, free_reserved_area().

use super::super::tests::{two_banks, MB, RAM};
use super::super::POISON_FREE_INITMEM;
use super::*;
use crate::include::mmzone::ZONE_DMA;
use crate::kernel::printk::take_captured;
use crate::mm::mmzone::NR_FREE_PAGES;
use crate::mm::testing::fixtures::{A_128M, C_4G};
use crate::mm::testing::{__va, Backing, Machine};

const A_LOG: &str = include_str!("../../../../tests/fixtures/linux-6.1/a_128M_smp1.log");

// ----- memblock_free_all

/// Bank A minus the reserved pfns 0x40003-0x40004, freed as Linux's
/// __free_pages_memory() does: [0x40000, 0x40003) as order 1 + order 0, then from
/// 0x40005 the largest aligned blocks: 0, 1, 3, 4, ..., 9, then three order-10 blocks.
/// Nothing merges: every buddy is reserved or freed later at another order.
#[test]
fn memblock_free_all_splits_like_linux() {
    let mut sim = Machine::from_dtb(&two_banks())
        .backed(Backing::Full)
        .reserve(RAM + 0x3000, 0x2000)
        .buddy();
    let freed = sim.free_all();
    let heads = sim.buddy_heads(0x40000, 0x41000);
    assert_eq!(
        heads,
        [
            (0x40000, 1),
            (0x40002, 0),
            (0x40005, 0),
            (0x40006, 1),
            (0x40008, 3),
            (0x40010, 4),
            (0x40020, 5),
            (0x40040, 6),
            (0x40080, 7),
            (0x40100, 8),
            (0x40200, 9),
            (0x40400, 10),
            (0x40800, 10),
            (0x40c00, 10)
        ]
    );
    // Bank B: memblock's allocations at its top are reserved; the rest is free.
    let b_free: u64 = sim
        .buddy_heads(0x50000, 0x50200)
        .iter()
        .map(|&(_, o)| 1u64 << o)
        .sum();
    let reserved_top = (0x50000..0x50200u64)
        .filter(|&p| {
            sim.mb
                .is_region_reserved(PhysAddr(p << PAGE_SHIFT), PAGE_SIZE)
        })
        .count() as u64;
    assert!(reserved_top > 0 && b_free == 512 - reserved_top);
    assert_eq!(freed, 4096 - 2 + b_free);
    // The zone's lists agree with the memmap walk, and every count with every other.
    let dma = sim.zone(0, ZONE_DMA);
    let c = sim.counts(0, ZONE_DMA);
    let mut expect = [0u64; MAX_ORDER];
    for (_, o) in sim
        .buddy_heads(0x40000, 0x41000)
        .into_iter()
        .chain(sim.buddy_heads(0x50000, 0x50200))
    {
        expect[o as usize] += 1;
    }
    assert_eq!(c, expect);
    assert!(c[0] >= 2 && c[1] >= 2 && c[10] == 3);
    assert_eq!(dma.zone_managed_pages(), freed);
    assert_eq!(sim.pa.totalram_pages(), freed);
    assert_eq!(sim.pa.nr_free_pages(), freed);
    assert_eq!(dma.zone_page_state(NR_FREE_PAGES), freed);
    // Reserved pages keep PG_reserved and their boot reference; free pages have neither.
    for p in [0x40003, 0x40004] {
        assert!(sim.page(p).page_reserved() && sim.page(p).page_count() == 1);
    }
    assert!(!sim.page(0x40005).page_reserved() && sim.page(0x40005).page_count() == 0);
    assert!(sim.page(0x501ff).page_reserved());
    assert_eq!(sim.pa.bad_pages(), 0);
}

#[test]
fn memory_line_reproduces_linux_128m() {
    let mut sim = Machine::from_dtb(A_128M)
        .backed(Backing::Ends(8 * MB))
        .buddy();
    // Linux reserved 36600K of this machine (kernel, memmap, DTB, ...); reserve the
    // same total here, as a kernel image at RAM + 2 MiB, so totalram matches.
    let free_now: u64 = sim
        .mb
        .free_mem_ranges(
            crate::include::numa::NUMA_NO_NODE,
            crate::mm::memblock::MemblockFlags::NONE,
        )
        .map(|(s, e, _)| e.pfn_down().0.saturating_sub(s.pfn_up().0))
        .sum();
    let linux_totalram = 94472 / 4;
    let extra = free_now - linux_totalram;
    sim.mb
        .reserve(PhysAddr(RAM + 2 * MB), extra << PAGE_SHIFT)
        .unwrap();
    sim.free_all();
    // Linux 6.1's section sizes for this kernel: 13248K code, 2806K rwdata, 9524K
    // rodata, 6464K init (text inside init), 627K bss.
    let k = 1024;
    let stext = 0xffff_8000_0801_0000u64;
    let etext = stext + 13248 * k + 100;
    let srodata = etext.next_multiple_of(0x10000);
    let erodata = srodata + 9524 * k + 5;
    let init_begin = erodata.next_multiple_of(0x10000);
    let syms = KernelSymbols {
        _stext: stext,
        _etext: etext,
        __start_rodata: srodata,
        __end_rodata: erodata,
        __init_begin: init_begin,
        _sinittext: init_begin + 0x1000,
        _einittext: init_begin + 0x1000 + 1500 * k,
        __init_end: init_begin + 6464 * k,
        _sdata: init_begin + 6464 * k,
        _edata: init_begin + 6464 * k + 2806 * k + 7,
        __bss_start: init_begin + 9300 * k,
        __bss_stop: init_begin + 9300 * k + 627 * k + 3,
    };
    take_captured();
    sim.pa.mem_init_print_info(&syms);
    let out = take_captured();
    let ours = out
        .lines()
        .next()
        .unwrap()
        .strip_prefix("[    0.000000] ")
        .unwrap();
    let linux = A_LOG
        .lines()
        .find_map(|l| l.find("Memory: ").map(|i| &l[i..]))
        .unwrap();
    assert_eq!(ours, linux);
    assert_eq!(
        ours,
        "Memory: 94472K/131072K available (13248K kernel code, 2806K rwdata, 9524K rodata, 6464K init, 627K bss, 36600K reserved, 0K cma-reserved)"
    );
}

#[test]
fn physpages_of_the_4g_machine_is_linuxs() {
    let sim = Machine::from_dtb(C_4G)
        .backed(Backing::Ends(8 * MB))
        .buddy();
    // Linux: "Memory: ...K/4194304K available".
    assert_eq!(sim.pa.get_num_physpages() * 4, 4194304);
}

#[test]
fn free_reserved_area_returns_init_memory() {
    // The "init section": 16 pages reserved at RAM + 4 MiB.
    let init = RAM + 4 * MB;
    let mut sim = Machine::fdt(&[(RAM, 32 * MB, None)], &[None], &[])
        .backed(Backing::Full)
        .reserve(init, 16 * PAGE_SIZE)
        .buddy();
    sim.free_all();
    let (total, free) = (sim.pa.totalram_pages(), sim.pa.nr_free_pages());
    let managed = sim.zone(0, ZONE_DMA).zone_managed_pages();
    take_captured();
    let n = sim.pa.free_reserved_area(
        PhysAddr(init - 100),
        PhysAddr(init + 16 * PAGE_SIZE + 100),
        POISON_FREE_INITMEM,
        Some("unused kernel"),
    );
    assert_eq!(n, 16, "the whole pages inside the range");
    assert_eq!(
        take_captured(),
        "[    0.000000] Freeing unused kernel memory: 64K\n"
    );
    assert_eq!(sim.pa.totalram_pages(), total + 16);
    assert_eq!(sim.pa.nr_free_pages(), free + 16);
    assert_eq!(sim.zone(0, ZONE_DMA).zone_managed_pages(), managed + 16);
    // SAFETY: the freed page is backed; nothing allocated it yet.
    assert_eq!(unsafe { *__va(PhysAddr(init + 8 * PAGE_SIZE)) }, 0xcc);
    assert!(!sim.page((init >> PAGE_SHIFT) + 8).page_reserved());
}
