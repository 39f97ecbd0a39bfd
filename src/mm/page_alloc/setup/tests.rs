//! Tests of the watermarks, lowmem reserves and per-CPU pagesets (`page_alloc/setup.rs`).

use super::super::tests::{two_banks_dma_below, MB, RAM};
use super::*;
use crate::include::mmzone::ZONE_DMA;
use crate::include::mmzone::ZONE_NORMAL;
use crate::kernel::printk::take_captured;
use crate::mm::gfp::*;
use crate::mm::mmzone::NR_FREE_PAGES;
use crate::mm::testing::{Backing, Machine};

#[test]
fn int_sqrt_is_linuxs() {
    assert_eq!(
        (
            int_sqrt(0),
            int_sqrt(15),
            int_sqrt(16),
            int_sqrt(63_258_624)
        ),
        (0, 3, 4, 7953)
    );
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
