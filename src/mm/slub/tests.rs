//! Host unit tests of `src/mm/slub.rs` (`cargo hosttest`), on the shared scaffold
//! `mm::testing` (simulated RAM and a machine builder).

use super::*;
use crate::kernel::printk::take_captured;
use crate::mm::gfp::GFP_KERNEL;
use crate::mm::slab::SLAB_NO_MERGE;
use crate::mm::testing::{__pa, set_cpu, Backing, Machine, SlubMachine};

/// A cache with a constructor: every new object is constructed, the free pointer is kept
/// out of the object, and the cache never merges.
#[test]
fn constructor_cache() {
    fn ctor(p: *mut u8) {
        // SAFETY: SLUB passes an object of 48 bytes.
        unsafe {
            for i in 0..48 {
                *p.add(i) = 0x5c ^ i as u8;
            }
        }
    }
    let m = SlubMachine::small();
    let s = m
        .slub
        .kmem_cache_create("ctor_cache", 48, 0, 0, Some(ctor))
        .unwrap();
    assert!(s.offset >= 48, "free pointer outside the object");
    let t = m
        .slub
        .kmem_cache_create("ctor_cache2", 48, 0, 0, Some(ctor))
        .unwrap();
    assert!(!ptr::eq(s, t));
    let objs: Vec<*mut u8> = (0..300)
        .map(|_| m.slub.kmem_cache_alloc(s, GFP_KERNEL))
        .collect();
    for &p in &objs {
        for i in 0..48 {
            // SAFETY: a live object.
            assert_eq!(unsafe { *p.add(i) }, 0x5c ^ i as u8);
        }
    }
    // Objects come back as the user left them (constructed state, Linux's contract).
    for &p in &objs {
        // SAFETY: live.
        unsafe { m.slub.kmem_cache_free(s, p) };
    }
    let p = m.slub.kmem_cache_alloc(s, GFP_KERNEL);
    // SAFETY: live.
    assert_eq!(unsafe { *p.add(1) }, 0x5c ^ 1);
    // SAFETY: ours.
    unsafe {
        m.slub.kmem_cache_free(s, p);
        m.slub.kmem_cache_destroy(s);
        m.slub.kmem_cache_destroy(t);
    }
    assert!(!take_captured().contains("still has objects"));
}

/// Stress: many thousands of objects across every kmalloc class (and large kmalloc),
/// each filled with a pattern, checked, freed in a scrambled order; afterwards every
/// slab page is back (after kmem_cache_shrink, which returns the min_partial slabs).
fn stress(m: &SlubMachine, rounds: usize) {
    m.shrink_all();
    let base = m.pages.pages_out();
    let mut sizes: Vec<usize> = Vec::new();
    let mut x = 0x9e37_79b9u64;
    let mut objs: Vec<(*mut u8, usize, u8)> = Vec::new();
    for round in 0..rounds {
        for i in 0..4000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let size = match i % 50 {
                0 => 8193 + (x as usize % 40000),
                _ => 1 + (x as usize % 8192),
            };
            sizes.push(size);
            let p = m.slub.kmalloc(size, GFP_KERNEL);
            assert!(!p.is_null(), "kmalloc({size}) failed");
            assert!(m.slub.ksize(p) >= size);
            let pat = (x >> 24) as u8;
            // SAFETY: `size` bytes just allocated.
            unsafe { ptr::write_bytes(p, pat, size) };
            objs.push((p, size, pat));
        }
        // Free every other one, in a scrambled order.
        let mut keep = Vec::new();
        for (k, o) in objs.drain(..).enumerate() {
            if (k + round) % 3 == 0 {
                keep.push(o);
            } else {
                // SAFETY: live; check the pattern first.
                unsafe {
                    assert!(core::slice::from_raw_parts(o.0, o.1)
                        .iter()
                        .all(|&b| b == o.2));
                    m.slub.kfree(o.0);
                }
            }
        }
        objs = keep;
    }
    for (p, size, pat) in objs {
        // SAFETY: live.
        unsafe {
            assert!(core::slice::from_raw_parts(p, size)
                .iter()
                .all(|&b| b == pat));
            m.slub.kfree(p);
        }
    }
    m.shrink_all();
    assert_eq!(m.pages.pages_out(), base, "slab pages not returned");
    assert!(sizes.len() >= 4000 * rounds);
}

#[test]
fn stress_all_kmalloc_classes() {
    let m = SlubMachine::small();
    stress(&m, 4);
    // The arm64 6.1 classes, too.
    let m = SlubMachine::with_params(64, SlubParams::new(2, 1, 5));
    stress(&m, 2);
    assert_eq!(m.slub.slab_errors(), 0);
}

/// The same stress with every debug feature on: no false reports, pages all back.
#[test]
fn stress_with_slub_debug() {
    let mut p = SlubParams::new(1, 1, 9).with_slub_debug(None);
    p.kmalloc_min_size = 8;
    assert_eq!(p.slub_debug, DEBUG_DEFAULT_FLAGS);
    let m = SlubMachine::with_params(256, p);
    let k64 = m.slub.find_cache("kmalloc-64").unwrap();
    assert_eq!(k64.flags & DEBUG_DEFAULT_FLAGS, DEBUG_DEFAULT_FLAGS);
    assert!(
        m.slub.find_cache("kmem_cache").unwrap().flags & SLAB_RED_ZONE == 0,
        "SLAB_NO_USER_FLAGS"
    );
    stress(&m, 1);
    assert_eq!(m.slub.slab_errors(), 0, "{}", take_captured());
}

/// Several CPUs allocating and freeing at once (one thread per CPU), objects crossing CPUs.
#[test]
fn concurrent_cpus() {
    let mut p = SlubParams::new(4, 2, 11);
    p.kmalloc_min_size = 8;
    let m = SlubMachine::with_params(64, p);
    m.shrink_all();
    let base = m.pages.pages_out();
    let slub: &SlubAllocator = &m.slub;
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    std::thread::scope(|t| {
        for cpu in 0..4 {
            let tx = tx.clone();
            t.spawn(move || {
                set_cpu(cpu);
                let mut v = Vec::new();
                for i in 0..20000 {
                    let size = 8 + (i * 37 + cpu * 11) % 600;
                    let p = slub.kmalloc(size, GFP_KERNEL);
                    // SAFETY: fresh.
                    unsafe { ptr::write_bytes(p, cpu as u8, size) };
                    v.push((p, size));
                    if v.len() > 300 {
                        let (q, n) = v.swap_remove(i % v.len());
                        if i % 2 == 0 {
                            tx.send(q as usize | (n << 48)).unwrap();
                        } else {
                            // SAFETY: live.
                            unsafe { slub.kfree(q) };
                        }
                    }
                }
                for (q, _) in v {
                    // SAFETY: live.
                    unsafe { slub.kfree(q) };
                }
            });
        }
        drop(tx);
        // A fifth thread frees what the others hand over (remote frees).
        t.spawn(move || {
            set_cpu(3);
            for x in rx {
                let p = (x & ((1 << 48) - 1)) as *mut u8;
                // SAFETY: live, handed over.
                unsafe { slub.kfree(p) };
            }
        });
    });
    m.shrink_all();
    assert_eq!(m.pages.pages_out(), base);
    for name in ["kmalloc-8", "kmalloc-512", "kmalloc-1k"] {
        let s = m.slub.find_cache(name).unwrap();
        m.slub.validate_slab_cache(s);
    }
    assert_eq!(m.slub.slab_errors(), 0);
}

/// Per-node structures, kmalloc_node and node-local slabs.
#[test]
fn numa_nodes() {
    let mut p = SlubParams::new(2, 2, 13);
    p.kmalloc_min_size = 8;
    let m = SlubMachine::with_params(32, p);
    let s = m.slub.find_cache("kmalloc-64").unwrap();
    assert_eq!(s.nodes().count(), 2);
    for nid in [0, 1, 0, 1] {
        let objs: Vec<*mut u8> = (0..200)
            .map(|_| m.slub.kmalloc_node(64, GFP_KERNEL, nid))
            .collect();
        for &o in &objs {
            assert_eq!(m.pages.nid_of(o), nid);
        }
        for o in objs {
            // SAFETY: live.
            unsafe { m.slub.kfree(o) };
        }
    }
    set_cpu(1);
    let o = m.slub.kmalloc(64, GFP_KERNEL);
    assert_eq!(m.pages.nid_of(o), 1, "CPU 1 is on node 1");
    // SAFETY: live.
    unsafe { m.slub.kfree(o) };
    set_cpu(0);
}

/// With SLAB_FREELIST_RANDOM the objects of a new slab come in a shuffled order; without,
/// in address order.
#[test]
fn freelist_shuffle() {
    let mut p = SlubParams::new(1, 1, 21);
    p.kmalloc_min_size = 8;
    let m = SlubMachine::with_params(16, p);
    let s = m
        .slub
        .kmem_cache_create("shuffled", 64, 0, SLAB_NO_MERGE, None)
        .unwrap();
    let objs: Vec<usize> = (0..64)
        .map(|_| m.slub.kmem_cache_alloc(s, GFP_KERNEL) as usize)
        .collect();
    let mut sorted = objs.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 64);
    assert_ne!(objs, sorted, "shuffled");
    p.freelist_random = false;
    let m = SlubMachine::with_params(16, p);
    let s = m
        .slub
        .kmem_cache_create("ordered", 64, 0, SLAB_NO_MERGE, None)
        .unwrap();
    let objs: Vec<usize> = (0..64)
        .map(|_| m.slub.kmem_cache_alloc(s, GFP_KERNEL) as usize)
        .collect();
    assert!(objs.windows(2).all(|w| w[1] == w[0] + 64));
}

/// The hardened free pointer: the stored word is neither the pointer nor zero for NULL.
#[test]
fn hardened_freepointer() {
    let m = SlubMachine::small();
    let s = m
        .slub
        .kmem_cache_create("hardened", 64, 0, SLAB_NO_MERGE, None)
        .unwrap();
    let a = m.slub.kmem_cache_alloc(s, GFP_KERNEL);
    let b = m.slub.kmem_cache_alloc(s, GFP_KERNEL);
    // SAFETY: ours; then reading the stored word of a free object.
    unsafe {
        m.slub.kmem_cache_free(s, a);
        m.slub.kmem_cache_free(s, b);
        let raw = ptr::read(b.add(s.offset as usize).cast::<usize>());
        assert_ne!(raw, a as usize);
        assert_eq!(get_freepointer(s, b), a);
    }
    assert_ne!(s.random, 0);
}

/// SLUB over the buddy, as mm_init() brings it up on the kernel: slabs are pages the zone
/// hands out (PG_slab, in RAM), and go back to it when emptied and shrunk.
#[test]
fn slabs_come_from_the_buddy() {
    let m = Machine::fdt(&[(0x4000_0000, 32 << 20, None)], &[None, None], &[])
        .backed(Backing::Full)
        .buddy()
        .slub(SlubParams::new(2, 1, 9));
    let free = m.pages.nr_free_pages();
    let s = m
        .slub
        .kmem_cache_create("buddy_test", 1000, 0, SLAB_NO_MERGE, None)
        .unwrap();
    let objs: Vec<*mut u8> = (0..100)
        .map(|_| m.slub.kmem_cache_alloc(s, GFP_KERNEL))
        .collect();
    // 100 objects of 1000 bytes: at least 25 pages left the free lists.
    assert!(m.pages.nr_free_pages() + 25 <= free);
    // Each object lies in simulated RAM, on a head page the buddy handed out.
    let slab_pages: Vec<_> = objs
        .iter()
        .map(|&p| {
            assert!(!p.is_null());
            assert!((0x4000_0000..0x4200_0000).contains(&__pa(p).0));
            m.slub.virt_to_head_page(p).unwrap()
        })
        .collect();
    let is_slab = |p: &NonNull<Page>| {
        // SAFETY: a page of the machine's memmap, which lives forever.
        unsafe { p.as_ref() }.flags.load(Ordering::Relaxed) & (1 << PG_SLAB) != 0
    };
    assert!(slab_pages.iter().all(is_slab));
    for p in objs {
        // SAFETY: live.
        unsafe { m.slub.kmem_cache_free(s, p) };
    }
    assert_eq!(m.slub.kmem_cache_shrink(s), 0);
    assert!(!slab_pages.iter().any(is_slab));
}
