//! Fuzz target `buddy`: operation sequences against mm/page_alloc.c's buddy allocator (with
//! per-CPU lists and watermarks, two zones) on a simulated machine, checked against a
//! page-ownership bitmap: every block handed out is naturally aligned, inside its zone's
//! span, and shares no page with a live block; after every step the free pages (buddy plus
//! per-CPU lists) plus the pages handed out equal what the machine started with; at the
//! end of each input everything goes back and the free counts per order are exactly the
//! initial ones (the buddy merged everything again), with the memmap's free-block heads
//! agreeing with those counts and no bad pages.
#![no_main]

use arm64_mm::include::mmzone::{MAX_ORDER, ZONE_DMA, ZONE_NORMAL};
use arm64_mm::mm::gfp::*;
use arm64_mm::mm::testing::{Backing, Machine, UpToBuddy};
use arm64_mm_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;

const RAM: u64 = 0x4000_0000;
const MB: u64 = 1 << 20;
/// ZONE_DMA is [0x40000, 0x40800), ZONE_NORMAL the rest of the first bank and the second.
const DMA_END: u64 = 0x40800;
const FIRST: u64 = RAM >> 12;
const LAST: u64 = 0x50200;

struct State {
    sim: UpToBuddy,
    initial: Vec<[u64; MAX_ORDER]>,
    free0: u64,
    owned: Vec<bool>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(setup());
}

fn setup() -> State {
    let mut sim = Machine::fdt(
        &[(RAM, 16 * MB, None), (0x5000_0000, 2 * MB, None)],
        &[None],
        &[],
    )
    .backed(Backing::Full)
    .zone_limits([DMA_END, DMA_END, LAST, 0])
    .buddy();
    sim.free_all();
    sim.pa.setup_per_cpu_pageset(1);
    sim.pa.init_per_zone_wmark_min();
    sim.pa.drain_all_pages(None);
    let initial = counts(&sim);
    let free0 = sim.pa.nr_free_pages();
    State {
        sim,
        initial,
        free0,
        owned: vec![false; (LAST - FIRST) as usize],
    }
}

fn counts(sim: &UpToBuddy) -> Vec<[u64; MAX_ORDER]> {
    [ZONE_DMA, ZONE_NORMAL]
        .iter()
        .map(|&z| sim.counts(0, z))
        .collect()
}

fn pcp(sim: &UpToBuddy) -> u64 {
    [ZONE_DMA, ZONE_NORMAL]
        .iter()
        .map(|&z| sim.pa.zone_pcp_counts(sim.zone(0, z)).0)
        .sum()
}

const GFPS: [GfpT; 7] = [
    GFP_KERNEL,
    GFP_HIGHUSER_MOVABLE,
    GFP_DMA | __GFP_MOVABLE,
    GFP_KERNEL | __GFP_RECLAIMABLE,
    GFP_ATOMIC,
    GFP_KERNEL | __GFP_COMP,
    GFP_KERNEL | __GFP_ZERO,
];

fn run(st: &mut State, data: &[u8]) {
    let mut b = Bytes::new(data);
    let mut live: Vec<(u64, u32)> = Vec::new();
    let mut out = 0u64;
    let mut steps = 0;
    while !b.is_empty() && steps < 300 {
        steps += 1;
        match b.u8() % 8 {
            0..=3 => {
                let gfp = GFPS[usize::from(b.u8()) % GFPS.len()] | __GFP_NOWARN;
                let order = u32::from(b.u8()) % MAX_ORDER as u32;
                // High-order atomic allocations reserve HIGHATOMIC pageblocks, which (as in
                // Linux) do not merge back with their neighbours: the end check needs order 0.
                let order = if gfp & __GFP_ATOMIC != 0 { 0 } else { order };
                let Some(pfn) = st.sim.alloc(gfp, order) else {
                    continue;
                };
                assert_eq!(
                    pfn & ((1 << order) - 1),
                    0,
                    "order-{order} block at {pfn:#x}"
                );
                assert!(
                    pfn >= FIRST && pfn + (1 << order) <= LAST,
                    "pfn {pfn:#x} outside RAM"
                );
                if gfp_zone(gfp) == ZONE_DMA {
                    assert!(pfn + (1 << order) <= DMA_END, "DMA block at {pfn:#x}");
                }
                for i in 0..1u64 << order {
                    let o = &mut st.owned[(pfn + i - FIRST) as usize];
                    assert!(!*o, "pfn {:#x} handed out twice", pfn + i);
                    *o = true;
                }
                if gfp & __GFP_ZERO != 0 {
                    let p = st.sim.pa.page_address(
                        core::ptr::NonNull::new(st.sim.pa.pfn_to_page(arm64_mm::mm::Pfn(pfn)))
                            .unwrap(),
                    );
                    // SAFETY: the block is ours, mapped by the simulated linear map.
                    let bytes =
                        unsafe { core::slice::from_raw_parts(p.0 as *const u8, 4096 << order) };
                    assert!(bytes.iter().all(|&x| x == 0), "__GFP_ZERO block not zeroed");
                }
                live.push((pfn, order));
                out += 1 << order;
            }
            4..=6 if !live.is_empty() => {
                let (pfn, order) = live.swap_remove(usize::from(b.u16()) % live.len());
                for i in 0..1u64 << order {
                    st.owned[(pfn + i - FIRST) as usize] = false;
                }
                st.sim.free(pfn, order);
                out -= 1 << order;
            }
            _ => st.sim.pa.drain_all_pages(None),
        }
        assert_eq!(
            st.sim.pa.nr_free_pages() + pcp(&st.sim) + out,
            st.free0,
            "pages lost or made up"
        );
    }
    for (pfn, order) in live {
        for i in 0..1u64 << order {
            st.owned[(pfn + i - FIRST) as usize] = false;
        }
        st.sim.free(pfn, order);
    }
    st.sim.pa.drain_all_pages(None);
    assert_eq!(st.sim.pa.nr_free_pages(), st.free0);
    assert_eq!(counts(&st.sim), st.initial, "the buddy did not merge back");
    let mut heads = st.sim.buddy_heads(FIRST, FIRST + (16 * MB >> 12));
    heads.extend(st.sim.buddy_heads(0x50000, LAST));
    let mut per_order = [0u64; MAX_ORDER];
    for (_, o) in heads {
        per_order[o as usize] += 1;
    }
    let total: Vec<u64> = (0..MAX_ORDER)
        .map(|o| st.initial.iter().map(|c| c[o]).sum())
        .collect();
    assert_eq!(
        per_order.to_vec(),
        total,
        "memmap's free heads and the free lists disagree"
    );
    assert_eq!(st.sim.pa.bad_pages(), 0);
}

fuzz_target!(|data: &[u8]| {
    STATE.with(|s| run(&mut s.borrow_mut(), data));
    arm64_mm::kernel::printk::take_captured();
});
