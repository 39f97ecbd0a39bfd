//! Tests of the per-CPU lists and the fast paths through them (`page_alloc/pcp.rs`).

use super::super::tests::{MB, RAM};
use crate::include::mmzone::{MAX_ORDER, ZONE_DMA};
use crate::kernel::printk::take_captured;
use crate::mm::gfp::*;
use crate::mm::page::PG_SLAB;
use crate::mm::testing::{set_cpu, Backing, Machine, UpToBuddy};
use core::sync::atomic::Ordering;

/// 256 MiB in ZONE_DMA, per-CPU lists for `cpus` CPUs (batch 15, high 60), this thread on
/// CPU 0.
fn machine(cpus: usize) -> UpToBuddy {
    let mut sim = Machine::fdt(&[(RAM, 256 * MB, None)], &[None], &[])
        .backed(Backing::Ends(8 * MB))
        .buddy();
    sim.free_all();
    sim.pa.setup_per_cpu_pageset(cpus);
    set_cpu(0);
    sim
}

/// The pages on the zone's free lists, counted from the lists themselves.
fn buddy_pages(sim: &UpToBuddy) -> u64 {
    let c = sim.counts(0, ZONE_DMA);
    (0..MAX_ORDER).map(|o| c[o] << o).sum()
}

#[test]
fn an_allocation_takes_this_cpus_list_and_leaves_the_buddy_alone() {
    let sim = machine(2);
    let dma = sim.zone(0, ZONE_DMA);
    let p = sim.alloc(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    sim.free(p, 0);
    let free = sim.pa.nr_free_pages();
    let (count, _, _) = sim.pa.pcp_state(dma, 0).unwrap();
    assert_eq!(count, 15);
    // The fast path: the page just freed (head of the list) comes back; the buddy and
    // its counter are untouched.
    let q = sim.alloc(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    assert_eq!(q, p);
    assert_eq!(sim.pa.pcp_state(dma, 0).unwrap().0, count - 1);
    assert_eq!(sim.pa.nr_free_pages(), free);
    assert_eq!(sim.page(q).page_count(), 1);
    // Another CPU has its own list: its first allocation refills it from the buddy.
    set_cpu(1);
    let r = sim.alloc(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    assert_eq!(sim.pa.pcp_state(dma, 1).unwrap().0, 14);
    assert_eq!(sim.pa.pcp_state(dma, 0).unwrap().0, count - 1);
    assert_eq!(sim.pa.nr_free_pages(), free - 15);
    // A page allocated on CPU 0 and freed on CPU 1 goes to CPU 1's list.
    sim.free(q, 0);
    assert_eq!(sim.pa.pcp_state(dma, 1).unwrap().0, 15);
    assert_eq!(sim.pa.pcp_state(dma, 0).unwrap().0, count - 1);
    sim.free(r, 0);
    set_cpu(0);
    // NR_FREE_PAGES (changed without an atomic read-modify-write, under the zone lock) is
    // exactly what the free lists hold.
    assert_eq!(sim.pa.nr_free_pages(), buddy_pages(&sim));
    assert_eq!(sim.pa.bad_pages(), 0);
}

#[test]
fn a_remote_drain_empties_another_cpus_lists_only() {
    let sim = machine(2);
    let dma = sim.zone(0, ZONE_DMA);
    let free0 = sim.pa.nr_free_pages();
    set_cpu(1);
    let a = sim.alloc(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    let b = sim.alloc(GFP_HIGHUSER_MOVABLE, 3).unwrap();
    sim.free(a, 0);
    set_cpu(0);
    let c = sim.alloc(GFP_KERNEL, 0).unwrap();
    sim.free(c, 0);
    let on1 = sim.pa.pcp_state(dma, 1).unwrap().0;
    let on0 = sim.pa.pcp_state(dma, 0).unwrap().0;
    assert!(on1 > 0 && on0 > 0);
    // CPU 0 drains CPU 1's lists (Linux 6.1's drain_pages_zone() under pcp->lock).
    sim.pa.drain_pages_zone(1, dma);
    assert_eq!(sim.pa.pcp_state(dma, 1).unwrap().0, 0);
    assert_eq!(sim.pa.pcp_state(dma, 0).unwrap().0, on0);
    assert_eq!(
        sim.pa.nr_free_pages() + on0 as u64 + 8,
        free0,
        "all but CPU 0's list and the live order-3 block is back in the buddy"
    );
    set_cpu(1);
    sim.free(b, 3);
    set_cpu(0);
    sim.pa.drain_all_pages(None);
    assert_eq!(sim.pa.zone_pcp_counts(dma), (0, 0));
    assert_eq!(sim.pa.nr_free_pages(), free0);
    assert_eq!(sim.pa.nr_free_pages(), buddy_pages(&sim));
}

#[test]
fn drains_from_another_thread_race_with_the_fast_paths_safely() {
    let sim = machine(3);
    let dma = sim.zone(0, ZONE_DMA);
    let free0 = sim.pa.nr_free_pages();
    let pa = sim.pa;
    std::thread::scope(|s| {
        for cpu in 1..3 {
            s.spawn(move || {
                set_cpu(cpu);
                let mut live = Vec::new();
                for i in 0..20_000usize {
                    let order = [0, 0, 0, 1, 3][i % 5];
                    let p = pa.alloc_pages(GFP_KERNEL, order).expect("room");
                    live.push((p, order));
                    if live.len() > 40 {
                        for (p, o) in live.drain(..) {
                            pa.__free_pages(p, o);
                        }
                    }
                }
                for (p, o) in live {
                    pa.__free_pages(p, o);
                }
            });
        }
        // CPU 0 keeps draining everyone's lists meanwhile.
        s.spawn(move || {
            set_cpu(0);
            for _ in 0..2_000 {
                pa.drain_all_pages(None);
            }
        });
    });
    sim.pa.drain_all_pages(None);
    assert_eq!(sim.pa.zone_pcp_counts(dma), (0, 0));
    assert_eq!(sim.pa.nr_free_pages(), free0);
    assert_eq!(sim.pa.nr_free_pages(), buddy_pages(&sim));
    assert_eq!(sim.pa.bad_pages(), 0);
}

#[test]
fn a_page_spoiled_on_a_list_is_reported_and_leaked_when_the_list_gives_it_back() {
    let sim = machine(1);
    let dma = sim.zone(0, ZONE_DMA);
    let p = sim.alloc(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    sim.free(p, 0);
    // Written while it sits on the list (a use after free). Without CONFIG_DEBUG_VM neither
    // the free nor the next allocation checks it: bulkfree_pcp_prepare() does, on the drain.
    sim.page(p)._mapcount.store(0, Ordering::Relaxed);
    take_captured();
    sim.pa.drain_all_pages(None);
    let out = take_captured();
    assert!(
        out.contains(&format!(
            "BUG: Bad page state in process swapper/0  pfn:{:05x}",
            p
        )),
        "{out}"
    );
    assert!(
        out.contains("page dumped because: nonzero mapcount"),
        "{out}"
    );
    assert_eq!(sim.pa.bad_pages(), 1);
    // Leaked: off the list, not in the buddy, not counted free anywhere.
    assert_eq!(sim.pa.pcp_state(dma, 0).unwrap().0, 0);
    assert_eq!(sim.pa.nr_free_pages(), buddy_pages(&sim));
    assert!(!sim.page(p).page_buddy());
}

#[test]
fn a_page_spoiled_in_the_buddy_is_reported_and_leaked_by_the_refill() {
    let sim = machine(1);
    let dma = sim.zone(0, ZONE_DMA);
    // The block the next refill takes first: allocate it, note it, give it back.
    let p = sim.alloc(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    sim.free(p, 0);
    sim.pa.drain_all_pages(None);
    sim.page(p).set_flag(PG_SLAB);
    take_captured();
    // check_pcp_refill() catches it as rmqueue_bulk() moves it to the list.
    let q = sim.alloc(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    let out = take_captured();
    assert_ne!(q, p, "the spoiled page is not handed out");
    assert!(
        out.contains(&format!(
            "BUG: Bad page state in process swapper/0  pfn:{:05x}",
            p
        )),
        "{out}"
    );
    assert!(
        out.contains("page dumped because: PAGE_FLAGS_CHECK_AT_PREP flag(s) set"),
        "{out}"
    );
    assert_eq!(sim.pa.bad_pages(), 1);
    sim.free(q, 0);
    sim.pa.drain_all_pages(None);
    assert_eq!(sim.pa.pcp_state(dma, 0).unwrap().0, 0);
    // Leaked: counted neither free nor on a list.
    assert_eq!(sim.pa.nr_free_pages(), buddy_pages(&sim));
    assert!(!sim.page(p).page_buddy());
}
