//! Host tests of KFENCE's core: the pool layout, the metadata and freelist, the sampling
//! gate, the object placement and canaries, the free checks and the fault diagnosis, over
//! a heap buffer with a recording `protect_page`.

extern crate std;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::vec::Vec;

use super::core::*;
use crate::mm::gfp::{GFP_DMA, GFP_KERNEL};
use crate::mm::slub::KmemCache;

const PAGE: usize = 4096;

std::thread_local! {
    /// Protected pages of this thread's pool.
    static PROTECTED: RefCell<BTreeSet<usize>> = const { RefCell::new(BTreeSet::new()) };
    /// The clock, in ns.
    static NOW: RefCell<u64> = const { RefCell::new(0) };
}

fn protect_page(addr: usize, protect: bool) -> bool {
    assert_eq!(addr % PAGE, 0, "protect_page of an unaligned address");
    PROTECTED.with(|p| {
        if protect {
            p.borrow_mut().insert(addr)
        } else {
            p.borrow_mut().remove(&addr)
        }
    });
    true
}

fn protected(addr: usize) -> bool {
    PROTECTED.with(|p| p.borrow().contains(&(addr & !(PAGE - 1))))
}

fn stack_trace_save(entries: &mut [u64], _skip: usize) -> usize {
    entries[0] = 0x1234;
    entries[1] = 0x5678;
    2
}

fn clock() -> u64 {
    NOW.with(|n| *n.borrow())
}

fn advance_ms(ms: u64) {
    NOW.with(|n| *n.borrow_mut() += ms * 1_000_000);
}

fn env() -> KfenceEnv {
    KfenceEnv {
        protect_page,
        stack_trace_save,
        clock,
        counter: clock,
        counter_freq: 1_000_000_000,
        cpu: || 1,
        set_slab: None,
        print_info: || {},
    }
}

/// A pool of `n` objects in a leaked, page-aligned heap buffer, its metadata, and a
/// kmalloc-64-like cache.
struct Setup {
    kfence: Kfence<'static>,
    cache: &'static KmemCache,
}

fn setup(n: usize, burst: u32) -> Setup {
    PROTECTED.with(|p| p.borrow_mut().clear());
    NOW.with(|t| *t.borrow_mut() = 1_000_000_000);
    let buf: &'static mut [u8] = Vec::leak(std::vec![0u8; kfence_pool_size(n) + PAGE]);
    let pool = (buf.as_mut_ptr() as usize).next_multiple_of(PAGE) as *mut u8;
    let meta: &'static [KfenceMetadata] =
        Vec::leak((0..n).map(|_| KfenceMetadata::new()).collect());
    let params = KfenceParams {
        sample_interval: 100,
        num_objects: n,
        burst,
    };
    // SAFETY: a page-aligned leaked buffer of the pool's size, nobody else's.
    let kfence = unsafe { Kfence::new(pool, meta, env(), params, 0x9e37_79b9_7f4a_7c15) };
    let cache: &'static KmemCache = std::boxed::Box::leak(std::boxed::Box::new(KmemCache::new(
        "kmalloc-64",
        64,
        8,
        None,
        1,
    )));
    Setup { kfence, cache }
}

#[test]
fn pool_layout_and_guard_pages() {
    let s = setup(4, 0);
    let k = &s.kfence;
    assert_eq!(
        kfence_pool_size(255),
        2 * 1024 * 1024,
        "Linux's 2 MiB for 255 objects"
    );
    assert_eq!(k.pool_size(), 10 * PAGE);
    assert!(!k.enabled());
    assert!(k.kfence_init_pool());
    assert!(k.enabled());
    let pool = k.pool();
    // Pages 0, 1 and every odd page are guards; the object pages 2, 4, 6, 8 are mapped.
    let guards: Vec<usize> = (0..10).filter(|&i| protected(pool + i * PAGE)).collect();
    assert_eq!(guards, [0, 1, 3, 5, 7, 9]);
    for i in 0..4 {
        assert_eq!(k.metadata_to_pageaddr(i), pool + (2 + 2 * i) * PAGE);
        assert_eq!(k.addr_to_metadata(pool + (2 + 2 * i) * PAGE + 17), Some(i));
        // An object's right guard belongs to it.
        assert_eq!(k.addr_to_metadata(pool + (3 + 2 * i) * PAGE), Some(i));
    }
    assert_eq!(k.addr_to_metadata(pool), None);
    assert_eq!(k.addr_to_metadata(pool + PAGE), None);
    assert!(k.is_kfence_address(pool) && k.is_kfence_address(pool + 10 * PAGE - 1));
    assert!(!k.is_kfence_address(pool - 1) && !k.is_kfence_address(pool + 10 * PAGE));
    assert_eq!(k.nr_free(), 4);
}

#[test]
fn objects_sit_next_to_a_guard_with_canaries_around() {
    let s = setup(8, u32::MAX);
    let k = &s.kfence;
    assert!(k.kfence_init_pool());
    let (mut left, mut right) = (0, 0);
    for size in [1usize, 13, 64, 100, 4096] {
        let p = k.__kfence_alloc(s.cache, size, GFP_KERNEL) as usize;
        assert!(k.is_kfence_address(p), "size {} sampled", size);
        let page = p & !(PAGE - 1);
        assert!(!protected(page), "an object's page is mapped");
        if p == page {
            left += 1;
        } else {
            right += 1;
            // Right-aligned: as close to the guard as the cache's alignment allows.
            assert!(p.is_multiple_of(8));
            assert!(
                page + PAGE - (p + size) < 8,
                "size {} ends at the guard",
                size
            );
        }
        assert!(
            protected(page + PAGE),
            "the guard to the right is protected"
        );
        // SAFETY: the object's page is host memory of the leaked pool.
        let bytes = unsafe { std::slice::from_raw_parts(page as *const u8, PAGE) };
        for (i, &b) in bytes.iter().enumerate() {
            let a = page + i;
            if a < p || a >= p + size {
                assert_eq!(b, kfence_canary_pattern(a), "canary at +{:#x}", i);
            }
        }
        assert_eq!(k.kfence_ksize(p as *const u8 as usize), size);
        let m = k.metadata(k.addr_to_metadata(p).unwrap()).lock.lock();
        assert_eq!(m.state, KfenceObjectState::Allocated);
        assert_eq!((m.addr, m.size, m.cache), (p, size, s.cache as *const _));
        assert_eq!(m.alloc_track.stack(), [0x1234, 0x5678]);
        assert_eq!(
            (m.alloc_track.cpu, m.alloc_track.ts_nsec),
            (1, 1_000_000_000)
        );
    }
    assert!(
        left > 0 && right > 0,
        "both sides used ({} left, {} right)",
        left,
        right
    );
    assert_eq!(
        k.counters
            .allocated
            .load(core::sync::atomic::Ordering::Relaxed),
        5
    );
}

#[test]
fn incompatible_allocations_are_not_sampled() {
    let s = setup(2, u32::MAX);
    let k = &s.kfence;
    assert!(
        k.__kfence_alloc(s.cache, 8, GFP_KERNEL).is_null(),
        "not before init"
    );
    assert!(k.kfence_init_pool());
    assert!(k.__kfence_alloc(s.cache, PAGE + 1, GFP_KERNEL).is_null());
    assert!(k.__kfence_alloc(s.cache, 8, GFP_DMA).is_null());
    assert!(!k.__kfence_alloc(s.cache, 8, GFP_KERNEL).is_null());
    assert!(!k.__kfence_alloc(s.cache, 8, GFP_KERNEL).is_null());
    assert!(
        k.__kfence_alloc(s.cache, 8, GFP_KERNEL).is_null(),
        "the pool is full"
    );
    let c = &k.counters;
    assert_eq!(
        c.skip_incompat.load(core::sync::atomic::Ordering::Relaxed),
        2
    );
    assert_eq!(
        c.skip_capacity.load(core::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn the_gate_samples_one_allocation_per_interval_plus_the_burst() {
    let s = setup(16, 2);
    let k = &s.kfence;
    assert!(k.kfence_init_pool());
    let sampled = |n: usize| {
        (0..n)
            .filter(|_| !k.__kfence_alloc(s.cache, 32, GFP_KERNEL).is_null())
            .count()
    };
    // The first allocation opens the gate: it and the 2 of the burst are sampled.
    assert_eq!(sampled(10), 3);
    advance_ms(99);
    assert_eq!(sampled(10), 0, "the interval (100 ms) has not passed");
    advance_ms(1);
    assert_eq!(sampled(10), 3);
}

#[test]
fn free_protects_the_page_and_reuses_objects_in_lru_order() {
    let s = setup(3, u32::MAX);
    let k = &s.kfence;
    assert!(k.kfence_init_pool());
    let a = k.__kfence_alloc(s.cache, 40, GFP_KERNEL) as usize;
    let ia = k.addr_to_metadata(a).unwrap();
    assert!(k.kfence_free(a, true));
    assert!(protected(a), "a freed object's page is protected");
    {
        let m = k.metadata(ia).lock.lock();
        assert_eq!(m.state, KfenceObjectState::Freed);
        assert_eq!(m.free_track.stack(), [0x1234, 0x5678]);
    }
    // The freed object went to the tail: the next two allocations take the others.
    let b = k.__kfence_alloc(s.cache, 40, GFP_KERNEL) as usize;
    let c = k.__kfence_alloc(s.cache, 40, GFP_KERNEL) as usize;
    let (ib, ic) = (
        k.addr_to_metadata(b).unwrap(),
        k.addr_to_metadata(c).unwrap(),
    );
    assert!(ib != ia && ic != ia && ib != ic);
    let d = k.__kfence_alloc(s.cache, 40, GFP_KERNEL) as usize;
    assert_eq!(
        k.addr_to_metadata(d),
        Some(ia),
        "the freed object comes back last"
    );
    assert!(!protected(d), "and its page is mapped again");
    assert!(
        !k.kfence_free(k.pool() + 5, false),
        "the leading guards hold no object"
    );
    assert_eq!(
        k.counters.bugs.load(core::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn double_and_invalid_frees_are_reported_and_ignored() {
    let s = setup(2, u32::MAX);
    let k = &s.kfence;
    assert!(k.kfence_init_pool());
    let a = k.__kfence_alloc(s.cache, 24, GFP_KERNEL) as usize;
    // A pointer inside the object is no object's start.
    assert!(k.kfence_free(a + 1, false), "KFENCE handles it");
    assert_eq!(
        k.counters.bugs.load(core::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        k.metadata(k.addr_to_metadata(a).unwrap()).lock.lock().state,
        KfenceObjectState::Allocated,
        "an invalid free frees nothing"
    );
    assert!(k.kfence_free(a, false));
    assert!(k.kfence_free(a, false), "a double free is KFENCE's too");
    assert_eq!(
        k.counters.bugs.load(core::sync::atomic::Ordering::Relaxed),
        2
    );
    assert_eq!(k.nr_free(), 2, "the object is on the freelist once");
}

#[test]
fn a_write_past_the_object_is_found_on_free() {
    let s = setup(4, u32::MAX);
    let k = &s.kfence;
    assert!(k.kfence_init_pool());
    // Find a left-aligned object: its right side is canary bytes.
    let p = loop {
        let p = k.__kfence_alloc(s.cache, 30, GFP_KERNEL) as usize;
        assert_ne!(p, 0, "no left-aligned object in the pool");
        if p.is_multiple_of(PAGE) {
            break p;
        }
    };
    // SAFETY: inside the object's page, a canary byte of the host pool.
    unsafe { *((p + 30) as *mut u8) = 0x42 };
    let bugs = k.counters.bugs.load(core::sync::atomic::Ordering::Relaxed);
    assert!(k.kfence_free(p, false));
    assert_eq!(
        k.counters.bugs.load(core::sync::atomic::Ordering::Relaxed),
        bugs + 1,
        "the corrupted canary is one bug"
    );
}

#[test]
fn faults_are_diagnosed_as_out_of_bounds_or_use_after_free() {
    let s = setup(4, u32::MAX);
    let k = &s.kfence;
    assert!(k.kfence_init_pool());
    let pool = k.pool();
    let a = k.__kfence_alloc(s.cache, 64, GFP_KERNEL) as usize;
    let ia = k.addr_to_metadata(a).unwrap();
    let page = k.metadata_to_pageaddr(ia);
    // The guard to the right of the object is its overflow.
    assert_eq!(
        k.classify_fault(page + PAGE),
        (KfenceErrorType::Oob, Some(ia))
    );
    // The guard to the left is the previous object's guard: with that object unused, it
    // is this object's underflow.
    assert_eq!(k.classify_fault(page - 1), (KfenceErrorType::Oob, Some(ia)));
    // The leading guard page 0 names no object.
    assert_eq!(k.classify_fault(pool), (KfenceErrorType::Invalid, None));
    // The fault report unprotects the page and records it, to protect it again on free.
    assert!(k.kfence_handle_page_fault(page + PAGE, true, &[0x1]));
    assert!(!protected(page + PAGE));
    assert!(k.kfence_free(a, false));
    assert!(
        protected(page + PAGE),
        "the unprotected guard is protected again on free"
    );
    assert!(protected(page), "and the freed object's page");
    assert_eq!(k.classify_fault(a), (KfenceErrorType::Uaf, Some(ia)));
    assert!(k.kfence_handle_page_fault(a, false, &[0x1]));
    assert!(!protected(a), "the access after free proceeds");
    assert!(
        !k.kfence_handle_page_fault(pool + 10 * PAGE, false, &[0x1]),
        "not KFENCE's"
    );
}

// ---------------------------------------------------------------------------------------------
// KFENCE on a SLUB instance: the slab paths' hooks.

use crate::mm::slub::{SlabPageSource, SlubParams};
use crate::mm::testing::{SimPages, SlubMachine};

std::thread_local! {
    /// The page source of this thread's machine, for set_slab.
    static SOURCE: RefCell<Option<&'static SimPages>> = const { RefCell::new(None) };
}

fn sim_set_slab(addr: usize, cache: *const KmemCache) {
    SOURCE.with(|s| {
        let src = s.borrow().expect("a machine");
        let page = src.virt_to_page(addr as *const u8).expect("a pool page");
        // SAFETY: the struct page of a pool page, seen through its slab overlay.
        unsafe { (*page.as_ptr().cast::<crate::mm::slub::Slab>()).set_kfence_slab(cache) };
    });
}

/// A SLUB machine (init_on_free as asked) with a 48-byte cache, and KFENCE over a pool of
/// 3 objects taken from its pages, sampling every allocation.
fn slub_with_kfence(
    init_on_free: bool,
) -> (SlubMachine, &'static Kfence<'static>, &'static KmemCache) {
    PROTECTED.with(|p| p.borrow_mut().clear());
    let mut p = SlubParams::new(1, 1, 0x1234_5678);
    p.kmalloc_min_size = 8;
    p.init_on_free = init_on_free;
    let m = SlubMachine::with_params(64, p);
    SOURCE.with(|s| *s.borrow_mut() = Some(m.pages));
    // Made before KFENCE is on: creating a cache allocates (its kmem_cache, its node).
    let s = m
        .slub
        .kmem_cache_create("kfence_test", 48, 8, 0, None)
        .expect("a cache") as *const KmemCache;
    // 3 objects: 8 pages, an order-3 block.
    let block = m.pages.alloc_pages(GFP_KERNEL, 3, 0).expect("8 pages");
    let pool = m.pages.page_address(block);
    let meta: &'static [KfenceMetadata] =
        Vec::leak((0..3).map(|_| KfenceMetadata::new()).collect());
    let mut e = env();
    e.set_slab = Some(sim_set_slab);
    let params = KfenceParams {
        sample_interval: 1,
        num_objects: 3,
        burst: u32::MAX,
    };
    // SAFETY: an order-3 block of the machine's pages, ours for good.
    let k: &'static Kfence<'static> = std::boxed::Box::leak(std::boxed::Box::new(unsafe {
        Kfence::new(pool, meta, e, params, 7)
    }));
    assert!(k.kfence_init_pool());
    m.slub.set_kfence(k);
    // SAFETY: the cache lives as long as the (never destroyed) machine's allocator.
    (m, k, unsafe { &*s })
}

#[test]
fn kmalloc_kfree_ksize_and_krealloc_go_through_kfence() {
    let (m, k, _) = slub_with_kfence(false);
    let p = m.slub.kmalloc(40, GFP_KERNEL);
    assert!(k.is_kfence_address(p as usize), "kmalloc was sampled");
    assert!(m.slub.is_kfence_address(p));
    assert_eq!(
        m.slub.ksize(p),
        40,
        "ksize is the object's size, not the cache's"
    );
    // SAFETY: a live 40-byte object.
    unsafe { core::ptr::write_bytes(p, 0x11, 40) };
    // Shrinking stays in place; growing moves to a new object and frees the old one.
    // SAFETY: `p` is live.
    let q = unsafe { m.slub.krealloc(p, 30, GFP_KERNEL) };
    assert_eq!(q, p);
    // SAFETY: `q` is live.
    let r = unsafe { m.slub.krealloc(q, 100, GFP_KERNEL) };
    assert!(k.is_kfence_address(r as usize) && r != q);
    // SAFETY: `r` holds the 30 bytes krealloc copied.
    assert!(unsafe { std::slice::from_raw_parts(r, 30) }
        .iter()
        .all(|&b| b == 0x11));
    let iq = k.addr_to_metadata(q as usize).unwrap();
    assert_eq!(k.metadata(iq).lock.lock().state, KfenceObjectState::Freed);
    assert!(protected(q as usize), "the old object's page is protected");
    // kfree of a KFENCE object goes back to KFENCE, not to a slab freelist.
    // SAFETY: `r` is live.
    unsafe { m.slub.kfree(r) };
    assert_eq!(k.nr_free(), 3);
    // A double kfree is KFENCE's report, and SLUB is untouched.
    let bugs = k.counters.bugs.load(core::sync::atomic::Ordering::Relaxed);
    // SAFETY: deliberately a double free; KFENCE reports and ignores it.
    unsafe { m.slub.kfree(r) };
    assert_eq!(
        k.counters.bugs.load(core::sync::atomic::Ordering::Relaxed),
        bugs + 1
    );
    assert_eq!(k.nr_free(), 3);
}

#[test]
fn kmem_cache_objects_and_init_on_free() {
    let (m, k, s) = slub_with_kfence(true);
    let p = m.slub.kmem_cache_alloc(s, GFP_KERNEL);
    let i = k.addr_to_metadata(p as usize).expect("sampled");
    assert_eq!(k.metadata(i).lock.lock().cache, s as *const _);
    // SAFETY: a live 48-byte object.
    unsafe { core::ptr::write_bytes(p, 0x22, 48) };
    // SAFETY: a live object of `s`.
    unsafe { m.slub.kmem_cache_free(s, p) };
    // init_on_free zeroed the 48 bytes, and not the canaries beyond them.
    // SAFETY: the object's page, host memory.
    let page = unsafe { std::slice::from_raw_parts((p as usize & !(PAGE - 1)) as *const u8, PAGE) };
    let off = p as usize % PAGE;
    assert!(page[off..off + 48].iter().all(|&b| b == 0));
    for (j, &b) in page
        .iter()
        .enumerate()
        .filter(|&(j, _)| j < off || j >= off + 48)
    {
        assert_eq!(b, kfence_canary_pattern((p as usize & !(PAGE - 1)) + j));
    }
    assert_eq!(k.metadata(i).lock.lock().state, KfenceObjectState::Freed);
    assert_eq!(
        k.counters.bugs.load(core::sync::atomic::Ordering::Relaxed),
        0
    );
}
