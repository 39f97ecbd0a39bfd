//! Host unit tests of `src/mm/slub/create.rs` (`cargo hosttest`), on the shared scaffold
//! `mm::testing` (simulated RAM and a machine builder).

use super::*;
use crate::kernel::printk::take_captured;
use crate::mm::gfp::GFP_KERNEL;
use crate::mm::slab::{
    SLAB_HWCACHE_ALIGN, SLAB_KMALLOC, SLAB_NO_MERGE, SLAB_NO_USER_FLAGS, SLAB_POISON,
    SLAB_RED_ZONE, SLAB_STORE_USER,
};
use crate::mm::slab_common::KMALLOC_INFO;
use crate::mm::slub::{slab_ksize, KmemCache, SlabState, DEBUG_DEFAULT_FLAGS};
use crate::mm::testing::{SimPages, SlubMachine};

/// Linux 6.1's calculate_order() for the kmalloc caches: (size, order) with 1, 2, 4 CPUs.
#[test]
fn calculate_order_matches_linux() {
    // min_objects = 4 * (fls(nr_cpus) + 1): 8, 12, 16.
    let expect: [(u32, [u32; 3]); 13] = [
        (8, [0, 0, 0]),
        (16, [0, 0, 0]),
        (32, [0, 0, 0]),
        (64, [0, 0, 0]),
        (96, [0, 0, 0]),
        (128, [0, 0, 0]),
        (192, [0, 0, 0]),
        (256, [0, 0, 0]),
        (512, [0, 1, 1]),
        (1024, [1, 2, 2]),
        (2048, [2, 3, 3]),
        (4096, [3, 3, 3]),
        (8192, [3, 3, 3]),
    ];
    for (i, cpus) in [1u32, 2, 4].into_iter().enumerate() {
        let p = SlubParams::new(cpus, 1, 0);
        for (size, orders) in expect {
            assert_eq!(
                calculate_order(size, &p),
                Some(orders[i]),
                "size {size}, {cpus} CPUs"
            );
        }
    }
    // The arm64 machines' kmalloc caches, as /proc/slabinfo shows them on 2 CPUs.
    let m = SlubMachine::with_params(64, SlubParams::new(2, 1, 1));
    let mut out = String::new();
    m.slub.slabinfo(&mut out).unwrap();
    let line = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap()
            .to_string()
    };
    let fields = |name: &str| -> (u32, u32, u32) {
        let l = line(name);
        let f: Vec<&str> = l.split_whitespace().collect();
        (
            f[3].parse().unwrap(),
            f[4].parse().unwrap(),
            f[5].parse().unwrap(),
        )
    };
    assert_eq!(fields("kmalloc-128"), (128, 32, 1));
    assert_eq!(fields("kmalloc-256"), (256, 16, 1));
    assert_eq!(fields("kmalloc-512"), (512, 16, 2));
    assert_eq!(fields("kmalloc-1k"), (1024, 16, 4));
    assert_eq!(fields("kmalloc-2k"), (2048, 16, 8));
    assert_eq!(fields("kmalloc-4k"), (4096, 8, 8));
    assert_eq!(fields("kmalloc-8k"), (8192, 4, 8));
    assert!(
        !out.contains("kmalloc-96 ") && !out.contains("kmalloc-64 "),
        "arm64 6.1 starts at 128"
    );
    // Options: slub_min_order / slub_max_order / slub_min_objects.
    let mut p = SlubParams::new(2, 1, 0);
    p.slub_max_order = 0;
    assert_eq!(
        calculate_order(8192, &p),
        Some(1),
        "one object fits only in order 1"
    );
    p.slub_max_order = 3;
    p.slub_min_order = 2;
    assert_eq!(calculate_order(64, &p), Some(2));
    let mut p = SlubParams::new(2, 1, 0);
    p.slub_min_objects = 64;
    assert_eq!(calculate_order(256, &p), Some(2));
}

/// Bring-up: DOWN -> PARTIAL -> UP -> FULL, the boot caches bootstrapped.
#[test]
fn bootstrap_and_states() {
    let pages: &'static SimPages = Box::leak(Box::new(SimPages::new(16, 1)));
    let slub = Box::new(SlubAllocator::new(pages, SlubParams::new(2, 1, 3)));
    assert_eq!(slub.slab_state(), SlabState::Down);
    slub.kmem_cache_init();
    assert_eq!(slub.slab_state(), SlabState::Up);
    slub.kmem_cache_init_late();
    assert_eq!(slub.slab_state(), SlabState::Full);
    let kc = slub.kmem_cache().unwrap();
    let kcn = slub.kmem_cache_node().unwrap();
    assert_eq!((kc.name, kcn.name), ("kmem_cache", "kmem_cache_node"));
    // The copies, not the boot caches, own the slabs now.
    assert!(!ptr::eq(kc, slub.boot_kmem_cache.get().cast::<KmemCache>()));
    let obj = slub.kmem_cache_alloc(kc, GFP_KERNEL);
    assert!(ptr::eq(slub.virt_to_slab(obj).unwrap().slab_cache(), kc));
    // SAFETY: just allocated.
    unsafe { slub.kmem_cache_free(kc, obj) };
    assert_eq!(
        kcn.object_size() as usize,
        core::mem::size_of::<KmemCacheNode>()
    );
    assert_eq!(kc.object_size() as usize, kmem_cache_size(2));
    assert_eq!(
        slub.find_cache("kmem_cache").map(|c| c as *const _),
        Some(kc as *const _)
    );
}

/// Alignments 8 ... 4096 from kmem_cache_create(align).
#[test]
fn alignments() {
    let m = SlubMachine::small();
    for shift in 3..=12u32 {
        let align = 1u32 << shift;
        let name: &'static str = Box::leak(format!("align-{align}").into_boxed_str());
        let s = m
            .slub
            .kmem_cache_create(name, 24, align, SLAB_NO_MERGE, None)
            .unwrap();
        assert_eq!(s.align, align.max(8));
        let objs: Vec<*mut u8> = (0..50)
            .map(|_| m.slub.kmem_cache_alloc(s, GFP_KERNEL))
            .collect();
        for &p in &objs {
            assert_eq!(p as usize % align as usize, 0, "align {align}");
        }
        for p in objs {
            // SAFETY: live.
            unsafe { m.slub.kmem_cache_free(s, p) };
        }
        // SAFETY: ours, empty.
        unsafe { m.slub.kmem_cache_destroy(s) };
    }
    // HWCACHE_ALIGN: a cache line, or the smallest power of two the object fits.
    let s = m
        .slub
        .kmem_cache_create("hw", 40, 0, SLAB_HWCACHE_ALIGN, None)
        .unwrap();
    assert_eq!(s.align, 64);
    let s = m
        .slub
        .kmem_cache_create("hw-small", 20, 0, SLAB_HWCACHE_ALIGN, None)
        .unwrap();
    assert_eq!(s.align, 32);
    // kmalloc power-of-two sizes are naturally aligned.
    for i in 3..=13 {
        let p = m.slub.kmalloc(1 << i, GFP_KERNEL);
        assert_eq!(p as usize % (1 << i), 0, "kmalloc-{}", 1 << i);
    }
    assert!(take_captured().lines().all(|l| !l.contains("BUG")));
}

/// The object layout of calculate_sizes() for a few flag sets (Linux's numbers).
#[test]
fn object_layout() {
    let m = SlubMachine::small();
    let c = |name: &'static str, size, flags| {
        m.slub
            .kmem_cache_create(name, size, 0, flags | SLAB_NO_USER_FLAGS, None)
            .unwrap()
    };
    let s = c("plain", 64, SLAB_NO_MERGE);
    assert_eq!(
        (s.size, s.inuse(), s.offset, s.red_left_pad),
        (64, 64, 32, 0)
    );
    let s = c("rz", 64, SLAB_RED_ZONE);
    assert_eq!(
        (s.size, s.inuse(), s.offset, s.red_left_pad),
        (88, 72, 32, 8)
    );
    let s = c("poison", 64, SLAB_POISON);
    assert_eq!((s.size, s.inuse(), s.offset), (72, 64, 64));
    let s = c(
        "kmalloc-like",
        32,
        SLAB_KMALLOC | SLAB_STORE_USER | SLAB_RED_ZONE,
    );
    assert_eq!((s.size, s.inuse(), s.offset), (136, 40, 40));
    let s = c("all", 100, DEBUG_DEFAULT_FLAGS);
    // 104 + 8 fp + 64 tracks + 8 right pad + 8 left = 192.
    assert_eq!(
        (s.size, s.inuse(), s.offset, s.min_partial),
        (192, 104, 104, 5)
    );
    assert_eq!(slab_ksize(s), 100);
    let s = c("big", 5000, SLAB_NO_MERGE);
    assert_eq!(
        (s.oo.oo_order(), s.oo.oo_objects(), s.min.oo_order()),
        (3, 6, 1)
    );
    assert_eq!(s.allocflags & __GFP_COMP, __GFP_COMP);
    assert_eq!(s.min_partial, 6, "ilog2(5000)/2");
}

/// The size_index table of a kmalloc_min_size=8 allocator is Linux's initial one.
#[test]
fn kmalloc_class_names() {
    let m = SlubMachine::small();
    for (size, name) in [
        (1, "kmalloc-8"),
        (72, "kmalloc-96"),
        (100, "kmalloc-128"),
        (150, "kmalloc-192"),
        (193, "kmalloc-256"),
        (8192, "kmalloc-8k"),
    ] {
        assert_eq!(
            m.slub.kmalloc_slab(size, GFP_KERNEL).unwrap().name,
            name,
            "size {size}"
        );
    }
    assert_eq!(KMALLOC_INFO[13].name[2], "dma-kmalloc-8k");
}
