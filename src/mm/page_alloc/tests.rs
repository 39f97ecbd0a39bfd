use super::*;
use crate::include::mmzone::ZONE_DMA;
use crate::kernel::printk::take_captured;
use crate::mm::free_area_init::early_pfn_valid;
use crate::mm::page::{PG_RESERVED, PG_SLAB};
use crate::mm::show;
use crate::mm::testing::{__pa_virt, __va, Backing, Machine, UpToBuddy};
use proptest::prelude::*;

const A_128M: &[u8] = include_bytes!("../../../tests/fixtures/dtb/a_128M_smp1.dtb");
const C_4G: &[u8] = include_bytes!("../../../tests/fixtures/dtb/c_4G_smp2.dtb");
const A_LOG: &str = include_str!("../../../tests/fixtures/linux-6.1/a_128M_smp1.log");

/// A device tree with these memory banks (`nid` Some: with numa-node-id) and CPUs.
fn fdt(mems: &[(u64, u64, Option<u32>)], cpus: &[Option<u32>]) -> Vec<u8> {
    crate::drivers::of::test_builder::numa_machine_fdt(mems, cpus, &[])
}

const RAM: u64 = 0x4000_0000;
const MB: u64 = 1 << 20;

/// Bank A: 16 MiB at 1 GiB (pfns 0x40000-0x40fff); bank B: 2 MiB at 0x5000_0000, the top,
/// where memblock puts NODE_DATA and the pageblock bitmaps. One node, one CPU.
fn two_banks() -> Vec<u8> {
    fdt(
        &[(RAM, 16 * MB, None), (0x5000_0000, 2 * MB, None)],
        &[None],
    )
}

// ----- flags and small arithmetic

#[test]
fn pcp_indices_orders_and_small_arithmetic_are_linuxs() {
    assert_eq!(NR_PCP_LISTS, 13);
    assert_eq!(order_to_pindex(MIGRATE_MOVABLE, 0), 1);
    assert_eq!(order_to_pindex(MIGRATE_UNMOVABLE, 3), 9);
    assert_eq!(order_to_pindex(MIGRATE_MOVABLE, 9), 12);
    assert_eq!((pindex_to_order(11), pindex_to_order(12)), (3, 9));
    assert!(pcp_allowed_order(3) && pcp_allowed_order(9) && !pcp_allowed_order(4));
    assert_eq!(
        (
            get_order(1),
            get_order(4096),
            get_order(4097),
            get_order(5 << 12)
        ),
        (0, 0, 1, 3)
    );
    assert_eq!(
        (
            int_sqrt(0),
            int_sqrt(15),
            int_sqrt(16),
            int_sqrt(63_258_624)
        ),
        (0, 3, 4, 7953)
    );
    assert_eq!(NodeList(Nodemask(0b1011)).to_string(), "0-1,3");
}

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

// ----- split and merge

/// [`two_banks`] fully backed, ZONE_DMA (and DMA32) ending at pfn `dma_end`, Normal at
/// the end of bank B; memblock_free_all() done.
fn two_banks_dma_below(dma_end: u64) -> UpToBuddy {
    let mut sim = Machine::from_dtb(&two_banks())
        .backed(Backing::Full)
        .zone_limits([dma_end, dma_end, 0x50200, 0])
        .buddy();
    sim.free_all();
    sim
}

/// ZONE_DMA is exactly one MAX_ORDER block [0x40000, 0x40400): splits and merges in it
/// are fully predictable.
fn one_block_dma() -> UpToBuddy {
    let sim = two_banks_dma_below(0x40400);
    assert_eq!(sim.counts(0, ZONE_DMA), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    sim
}

const DMA_MOVABLE: GfpT = GFP_DMA | __GFP_MOVABLE;

#[test]
fn split_and_merge_exactly() {
    let sim = one_block_dma();
    // Order 0 from an order-10 block: one free block of each order 0..9 remains.
    let a = sim.alloc(DMA_MOVABLE, 0).unwrap();
    assert_eq!(a, 0x40000);
    assert_eq!(sim.counts(0, ZONE_DMA), [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
    assert_eq!(
        sim.buddy_heads(0x40000, 0x40400),
        [
            (0x40001, 0),
            (0x40002, 1),
            (0x40004, 2),
            (0x40008, 3),
            (0x40010, 4),
            (0x40020, 5),
            (0x40040, 6),
            (0x40080, 7),
            (0x40100, 8),
            (0x40200, 9)
        ]
    );
    // The next order-0 is the buddy; then an order-1 split.
    assert_eq!(sim.alloc(DMA_MOVABLE, 0), Some(0x40001));
    assert_eq!(sim.alloc(DMA_MOVABLE, 0), Some(0x40002));
    assert_eq!(sim.alloc(DMA_MOVABLE, 0), Some(0x40003));
    assert_eq!(sim.counts(0, ZONE_DMA), [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
    // Free 0x40002: its buddy 0x40003 is in use, so it stays order 0.
    sim.free(0x40002, 0);
    assert_eq!(sim.buddy_heads(0x40000, 0x40004), [(0x40002, 0)]);
    // Free 0x40000 and 0x40001: they merge to order 1; the order-1 buddy 0x40002 is
    // free but of order 0, so no further merge.
    sim.free(0x40000, 0);
    sim.free(0x40001, 0);
    assert_eq!(
        sim.buddy_heads(0x40000, 0x40004),
        [(0x40000, 1), (0x40002, 0)]
    );
    assert_eq!(sim.counts(0, ZONE_DMA), [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
    // The last page merges everything back into the order-10 block.
    sim.free(0x40003, 0);
    assert_eq!(sim.counts(0, ZONE_DMA), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(sim.buddy_heads(0x40000, 0x40400), [(0x40000, 10)]);
    // High orders: split and merge back.
    assert_eq!(sim.alloc(DMA_MOVABLE, 9), Some(0x40000));
    assert_eq!(sim.alloc(DMA_MOVABLE, 9), Some(0x40200));
    assert_eq!(sim.alloc(DMA_MOVABLE | __GFP_NOWARN, 0), None);
    sim.free(0x40200, 9);
    sim.free(0x40000, 9);
    assert_eq!(sim.counts(0, ZONE_DMA), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(sim.pa.bad_pages(), 0);
}

/// Two nodes meeting at 0x40100, inside the MAX_ORDER block [0x40000, 0x40400): the free
/// order-8 blocks at 0x40000 (node 0's ZONE_DMA) and 0x40100 (node 1's) are buddies by
/// pfn, equal in order and both free, but of different zones: they must not merge.
/// Node 0 has a second bank at 0x5000_0000 so that its pg_data_t goes there, leaving
/// [0x40000, 0x40100) free.
/// (A zone limit inside a MAX_ORDER block is not something Linux ever builds — its
/// zone limits are MAX_ORDER aligned, and memblock_free_all() frees ranges without
/// looking at zones — but a node boundary is, and page_zone_id() covers both.)
#[test]
fn merge_only_within_the_same_zone() {
    let blob = fdt(
        &[
            (RAM, MB, Some(0)),
            (RAM + MB, 15 * MB, Some(1)),
            (0x5000_0000, 2 * MB, Some(0)),
        ],
        &[Some(0), Some(1)],
    );
    let mut sim = Machine::from_dtb(&blob).backed(Backing::Full).buddy();
    sim.free_all();
    assert_eq!(
        sim.buddy_heads(0x40000, 0x40400),
        [(0x40000, 8), (0x40100, 8), (0x40200, 9)]
    );
    let before0 = sim.counts(0, ZONE_DMA);
    assert_eq!(
        (
            sim.page(0x40000).page_to_nid(),
            sim.page(0x40100).page_to_nid()
        ),
        (0, 1)
    );
    // Take node 0's order-8 block (the first of its order-8 list) and give it back: it
    // finds its buddy free and of equal order, but in node 1's zone, and stays order 8.
    let p = sim
        .pa
        .alloc_pages_node(0, GFP_KERNEL | __GFP_MOVABLE | __GFP_THISNODE, 8)
        .unwrap();
    assert_eq!(sim.pfn(p), 0x40000);
    assert!(sim.page(0x40100).page_buddy() && sim.page(0x40100).buddy_order() == 8);
    sim.pa.__free_pages(p, 8);
    assert_eq!(
        sim.buddy_heads(0x40000, 0x40400),
        [(0x40000, 8), (0x40100, 8), (0x40200, 9)]
    );
    assert_eq!(sim.counts(0, ZONE_DMA), before0);
    // Node 1's side likewise. Its zone starts mid-pageblock, and memmap_init() marks
    // only the pageblocks that start in a zone movable: this one stays unmovable.
    let before = sim.counts(1, ZONE_DMA);
    assert_eq!(
        sim.zone(1, ZONE_DMA).get_pageblock_migratetype(0x40100),
        MIGRATE_UNMOVABLE
    );
    let q = sim
        .pa
        .alloc_pages_node(1, GFP_KERNEL | __GFP_THISNODE, 8)
        .unwrap();
    assert_eq!(sim.pfn(q), 0x40100);
    sim.pa.__free_pages(q, 8);
    assert_eq!(sim.counts(1, ZONE_DMA), before);
    assert_eq!(
        sim.buddy_heads(0x40000, 0x40400),
        [(0x40000, 8), (0x40100, 8), (0x40200, 9)]
    );
}

// ----- migratetype fallback

#[test]
fn fallback_order_and_stealing() {
    // Two MAX_ORDER blocks of ZONE_DMA: [0x40000, 0x40800), four movable pageblocks.
    let sim = two_banks_dma_below(0x40800);
    let dma = sim.zone(0, ZONE_DMA);
    let mt = |pfn| dma.get_pageblock_migratetype(pfn);
    let types = |o: usize| {
        let s = free_area_snapshot(dma);
        (0..MIGRATE_TYPES)
            .map(|t| s.per_type[t][o])
            .collect::<Vec<_>>()
    };
    assert_eq!(types(10), [0, 2, 0, 0, 0, 0]);
    // A reclaimable request: its own lists and UNMOVABLE's are empty, so it takes the
    // largest MOVABLE block, and with it both pageblocks (order >= pageblock_order).
    let r = sim.alloc(GFP_DMA | __GFP_RECLAIMABLE, 0).unwrap();
    assert_eq!(r, 0x40000);
    assert_eq!(
        (mt(0x40000), mt(0x40200), mt(0x40400)),
        (MIGRATE_RECLAIMABLE, MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE)
    );
    assert_eq!(types(9), [0, 0, 1, 0, 0, 0]);
    // Freed, it merges back into a RECLAIMABLE order-10 block.
    sim.free(r, 0);
    assert_eq!(types(10), [0, 1, 1, 0, 0, 0]);
    // An unmovable request with RECLAIMABLE and MOVABLE order-10 blocks free: Linux's
    // fallbacks[UNMOVABLE] tries RECLAIMABLE first.
    let u = sim.alloc(GFP_DMA, 0).unwrap();
    assert_eq!(u, 0x40000);
    assert_eq!(
        (mt(0x40000), mt(0x40400)),
        (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE)
    );
    sim.free(u, 0);
    assert_eq!(types(10), [1, 1, 0, 0, 0, 0]);
    // A movable request uses its own block; a reclaimable one now falls back to
    // UNMOVABLE before MOVABLE (fallbacks[RECLAIMABLE]).
    assert_eq!(sim.alloc(DMA_MOVABLE, 0), Some(0x40400));
    let r = sim.alloc(GFP_DMA | __GFP_RECLAIMABLE, 0).unwrap();
    assert_eq!(r, 0x40000);
    assert_eq!(mt(0x40000), MIGRATE_RECLAIMABLE);
    sim.free(r, 0);
    sim.free(0x40400, 0);
    assert_eq!(sim.counts(0, ZONE_DMA)[10], 2);
}

#[test]
fn stealing_a_partly_used_pageblock() {
    let sim = one_block_dma();
    let dma = sim.zone(0, ZONE_DMA);
    let mt = |pfn| dma.get_pageblock_migratetype(pfn);
    // Movable order 8 takes 0x40000; 0x40100 (o8) and 0x40200 (o9) stay movable.
    assert_eq!(sim.alloc(DMA_MOVABLE, 8), Some(0x40000));
    // Unmovable: the largest movable block (o9, a whole pageblock) is taken over.
    assert_eq!(sim.alloc(GFP_DMA, 0), Some(0x40200));
    assert_eq!(
        (mt(0x40000), mt(0x40200)),
        (MIGRATE_MOVABLE, MIGRATE_UNMOVABLE)
    );
    // Unmovable order 8: first its own (the upper half of the block just split), then
    // none of its own, so it steals the movable o8 at 0x40100. Half of that pageblock is
    // free and the rest counts as alike (no movable pages in use are known), so the
    // whole pageblock changes type.
    assert_eq!(sim.alloc(GFP_DMA, 8), Some(0x40300));
    assert_eq!(mt(0x40000), MIGRATE_MOVABLE);
    assert_eq!(sim.alloc(GFP_DMA, 8), Some(0x40100));
    assert_eq!(mt(0x40000), MIGRATE_UNMOVABLE);
}

// ----- zones and nodes

#[test]
fn gfp_dma_comes_only_from_zone_dma() {
    let sim = one_block_dma();
    let mut got = Vec::new();
    while let Some(p) = sim.alloc(GFP_DMA | __GFP_NOWARN, 0) {
        got.push(p);
    }
    assert_eq!(got.len(), 1024);
    assert!(got.iter().all(|&p| (0x40000..0x40400).contains(&p)));
    // GFP_KERNEL prefers ZONE_NORMAL (the zonelist's first entry).
    let k = sim.alloc(GFP_KERNEL, 0).unwrap();
    assert!(k >= 0x40400);
    for p in got {
        sim.free(p, 0);
    }
    sim.free(k, 0);
    assert_eq!(sim.counts(0, ZONE_DMA)[10], 1);
}

#[test]
fn thisnode_on_a_two_node_machine() {
    let blob = fdt(
        &[(RAM, 16 * MB, Some(0)), (RAM + 16 * MB, 16 * MB, Some(1))],
        &[Some(0), Some(1)],
    );
    let mut sim = Machine::from_dtb(&blob).backed(Backing::Full).buddy();
    sim.free_all();
    assert_eq!(sim.pa.nr_online_nodes(), 2);
    let node1 = 0x41000..0x42000;
    let p = sim
        .pa
        .alloc_pages_node(1, GFP_KERNEL | __GFP_THISNODE, 0)
        .unwrap();
    assert_eq!(sim.page(sim.pfn(p)).page_to_nid(), 1);
    assert!(node1.contains(&sim.pfn(p)));
    // Exhaust node 1 with __GFP_THISNODE: every page is node 1's, and then it fails
    // although node 0 has plenty.
    let mut pages = vec![sim.pfn(p)];
    while let Some(p) = sim
        .pa
        .alloc_pages_node(1, GFP_KERNEL | __GFP_THISNODE | __GFP_NOWARN, 0)
    {
        pages.push(sim.pfn(p));
    }
    assert!(pages.iter().all(|p| node1.contains(p)));
    assert_eq!(sim.zone(1, ZONE_DMA).zone_page_state(NR_FREE_PAGES), 0);
    assert!(sim.zone(0, ZONE_DMA).zone_page_state(NR_FREE_PAGES) > 3000);
    // Without it, node 1's request falls back to node 0.
    let q = sim.pa.alloc_pages_node(1, GFP_KERNEL, 0).unwrap();
    assert_eq!(sim.page(sim.pfn(q)).page_to_nid(), 0);
    // A nodemask restricts too: only node 1 allowed, nothing left there.
    assert!(sim
        .pa
        .__alloc_pages(GFP_KERNEL | __GFP_NOWARN, 0, 0, Some(Nodemask(0b10)))
        .is_none());
    for p in pages {
        sim.free(p, 0);
    }
    sim.free(sim.pfn(q), 0);
    assert_eq!(sim.pa.nr_free_pages(), sim.pa.totalram_pages());
}

// ----- watermarks

/// 32 MiB in ZONE_DMA only. managed = 8192 - reserved; lowmem_kbytes = managed * 4;
/// min_free_kbytes = sqrt(lowmem_kbytes * 16).
#[test]
fn watermarks_refuse_non_atomic_below_min_but_atomic_may_dip() {
    let mut sim = Machine::fdt(&[(RAM, 32 * MB, None)], &[None], &[])
        .backed(Backing::Full)
        .buddy();
    sim.free_all();
    let dma = sim.zone(0, ZONE_DMA);
    let managed = dma.zone_managed_pages();
    sim.pa.init_per_zone_wmark_min();
    let mfk = int_sqrt(managed * 4 * 16);
    assert_eq!(sim.pa.min_free_kbytes(), mfk);
    let min = mfk / 4;
    let delta = (min / 4).max(managed * 10 / 10000);
    assert_eq!(dma.min_wmark_pages(), min);
    assert_eq!(dma.low_wmark_pages(), min + delta);
    assert_eq!(dma.high_wmark_pages(), min + 2 * delta);
    assert_eq!(sim.pa.totalreserve_pages(), min + 2 * delta);
    // GFP_KERNEL allocates down to the min watermark and no further.
    let mut pages = Vec::new();
    while let Some(p) = sim.alloc(GFP_KERNEL | __GFP_NOWARN, 0) {
        pages.push(p);
    }
    assert_eq!(dma.zone_page_state(NR_FREE_PAGES), min);
    // GFP_ATOMIC may go below: to min - min/2 - (min - min/2)/4.
    while let Some(p) = sim.alloc(GFP_ATOMIC | __GFP_NOWARN, 0) {
        pages.push(p);
    }
    let half = min - min / 2;
    assert_eq!(dma.zone_page_state(NR_FREE_PAGES), half - half / 4);
    // Without __GFP_NOWARN the failure is reported as Linux does.
    take_captured();
    assert!(sim.alloc(GFP_ATOMIC, 0).is_none());
    let out = take_captured();
    assert!(
        out.contains("swapper/0: page allocation failure: order:0, mode:0xa20(GFP_ATOMIC), nodemask=(null)\n"),
        "{out}"
    );
    assert!(out.contains("Mem-Info:\n"));
    assert!(out.contains(&format!(
        "Node 0 DMA free:{}kB boost:0kB min:{}kB",
        (half - half / 4) * 4,
        min * 4
    )));
    for p in pages {
        sim.free(p, 0);
    }
    assert_eq!(sim.pa.nr_free_pages(), managed);
}

#[test]
fn lowmem_reserve_keeps_dma_for_dma_requests() {
    // DMA: [0x40000, 0x40800), Normal: the rest of bank A and bank B.
    let sim = two_banks_dma_below(0x40800);
    sim.pa.init_per_zone_wmark_min();
    let (dma, normal) = (sim.zone(0, ZONE_DMA), sim.zone(0, ZONE_NORMAL));
    let reserve = normal.zone_managed_pages() / 256;
    assert_eq!(
        (0..4).map(|i| dma.lowmem_reserve(i)).collect::<Vec<_>>(),
        [0, 0, reserve as i64, reserve as i64]
    );
    assert_eq!(
        (0..4).map(|i| normal.lowmem_reserve(i)).collect::<Vec<_>>(),
        [0, 0, 0, 0]
    );
    // GFP_KERNEL empties Normal to its min, then uses DMA only down to min + reserve.
    let mut pages = Vec::new();
    while let Some(p) = sim.alloc(GFP_KERNEL | __GFP_NOWARN, 0) {
        pages.push(p);
    }
    assert_eq!(
        normal.zone_page_state(NR_FREE_PAGES),
        normal.min_wmark_pages()
    );
    assert_eq!(
        dma.zone_page_state(NR_FREE_PAGES),
        dma.min_wmark_pages() + reserve
    );
    // GFP_DMA (highest zone DMA: no reserve applies) still gets pages.
    assert!(sim.alloc(GFP_DMA | __GFP_NOWARN, 0).is_some());
    let _ = pages;
}

// ----- per-CPU lists

#[test]
fn pcp_refill_and_drain() {
    // 256 MiB: a zone large enough for a batch of 15.
    let mut sim = Machine::fdt(&[(RAM, 256 * MB, None)], &[None], &[])
        .backed(Backing::Ends(8 * MB))
        .buddy();
    sim.free_all();
    let dma = sim.zone(0, ZONE_DMA);
    sim.pa.setup_per_cpu_pageset(2);
    let managed = dma.zone_managed_pages();
    let batch = PageAlloc::zone_batchsize(dma);
    assert_eq!(batch, 15);
    // Before the watermarks exist, high is four batches.
    assert_eq!(sim.pa.pcp_state(dma, 0), Some((0, 60, 15)));
    assert_eq!(sim.pa.pcp_state(dma, 1), Some((0, 60, 15)));
    let free0 = sim.pa.nr_free_pages();
    // The first order-0 allocation refills the list with a batch.
    let p = sim.alloc(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    assert_eq!(sim.pa.pcp_state(dma, 0).unwrap().0, 14);
    assert_eq!(sim.pa.nr_free_pages(), free0 - 15);
    // Freeing goes to the list, not the buddy.
    sim.free(p, 0);
    assert_eq!(sim.pa.pcp_state(dma, 0).unwrap().0, 15);
    assert_eq!(sim.pa.nr_free_pages(), free0 - 15);
    // Many frees: the list never reaches high; the excess goes back in batches.
    let pages: Vec<u64> = (0..200)
        .map(|_| sim.alloc(GFP_HIGHUSER_MOVABLE, 0).unwrap())
        .collect();
    for &p in &pages {
        sim.free(p, 0);
        let (count, high, _) = sim.pa.pcp_state(dma, 0).unwrap();
        assert!(count < high, "{count} >= {high}");
    }
    let (count, _, _) = sim.pa.pcp_state(dma, 0).unwrap();
    assert_eq!(sim.pa.nr_free_pages() + count as u64, free0);
    let (all, local) = sim.pa.zone_pcp_counts(dma);
    assert!(all > 0 && all == local && all == count as u64);
    // Order-3 pages are cached too, on their own list; but freeing a high order while
    // the CPU only frees (free_factor > 0) flushes the whole pageset (Linux's
    // free_high).
    let big = sim.alloc(GFP_HIGHUSER_MOVABLE, 3).unwrap();
    assert_eq!(sim.pa.pcp_state(dma, 0).unwrap().0, count + 8);
    sim.free(big, 3);
    assert_eq!(sim.pa.pcp_state(dma, 0).unwrap().0, 0);
    let small = sim.alloc(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    sim.free(small, 0);
    assert!(sim.pa.pcp_state(dma, 0).unwrap().0 > 0);
    // Draining gives everything back, and the buddy is as before.
    sim.pa.drain_all_pages(None);
    assert_eq!(sim.pa.zone_pcp_counts(dma), (0, 0));
    assert_eq!(sim.pa.nr_free_pages(), free0);
    // The watermarks raise high: low watermark / CPUs of the node (1 when none known).
    sim.pa.init_per_zone_wmark_min();
    assert_eq!(
        sim.pa.pcp_state(dma, 0).unwrap().1 as u64,
        dma.low_wmark_pages().max(60)
    );
    let _ = managed;
    assert_eq!(sim.pa.bad_pages(), 0);
}

// ----- compound pages, misuse, exact allocations, zeroing

#[test]
fn compound_pages_have_head_and_tails() {
    let sim = one_block_dma();
    let p = sim.pa.alloc_pages(DMA_MOVABLE | __GFP_COMP, 2).unwrap();
    let pfn = sim.pfn(p);
    let head = sim.page(pfn);
    assert!(head.page_head() && !head.page_tail() && head.page_count() == 1);
    for i in 1..4 {
        let t = sim.page(pfn + i);
        assert!(t.page_tail() && !t.page_head());
        assert!(ptr::eq(t.compound_head(), head));
        assert_eq!(t.mapping, TAIL_MAPPING);
    }
    assert_eq!(sim.page(pfn + 1).first_tail_compound_order(), 2);
    assert_eq!(PageAlloc::compound_order(head), 2);
    // Freeing a tail is refused with Linux's report.
    take_captured();
    sim.free(pfn + 2, 0);
    let out = take_captured();
    assert!(
        out.contains(&format!(
            "BUG: Bad page state in process swapper/0  pfn:{:05x}",
            pfn + 2
        )),
        "{out}"
    );
    assert!(out.contains("page dumped because: VM_BUG_ON_PAGE(PageTail(page))"));
    assert_eq!(sim.pa.bad_pages(), 1);
    // Freeing the head frees the whole compound page and unmakes it.
    sim.pa.__free_pages(p, 2);
    assert!(!head.page_head());
    assert!((1..4).all(|i| !sim.page(pfn + i).page_tail() && sim.page(pfn + i).mapping == 0));
    assert_eq!(sim.counts(0, ZONE_DMA)[10], 1);
}

#[test]
fn double_free_and_bad_page_state_are_reported_not_accepted() {
    let sim = one_block_dma();
    let p = sim.alloc(DMA_MOVABLE, 0).unwrap();
    sim.free(p, 0);
    let before = sim.counts(0, ZONE_DMA);
    take_captured();
    sim.free(p, 0);
    let out = take_captured();
    assert!(
        out.contains(&format!(
            "BUG: Bad page state in process swapper/0  pfn:{:05x}",
            p
        )),
        "{out}"
    );
    assert!(out.contains("page dumped because: VM_BUG_ON_PAGE(page_ref_count(page) == 0)"));
    assert!(out.contains("flags: 0x0(node=0|zone=0)"), "{out}");
    assert_eq!(sim.counts(0, ZONE_DMA), before);
    assert_eq!(sim.pa.bad_pages(), 1);
    // A page freed with a flag it must not carry is reported and leaked.
    let q = sim.alloc(DMA_MOVABLE, 0).unwrap();
    sim.page(q).set_flag(PG_SLAB);
    let free = sim.pa.nr_free_pages();
    sim.free(q, 0);
    let out = take_captured();
    assert!(
        out.contains("page dumped because: PAGE_FLAGS_CHECK_AT_FREE flag set"),
        "{out}"
    );
    assert!(out.contains("flags: 0x200(slab|node=0|zone=0)"), "{out}");
    assert_eq!(sim.pa.nr_free_pages(), free);
    assert_eq!(sim.pa.bad_pages(), 2);
    // A block whose second page is still referenced: "nonzero _refcount".
    let r = sim.alloc(DMA_MOVABLE, 1).unwrap();
    sim.page(r + 1).set_page_count(1);
    sim.free(r, 1);
    assert!(take_captured().contains("page dumped because: nonzero _refcount"));
    assert_eq!(sim.pa.bad_pages(), 3);
    // Reserved pages never reach the buddy through a normal free either.
    assert!(sim.page(0x501ff).test_flag(PG_RESERVED));
}

#[test]
fn alloc_pages_exact_frees_the_tail() {
    let sim = one_block_dma();
    let free0 = sim.pa.nr_free_pages();
    let before = sim.counts(0, ZONE_DMA);
    // 5 pages come from an order-3 block; pages 5-7 go straight back.
    let va = sim
        .pa
        .alloc_pages_exact(5 * PAGE_SIZE - 100, GFP_DMA | __GFP_MOVABLE)
        .unwrap();
    let pfn = __pa_virt(va).0 >> PAGE_SHIFT;
    assert_eq!(pfn, 0x40000);
    assert_eq!(sim.pa.nr_free_pages(), free0 - 5);
    assert!((0..5).all(|i| sim.page(pfn + i).page_count() == 1));
    assert_eq!(
        sim.buddy_heads(0x40000, 0x40008),
        [(0x40005, 0), (0x40006, 1)]
    );
    sim.pa.free_pages_exact(va, 5 * PAGE_SIZE - 100);
    assert_eq!(sim.pa.nr_free_pages(), free0);
    assert_eq!(sim.counts(0, ZONE_DMA), before);
}

#[test]
fn gfp_zero_and_addresses() {
    let sim = one_block_dma();
    let va = sim.pa.__get_free_pages(DMA_MOVABLE, 1).unwrap();
    // SAFETY: two pages we own, backed by the simulated RAM.
    unsafe { ptr::write_bytes(va.as_mut_ptr::<u8>(), 0x5a, 2 * PAGE_SIZE as usize) };
    sim.pa.free_pages(va, 1);
    let z = sim.pa.alloc_pages(DMA_MOVABLE | __GFP_ZERO, 1).unwrap();
    let zva = sim.pa.page_address(z);
    assert_eq!(zva, va);
    // SAFETY: as above.
    let bytes = unsafe { core::slice::from_raw_parts(zva.as_ptr::<u8>(), 2 * PAGE_SIZE as usize) };
    assert!(bytes.iter().all(|&b| b == 0));
    assert_eq!(sim.pa.virt_to_page(zva), z);
    let g = sim.pa.get_zeroed_page(GFP_DMA | __GFP_MOVABLE).unwrap();
    // SAFETY: as above.
    assert!(
        unsafe { core::slice::from_raw_parts(g.as_ptr::<u8>(), PAGE_SIZE as usize) }
            .iter()
            .all(|&b| b == 0)
    );
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

#[test]
fn order_ten_fails_cleanly_on_a_fragmented_zone() {
    let sim = one_block_dma();
    // Take every page, give back every other one: 512 free pages, no two adjacent.
    let pages: Vec<u64> = (0..1024)
        .map(|_| sim.alloc(DMA_MOVABLE, 0).unwrap())
        .collect();
    for p in pages.iter().filter(|&&p| p % 2 == 0) {
        sim.free(*p, 0);
    }
    assert_eq!(sim.counts(0, ZONE_DMA), [512, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    take_captured();
    assert!(sim
        .pa
        .__alloc_pages(GFP_KERNEL | GFP_DMA, 10, 0, None)
        .is_none());
    let out = take_captured();
    let lines: Vec<&str> = out.lines().map(|l| &l[15..]).collect();
    assert_eq!(
        lines[0],
        "swapper/0: page allocation failure: order:10, mode:0xcc1(GFP_KERNEL|GFP_DMA), nodemask=(null)"
    );
    assert_eq!(lines[1], "Mem-Info:");
    assert!(lines.contains(&"Node 0 DMA: 512*4kB (M) 0*8kB 0*16kB 0*32kB 0*64kB 0*128kB 0*256kB 0*512kB 0*1024kB 0*2048kB 0*4096kB = 2048kB"), "{out}");
    assert!(lines.contains(&"lowmem_reserve[]: 0 0 0 0"), "{out}");
    assert_eq!(sim.counts(0, ZONE_DMA), [512, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    for p in pages.iter().filter(|&&p| p % 2 == 1) {
        sim.free(*p, 0);
    }
    assert_eq!(sim.counts(0, ZONE_DMA)[10], 1);
    // Past MAX_ORDER: refused outright.
    assert!(sim.alloc(DMA_MOVABLE | __GFP_NOWARN, 11).is_none());
}

#[test]
fn atomic_high_order_reserves_a_highatomic_pageblock() {
    let sim = one_block_dma();
    let dma = sim.zone(0, ZONE_DMA);
    // Only the slow path sets ALLOC_HARDER: put the zone below its low watermark (and
    // above min, 0) so that the fast path fails.
    dma._watermark[WMARK_LOW].store(2000, Ordering::Relaxed);
    let p = sim.alloc(GFP_ATOMIC | GFP_DMA, 1).unwrap();
    assert_eq!(p, 0x40000);
    assert_eq!(dma.get_pageblock_migratetype(0x40000), MIGRATE_HIGHATOMIC);
    assert_eq!(dma.nr_reserved_highatomic.load(Ordering::Relaxed), 512);
    let snap = free_area_snapshot(dma);
    assert_eq!(
        snap.per_type[MIGRATE_HIGHATOMIC as usize][..9],
        [0, 1, 1, 1, 1, 1, 1, 1, 1]
    );
    // Freed, the block is whole again but a HIGHATOMIC pageblock does not merge with
    // its (unmovable) neighbour: two order-9 blocks, not one order-10.
    sim.free(p, 1);
    assert_eq!(sim.counts(0, ZONE_DMA), [0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0]);
    // Non-atomic requests do not count the reserve as free.
    assert!(!PageAlloc::zone_watermark_ok(
        dma,
        0,
        600,
        ZONE_DMA,
        ALLOC_WMARK_MIN
    ));
    assert!(PageAlloc::zone_watermark_ok(
        dma,
        0,
        600,
        ZONE_DMA,
        ALLOC_HARDER
    ));
}

// ----- reports

#[test]
fn reports_have_linuxs_format() {
    let sim = one_block_dma();
    let mut lines = Vec::new();
    show::buddyinfo(sim.pa.nodes(), &mut |l| lines.push(l.to_string()));
    assert_eq!(
        lines[0],
        "Node 0, zone      DMA      0      0      0      0      0      0      0      0      0      0      1 "
    );
    assert!(lines[1].starts_with("Node 0, zone   Normal "));
    let mut lines = Vec::new();
    let mb = &sim.mb;
    show::pagetypeinfo(sim.pa.nodes(), &|pfn| early_pfn_valid(mb, pfn), &mut |l| {
        lines.push(l.to_string())
    });
    assert_eq!(lines[0], "Page block order: 9");
    assert_eq!(lines[1], "Pages per block:  512");
    assert_eq!(lines[2], "");
    assert_eq!(
        lines[3],
        "Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8      9     10 "
    );
    assert_eq!(
        lines[5],
        "Node    0, zone      DMA, type      Movable      0      0      0      0      0      0      0      0      0      0      1 "
    );
    let hdr = lines
        .iter()
        .position(|l| l.starts_with("Number of blocks type"))
        .unwrap();
    assert_eq!(
        lines[hdr],
        "Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic          CMA      Isolate "
    );
    assert_eq!(
        lines[hdr + 1],
        "Node 0, zone      DMA            0            2            0            0            0            0 "
    );
    let mut lines = Vec::new();
    show::meminfo(sim.pa, &mut |l| lines.push(l.to_string()));
    let total = sim.pa.totalram_pages() * 4;
    assert_eq!(lines[0], format!("MemTotal:       {:8} kB", total));
    assert_eq!(lines[1], format!("MemFree:        {:8} kB", total));
    assert_eq!(lines[2], format!("MemAvailable:   {:8} kB", total));
    assert_eq!(show::parse_mm_reports("buddyinfo,meminfo"), Ok(5));
    assert!(show::parse_mm_reports("slabinfo").is_err());
    take_captured();
    show::print_mm_reports_bits(sim.pa, &|pfn| early_pfn_valid(mb, pfn), 15);
    let out = take_captured();
    assert!(out.contains("] mm: buddyinfo\n") && out.contains("] Mem-Info:\n"));
}

// ----- property: no page handed out twice; everything back restores the buddy

#[derive(Clone, Debug)]
enum Op {
    Alloc(u32, u8),
    Free(usize),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        3 => (prop_oneof![6 => 0u32..=3, 2 => 4u32..=10], 0u8..6).prop_map(|(o, g)| Op::Alloc(o, g)),
        2 => any::<usize>().prop_map(Op::Free),
    ];
    proptest::collection::vec(op, 1..300)
}

#[test]
fn random_alloc_free_never_hands_out_a_page_twice() {
    // DMA [0x40000, 0x40800) and Normal above, with per-CPU lists.
    let sim = two_banks_dma_below(0x40800);
    sim.pa.setup_per_cpu_pageset(1);
    sim.pa.init_per_zone_wmark_min();
    let initial: Vec<[u64; MAX_ORDER]> = [ZONE_DMA, ZONE_NORMAL]
        .iter()
        .map(|&z| sim.counts(0, z))
        .collect();
    let free0 = sim.pa.nr_free_pages();
    let gfps = [
        GFP_KERNEL,
        GFP_HIGHUSER_MOVABLE,
        GFP_DMA | __GFP_MOVABLE,
        GFP_KERNEL | __GFP_RECLAIMABLE,
        GFP_ATOMIC,
        GFP_KERNEL | __GFP_COMP,
    ];
    let handed_out = std::cell::Cell::new(0u64);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    runner
        .run(&ops(), |ops| {
            let mut used = std::collections::HashSet::new();
            let mut live: Vec<(u64, u32)> = Vec::new();
            for op in ops {
                match op {
                    Op::Alloc(order, g) => {
                        let gfp = gfps[g as usize] | __GFP_NOWARN;
                        // High-order atomic allocations reserve HIGHATOMIC pageblocks,
                        // which (as in Linux) do not merge with their neighbours.
                        let order = if gfp & __GFP_ATOMIC != 0 { 0 } else { order };
                        let Some(p) = sim.pa.alloc_pages(gfp, order) else {
                            continue;
                        };
                        let pfn = sim.pfn(p);
                        prop_assert_eq!(pfn & ((1 << order) - 1), 0, "unaligned block");
                        if gfp_zone(gfp) == ZONE_DMA {
                            prop_assert!(pfn < 0x40800);
                        }
                        for i in 0..1u64 << order {
                            prop_assert!(
                                used.insert(pfn + i),
                                "pfn {:#x} handed out twice",
                                pfn + i
                            );
                        }
                        live.push((pfn, order));
                        handed_out.set(handed_out.get() + 1);
                    }
                    Op::Free(i) if !live.is_empty() => {
                        let (pfn, order) = live.swap_remove(i % live.len());
                        for j in 0..1u64 << order {
                            used.remove(&(pfn + j));
                        }
                        sim.free(pfn, order);
                    }
                    Op::Free(_) => {}
                }
            }
            for (pfn, order) in live {
                sim.free(pfn, order);
            }
            sim.pa.drain_all_pages(None);
            prop_assert_eq!(sim.pa.nr_free_pages(), free0);
            let now: Vec<[u64; MAX_ORDER]> = [ZONE_DMA, ZONE_NORMAL]
                .iter()
                .map(|&z| sim.counts(0, z))
                .collect();
            prop_assert_eq!(&now, &initial);
            prop_assert_eq!(sim.pa.bad_pages(), 0);
            Ok(())
        })
        .unwrap();
    assert!(
        handed_out.get() > 1000,
        "the sequences allocate: {}",
        handed_out.get()
    );
}
