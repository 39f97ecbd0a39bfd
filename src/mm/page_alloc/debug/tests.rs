//! Host unit tests of the debugging hooks in `src/mm/page_alloc/debug.rs`: with hooks set,
//! every way a block enters the buddy unmaps it (after init_on_free zeroed it) and every
//! way out maps it again and sets its owner; with none set, nothing is called.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::*;
use crate::mm::gfp::GFP_KERNEL;
use crate::mm::page_alloc::tests::{two_banks, DMA_MOVABLE};
use crate::mm::page_alloc::MemInit;
use crate::mm::testing::{__va, Backing, Machine, UpToBuddy};
use crate::mm::PAGE_SIZE;

/// What the hooks saw, per test thread (the hooks are plain fns; each test runs on its own
/// thread and sets its own allocator's hooks).
#[derive(Default)]
struct Seen {
    /// pfn -> mapped? (absent: never touched, mapped as at boot)
    mapped: BTreeMap<u64, bool>,
    /// pfn -> (order, gfp) of the allocation that owns it; removed on free.
    owners: BTreeMap<u64, (u32, GfpT)>,
    /// Unmaps of pages that were not zero while init_on_free was on.
    dirty_unmaps: u64,
    check_zero: bool,
}

thread_local! {
    static SEEN: RefCell<Seen> = RefCell::new(Seen::default());
}

fn map_pages(pfn: Pfn, n: u64, enable: bool) {
    SEEN.with(|s| {
        let mut s = s.borrow_mut();
        for p in pfn.0..pfn.0 + n {
            if !enable && s.check_zero {
                let va = __va(Pfn(p).phys());
                // SAFETY: a page of the simulated RAM being freed, still ours.
                let page = unsafe { core::slice::from_raw_parts(va, PAGE_SIZE as usize) };
                if page.iter().any(|&b| b != 0) {
                    s.dirty_unmaps += 1;
                }
            }
            let was = s.mapped.insert(p, enable).unwrap_or(true);
            assert_ne!(was, enable, "pfn {p:#x} mapped={enable} twice");
        }
    });
}

fn set_owner(pfn: Pfn, order: u32, gfp: GfpT) {
    SEEN.with(|s| {
        let mut s = s.borrow_mut();
        for p in pfn.0..pfn.0 + (1 << order) {
            assert!(
                s.owners.insert(p, (order, gfp)).is_none(),
                "pfn {p:#x} owned twice"
            );
        }
    });
}

fn reset_owner(pfn: Pfn, order: u32) {
    SEEN.with(|s| {
        let mut s = s.borrow_mut();
        for p in pfn.0..pfn.0 + (1 << order) {
            // Pages freed at boot were never allocated through the hooks.
            s.owners.remove(&p);
        }
    });
}

fn hooks() -> PageDebugHooks {
    PageDebugHooks {
        kernel_map_pages: Some(map_pages),
        set_page_owner: Some(set_owner),
        reset_page_owner: Some(reset_owner),
        dump_page_owner: None,
    }
}

/// The DMA zone of [`two_banks`] one MAX_ORDER block, memory not yet in the buddy.
fn machine() -> UpToBuddy {
    Machine::from_dtb(&two_banks())
        .backed(Backing::Full)
        .zone_limits([0x40400, 0x40400, 0x50200, 0])
        .buddy()
}

fn unmapped() -> u64 {
    SEEN.with(|s| s.borrow().mapped.values().filter(|&&m| !m).count() as u64)
}

fn is_mapped(pfn: u64) -> bool {
    SEEN.with(|s| *s.borrow().mapped.get(&pfn).unwrap_or(&true))
}

#[test]
fn every_free_page_is_unmapped_and_every_allocated_one_mapped_and_owned() {
    let mut sim = machine();
    sim.pa.set_page_debug(hooks());
    assert!(sim.pa.debug_pagealloc_enabled());
    let freed = sim.free_all();
    assert!(freed > 0);
    assert_eq!(
        unmapped(),
        freed,
        "every page memblock_free_all() gave is unmapped"
    );
    let mut held = Vec::new();
    for (i, order) in [0u32, 0, 1, 3, 0, 2, 9, 0, 5].into_iter().enumerate() {
        let gfp = if i % 2 == 0 { DMA_MOVABLE } else { GFP_KERNEL };
        let page = sim
            .pa
            .alloc_pages(gfp, order)
            .unwrap_or_else(|| panic!("order {order} {gfp:#x}"));
        let pfn = sim.pa.page_to_pfn(page.as_ptr()).0;
        for p in pfn..pfn + (1 << order) {
            assert!(
                is_mapped(p),
                "order {order}: pfn {p:#x} handed out unmapped"
            );
            let owner = SEEN.with(|s| s.borrow().owners.get(&p).copied());
            assert_eq!(owner, Some((order, gfp)), "pfn {p:#x}");
        }
        held.push((page, order));
    }
    let allocated: u64 = held.iter().map(|(_, o)| 1u64 << o).sum();
    assert_eq!(unmapped(), freed - allocated);
    for (page, order) in held {
        let pfn = sim.pa.page_to_pfn(page.as_ptr()).0;
        sim.pa.__free_pages(page, order);
        assert!(
            (pfn..pfn + (1 << order)).all(|p| !is_mapped(p)),
            "order {order} freed"
        );
    }
    assert_eq!(unmapped(), freed, "all memory back, all unmapped");
    assert!(SEEN.with(|s| s.borrow().owners.is_empty()), "no owner left");
}

#[test]
fn init_on_free_zeroes_a_block_before_it_is_unmapped() {
    let mut sim = machine();
    sim.pa.set_meminit(MemInit {
        init_on_alloc: false,
        init_on_free: true,
    });
    sim.pa.set_page_debug(hooks());
    SEEN.with(|s| s.borrow_mut().check_zero = true);
    sim.free_all();
    for order in [0u32, 3, 9] {
        let va = sim.pa.__get_free_pages(DMA_MOVABLE, order).unwrap();
        // SAFETY: the block is ours.
        unsafe {
            core::ptr::write_bytes(va.as_mut_ptr::<u8>(), 0xa5, (PAGE_SIZE as usize) << order)
        };
        sim.pa.free_pages(va, order);
    }
    assert_eq!(SEEN.with(|s| s.borrow().dirty_unmaps), 0);
}

#[test]
fn no_hooks_no_calls() {
    let mut sim = machine();
    sim.pa.set_page_debug(PageDebugHooks::default());
    assert!(!sim.pa.page_debug_on() && !sim.pa.debug_pagealloc_enabled());
    sim.free_all();
    let p = sim.pa.alloc_pages(DMA_MOVABLE, 2).unwrap();
    sim.pa.__free_pages(p, 2);
    assert_eq!(SEEN.with(|s| s.borrow().mapped.len()), 0);
    // A free page is not reported when debug_pagealloc is off.
    assert!(!sim.pa.report_free_page_fault(Pfn(0x40000)));
}

#[test]
fn a_fault_on_a_free_page_is_reported_and_one_on_a_live_page_is_not() {
    let mut sim = machine();
    sim.pa.set_page_debug(hooks());
    sim.free_all();
    let page = sim.pa.alloc_pages(DMA_MOVABLE, 0).unwrap();
    let pfn = sim.pa.page_to_pfn(page.as_ptr());
    crate::kernel::printk::take_captured();
    assert!(!sim.pa.report_free_page_fault(pfn), "a live page");
    sim.pa.__free_pages(page, 0);
    assert!(sim.pa.report_free_page_fault(pfn));
    let log = crate::kernel::printk::take_captured();
    assert!(log.contains(&format!("pfn:{:#x}", pfn.0)), "{log}");
    assert!(
        log.contains("page dumped because: debug_pagealloc: access to a free page"),
        "{log}"
    );
    // Outside every zone: not reported.
    assert!(!sim.pa.report_free_page_fault(Pfn(0x10)));
}

#[test]
fn with_debug_pagealloc_the_per_cpu_lists_check_every_free_and_allocation() {
    let mut sim = machine();
    sim.pa.set_page_debug(hooks());
    sim.free_all();
    sim.pa.setup_per_cpu_pageset(1);
    crate::mm::testing::set_cpu(0);
    // free_pcp_prepare() checks the free at once (without debug_pagealloc: on the drain).
    let q = sim.pa.alloc_pages(DMA_MOVABLE, 0).unwrap();
    // SAFETY: a page of the memmap, ours.
    unsafe { q.as_ref() }.set_flag(crate::mm::page::PG_SLAB);
    crate::kernel::printk::take_captured();
    sim.pa.__free_pages(q, 0);
    let log = crate::kernel::printk::take_captured();
    assert!(
        log.contains("page dumped because: PAGE_FLAGS_CHECK_AT_FREE flag set"),
        "{log}"
    );
    assert_eq!(sim.pa.bad_pages(), 1);
    // check_new_pcp() checks a block as it leaves the list: spoiled there, it is leaked and
    // the next one handed out.
    let p = sim.pa.alloc_pages(DMA_MOVABLE, 0).unwrap();
    sim.pa.__free_pages(p, 0);
    // SAFETY: as above; the page sits on this CPU's list.
    unsafe { p.as_ref() }.set_flag(crate::mm::page::PG_SLAB);
    let r = sim.pa.alloc_pages(DMA_MOVABLE, 0).unwrap();
    assert_ne!(r, p, "the spoiled page is not handed out");
    let log = crate::kernel::printk::take_captured();
    assert!(
        log.contains("page dumped because: PAGE_FLAGS_CHECK_AT_PREP flag(s) set"),
        "{log}"
    );
    assert_eq!(sim.pa.bad_pages(), 2);
}
