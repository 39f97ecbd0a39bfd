//! Host unit tests of `src/mm/slub.rs` (`cargo hosttest`), on the shared scaffold
//! `mm::testing` (simulated RAM and a machine builder).

use super::slub_def::TID_STEP;
use super::*;
use crate::kernel::printk::take_captured;
use crate::mm::gfp::GFP_KERNEL;
use crate::mm::slab::SLAB_NO_MERGE;
use crate::mm::testing::{__pa, set_cpu, Backing, Machine, SimPages, SlubMachine};

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
    // Five CPUs: four allocate, the fifth frees what they hand over. Each thread is its own
    // CPU, as in the kernel, where one CPU never runs two contexts at once: the lockless
    // fast paths (like Linux's this_cpu operations) rely on it — two threads acting as one
    // CPU can lose an object between the slow path's read and write of the CPU freelist.
    let mut p = SlubParams::new(5, 2, 11);
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
        // A fifth thread, CPU 4, frees what the others hand over (remote frees).
        t.spawn(move || {
            set_cpu(4);
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

/// The lockless fast paths: every CPU freelist change bumps that CPU's tid by TID_STEP
/// (tids stay `cpu` modulo TID_STEP); a free into the CPU slab goes onto the CPU freelist;
/// a free from another CPU (its own CPU slab is a different one) leaves both CPU slots alone
/// and goes to the slab's own freelist (__slab_free); flush_all empties the slot and bumps
/// the tid too.
#[test]
fn fast_path_tid_and_remote_free() {
    let mut p = SlubParams::new(2, 1, 21);
    p.kmalloc_min_size = 8;
    let m = SlubMachine::with_params(32, p);
    let s = m.slub.find_cache("kmalloc-64").unwrap();
    let (c0, c1) = (s.cpu_slab(0), s.cpu_slab(1));
    let pair = |c: &KmemCacheCpu| {
        (
            c.freelist.load(Ordering::Relaxed),
            c.tid.load(Ordering::Relaxed),
        )
    };
    set_cpu(0);
    let a = m.slub.kmalloc(64, GFP_KERNEL); // May refill the CPU slab (slow path).
    let slab = m.slub.virt_to_slab(a).unwrap() as *const Slab as *mut Slab;
    assert_eq!(c0.slab.load(Ordering::Relaxed), slab);
    let (f0, t0) = pair(c0);
    assert_eq!(t0 % TID_STEP, 0, "CPU 0's tids are 0 mod TID_STEP");
    assert_eq!(c1.tid.load(Ordering::Relaxed) % TID_STEP, 1, "init_tid(1)");
    let b = m.slub.kmalloc(64, GFP_KERNEL); // Fast path: the head of the CPU freelist.
    assert_eq!(b, f0);
    let (f1, t1) = pair(c0);
    // SAFETY: f0 is allocated now; its free pointer slot still holds the next one.
    assert_ne!(f1, f0);
    assert_eq!(t1, next_tid(t0));
    // SAFETY: b is live and in the CPU slab: the fast free pushes it.
    unsafe { m.slub.kfree(b) };
    assert_eq!(pair(c0), (b, next_tid(t1)));
    let b2 = m.slub.kmalloc(64, GFP_KERNEL);
    assert_eq!(b2, b, "LIFO through the CPU freelist");
    let before0 = pair(c0);
    // CPU 1 frees an object of CPU 0's slab: not its CPU slab, so the slow path.
    set_cpu(1);
    let before1 = pair(c1);
    let slab_free_before = m.slub.virt_to_slab(b2).unwrap().freelist();
    // SAFETY: live; freed once.
    unsafe { m.slub.kfree(b2) };
    assert_eq!(
        pair(c0),
        before0,
        "a remote free leaves the owner's slot alone"
    );
    assert_eq!(pair(c1), before1, "and the freeing CPU's slot too");
    let sl = m.slub.virt_to_slab(b2).unwrap();
    assert_eq!(sl.freelist(), b2, "it went to the slab's own freelist");
    // SAFETY: b2 is free on the slab's list now; its free pointer names the old head.
    assert_eq!(unsafe { get_freepointer(s, b2) }, slab_free_before);
    set_cpu(0);
    // flush_all takes the slot (slab first, then the pair, bumped).
    let (_, tf) = pair(c0);
    m.slub.flush_all(s);
    assert!(c0.slab.load(Ordering::Relaxed).is_null());
    assert_eq!(pair(c0), (ptr::null_mut(), next_tid(tf)));
    // SAFETY: live.
    unsafe { m.slub.kfree(a) };
    m.shrink_all();
    m.slub.validate_slab_cache(s);
    assert_eq!(m.slub.slab_errors(), 0, "{}", take_captured());
}

/// Another CPU flushing a CPU's slot while that CPU runs its lockless fast paths: no object
/// is lost or handed out twice (each live object carries a unique stamp, checked before it
/// is freed), and every page comes back.
#[test]
fn flush_races_with_fast_paths() {
    let mut p = SlubParams::new(2, 1, 23);
    p.kmalloc_min_size = 8;
    let m = SlubMachine::with_params(64, p);
    m.shrink_all();
    let base = m.pages.pages_out();
    let slub: &SlubAllocator = &m.slub;
    let s = slub.find_cache("kmalloc-64").unwrap();
    let done = AtomicBool::new(false);
    // The worker starts once the flusher has flushed: on a loaded machine the flusher's
    // thread might otherwise first run after the worker has finished.
    let started = AtomicBool::new(false);
    std::thread::scope(|t| {
        t.spawn(|| {
            set_cpu(0);
            while !started.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            let mut live: Vec<(*mut u8, u64)> = Vec::new();
            for i in 0..200_000u64 {
                let p = slub.kmalloc(64, GFP_KERNEL);
                assert!(!p.is_null());
                // SAFETY: a fresh 64-byte object.
                unsafe { ptr::write(p.cast::<u64>(), i) };
                live.push((p, i));
                if live.len() > (i % 7) as usize {
                    let (q, stamp) = live.swap_remove((i % 3) as usize % live.len());
                    // SAFETY: live until the kfree below.
                    assert_eq!(
                        unsafe { ptr::read(q.cast::<u64>()) },
                        stamp,
                        "object reused"
                    );
                    // SAFETY: live, freed once.
                    unsafe { slub.kfree(q) };
                }
            }
            for (q, stamp) in live {
                // SAFETY: as above.
                assert_eq!(
                    unsafe { ptr::read(q.cast::<u64>()) },
                    stamp,
                    "object reused"
                );
                // SAFETY: as above.
                unsafe { slub.kfree(q) };
            }
            done.store(true, Ordering::Release);
        });
        t.spawn(|| {
            set_cpu(1);
            loop {
                slub.flush_all(s);
                started.store(true, Ordering::Release);
                if done.load(Ordering::Acquire) {
                    break;
                }
            }
        });
    });
    m.shrink_all();
    assert_eq!(m.pages.pages_out(), base);
    slub.validate_slab_cache(s);
    assert_eq!(slub.slab_errors(), 0, "{}", take_captured());
}

/// A linear map (here: one 4 MiB window of the simulated pages) makes virt_to_page()
/// arithmetic inside it; outside it still asks the source, and both agree.
#[test]
fn linear_map_lookup_agrees_with_the_source() {
    let pages: &'static SimPages = Box::leak(Box::new(SimPages::new(64, 1)));
    let block = pages.alloc_pages(GFP_KERNEL, 10, 0).unwrap();
    let start = pages.page_address(block) as usize;
    // SAFETY: ours, order 10, unused.
    unsafe { pages.free_pages(block, 10) };
    let lm = LinearMap {
        start,
        size: PAGE_SZ << 10,
        pages: block.as_ptr() as usize,
    };
    let mut p = SlubParams::new(1, 1, 29);
    p.kmalloc_min_size = 8;
    // SAFETY: the window's struct pages are SimPages' array, consecutive, as it maps them.
    let m = SlubMachine::over(pages, unsafe { p.with_linear_map(lm) });
    let (mut inside, mut outside) = (0, 0);
    let objs: Vec<*mut u8> = (0..20_000)
        .map(|i| m.slub.kmalloc(8 + i % 2000, GFP_KERNEL))
        .collect();
    for &o in &objs {
        if (o as usize).wrapping_sub(start) < lm.size {
            inside += 1;
        } else {
            outside += 1;
        }
        assert_eq!(m.slub.virt_to_page(o), pages.virt_to_page(o));
    }
    assert!(inside > 0 && outside > 0, "{inside} {outside}");
    for o in objs {
        // SAFETY: live.
        unsafe { m.slub.kfree(o) };
    }
    assert_eq!(m.slub.slab_errors(), 0);
}
