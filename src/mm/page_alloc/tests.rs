//! Host unit tests of `src/mm/page_alloc.rs` (`cargo hosttest`), on the shared scaffold
//! `mm::testing` (simulated RAM and a machine builder).

use super::*;
use crate::include::mmzone::ZONE_DMA;
use crate::kernel::printk::take_captured;
use crate::mm::mmzone::NR_PCP_LISTS;
use crate::mm::page::{PG_RESERVED, PG_SLAB};
use crate::mm::testing::{__pa_virt, Backing, Machine, UpToBuddy};
use proptest::prelude::*;

/// A device tree with these memory banks (`nid` Some: with numa-node-id) and CPUs.
fn fdt(mems: &[(u64, u64, Option<u32>)], cpus: &[Option<u32>]) -> Vec<u8> {
    crate::drivers::of::test_builder::numa_machine_fdt(mems, cpus, &[])
}

pub(in crate::mm) const RAM: u64 = 0x4000_0000;
pub(in crate::mm) const MB: u64 = 1 << 20;

/// Bank A: 16 MiB at 1 GiB (pfns 0x40000-0x40fff); bank B: 2 MiB at 0x5000_0000, the top,
/// where memblock puts NODE_DATA and the pageblock bitmaps. One node, one CPU.
pub(in crate::mm) fn two_banks() -> Vec<u8> {
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
}

// ----- split and merge

/// [`two_banks`] fully backed, ZONE_DMA (and DMA32) ending at pfn `dma_end`, Normal at
/// the end of bank B; memblock_free_all() done.
pub(in crate::mm) fn two_banks_dma_below(dma_end: u64) -> UpToBuddy {
    let mut sim = Machine::from_dtb(&two_banks())
        .backed(Backing::Full)
        .zone_limits([dma_end, dma_end, 0x50200, 0])
        .buddy();
    sim.free_all();
    sim
}

/// ZONE_DMA is exactly one MAX_ORDER block [0x40000, 0x40400): splits and merges in it
/// are fully predictable.
pub(in crate::mm) fn one_block_dma() -> UpToBuddy {
    let sim = two_banks_dma_below(0x40400);
    assert_eq!(sim.counts(0, ZONE_DMA), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    sim
}

pub(in crate::mm) const DMA_MOVABLE: GfpT = GFP_DMA | __GFP_MOVABLE;

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
        sim.zone(1, ZONE_DMA)
            .get_pageblock_migratetype(Pfn(0x40100)),
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
    let mt = |pfn| dma.get_pageblock_migratetype(Pfn(pfn));
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
    let mt = |pfn| dma.get_pageblock_migratetype(Pfn(pfn));
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

/// numa_node_id() read inline from a published map (PageAllocEnv::with_cpu_node_map):
/// NUMA_NO_NODE allocations come from the running CPU's node, and the map, not the
/// `cpu_to_node` hook, decides.
#[test]
fn no_node_allocations_follow_the_published_cpu_node_map() {
    use core::sync::atomic::AtomicI32;
    static MAP: [AtomicI32; 2] = [AtomicI32::new(1), AtomicI32::new(0)];
    let blob = fdt(
        &[(RAM, 16 * MB, Some(0)), (RAM + 16 * MB, 16 * MB, Some(1))],
        &[Some(0), Some(1)],
    );
    let mut sim = Machine::from_dtb(&blob)
        .backed(Backing::Full)
        .buddy_with(|env| env.with_cpu_node_map(&MAP));
    sim.free_all();
    sim.pa.setup_per_cpu_pageset(2);
    let node_of = |sim: &crate::mm::testing::UpToBuddy, p| sim.page(sim.pfn(p)).page_to_nid();
    crate::mm::testing::set_cpu(0);
    assert_eq!(sim.pa.numa_node_id(), 1);
    let p0 = sim.pa.alloc_pages(GFP_KERNEL, 0).unwrap();
    assert_eq!(node_of(&sim, p0), 1, "CPU 0 is on node 1 by the map");
    crate::mm::testing::set_cpu(1);
    assert_eq!(sim.pa.numa_node_id(), 0);
    let p1 = sim.pa.alloc_pages(GFP_KERNEL, 0).unwrap();
    assert_eq!(node_of(&sim, p1), 0, "CPU 1 is on node 0 by the map");
    sim.pa.__free_pages(p1, 0);
    crate::mm::testing::set_cpu(0);
    sim.pa.__free_pages(p0, 0);
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
    // A page freed with a flag it must not carry: through the per-CPU lists the flags are
    // cleared without a check (Linux without CONFIG_DEBUG_VM); a page still mapped is
    // reported when its list gives it back to the buddy, and leaked.
    let q = sim.alloc(DMA_MOVABLE, 0).unwrap();
    sim.page(q).set_flag(PG_SLAB);
    sim.free(q, 0);
    assert!(!sim.page(q).test_flag(PG_SLAB));
    assert_eq!(sim.pa.bad_pages(), 1);
    let q = sim.alloc(DMA_MOVABLE, 0).unwrap();
    sim.page(q)._mapcount.store(0, Ordering::Relaxed);
    let free = sim.pa.nr_free_pages();
    sim.free(q, 0);
    sim.pa.drain_all_pages(None);
    let out = take_captured();
    assert!(
        out.contains("page dumped because: nonzero mapcount"),
        "{out}"
    );
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
fn atomic_high_order_reserves_a_highatomic_pageblock() {
    let sim = one_block_dma();
    let dma = sim.zone(0, ZONE_DMA);
    // Only the slow path sets ALLOC_HARDER: put the zone below its low watermark (and
    // above min, 0) so that the fast path fails.
    dma._watermark[WMARK_LOW].store(2000, Ordering::Relaxed);
    let p = sim.alloc(GFP_ATOMIC | GFP_DMA, 1).unwrap();
    assert_eq!(p, 0x40000);
    assert_eq!(
        dma.get_pageblock_migratetype(Pfn(0x40000)),
        MIGRATE_HIGHATOMIC
    );
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
