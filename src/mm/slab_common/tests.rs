//! Host unit tests of `src/mm/slab_common.rs` (`cargo hosttest`), on the shared scaffold
//! `mm::testing` (simulated RAM and a machine builder).

use super::*;
use crate::kernel::printk::take_captured;
use crate::mm::gfp::{__GFP_RECLAIMABLE, GFP_DMA, GFP_KERNEL};
use crate::mm::testing::SlubMachine;

#[test]
fn zero_size_and_null() {
    let m = SlubMachine::small();
    assert_eq!(m.slub.kmalloc(0, GFP_KERNEL), ZERO_SIZE_PTR);
    assert_eq!(m.slub.ksize(ZERO_SIZE_PTR), 0);
    // SAFETY: NULL and ZERO_SIZE_PTR are no-ops.
    unsafe {
        m.slub.kfree(ptr::null());
        m.slub.kfree(ZERO_SIZE_PTR);
    }
    assert!(
        m.slub.kcalloc(usize::MAX / 2, 4, GFP_KERNEL).is_null(),
        "overflow"
    );
    let p = m.slub.kcalloc(10, 30, GFP_KERNEL);
    // SAFETY: 300 zeroed bytes.
    assert!(unsafe { core::slice::from_raw_parts(p, 300) }
        .iter()
        .all(|&b| b == 0));
    // SAFETY: live.
    unsafe { m.slub.kfree(p) };
}

/// arm64 6.1: kmalloc-128 is the smallest class; 129..=192 go to kmalloc-256.
#[test]
fn arm64_size_classes() {
    let m = SlubMachine::with_params(32, SlubParams::new(2, 1, 1));
    for (size, name) in [
        (1, "kmalloc-128"),
        (96, "kmalloc-128"),
        (128, "kmalloc-128"),
        (129, "kmalloc-256"),
        (192, "kmalloc-256"),
        (257, "kmalloc-512"),
        (4097, "kmalloc-8k"),
    ] {
        assert_eq!(
            m.slub.kmalloc_slab(size, GFP_KERNEL).unwrap().name,
            name,
            "size {size}"
        );
    }
    assert_eq!(
        m.slub.kmalloc_slab(100, GFP_DMA).unwrap().name,
        "dma-kmalloc-128"
    );
    assert_eq!(
        m.slub.kmalloc_slab(3000, __GFP_RECLAIMABLE).unwrap().name,
        "kmalloc-rcl-4k"
    );
    let p = m.slub.kmalloc(1, GFP_KERNEL);
    assert_eq!(p as usize % 128, 0, "ARCH_KMALLOC_MINALIGN");
    assert_eq!(m.slub.ksize(p), 128);
    let d = m.slub.kmalloc(700, GFP_DMA);
    // SAFETY (in the closure): a slab's cache is live.
    assert_eq!(
        m.slub
            .virt_to_slab(d)
            .map(|s| unsafe { (*s.slab_cache()).name }),
        Some("dma-kmalloc-1k")
    );
    // SAFETY: live.
    unsafe {
        m.slub.kfree(p);
        m.slub.kfree(d);
    }
}

/// ksize() of every class, of a large block, and krealloc across them.
#[test]
fn ksize_and_krealloc() {
    let m = SlubMachine::small();
    for info in KMALLOC_INFO.iter().skip(1) {
        let p = m.slub.kmalloc(info.size, GFP_KERNEL);
        assert_eq!(m.slub.ksize(p), info.size, "{}", info.name[0]);
        // SAFETY: live.
        unsafe { m.slub.kfree(p) };
    }
    m.shrink_all();
    let base = m.pages.pages_out();
    let p = m.slub.kmalloc(20000, GFP_KERNEL);
    assert_eq!(
        m.pages.pages_out(),
        base + 8,
        "order 3 straight from the page allocator"
    );
    assert_eq!(m.slub.ksize(p), 32768);
    assert_eq!(p as usize % 32768, 0, "a naturally aligned block");
    // SAFETY: the object and its reallocations are ours.
    unsafe {
        for i in 0..20000 {
            *p.add(i) = i as u8;
        }
        // Shrinking in place keeps the block.
        let q = m.slub.krealloc(p, 16000, GFP_KERNEL);
        assert_eq!(q, p);
        // Even to a slab size: Linux keeps an object that still fits.
        assert_eq!(m.slub.krealloc(q, 5000, GFP_KERNEL), q);
        m.slub.kfree(q);
        let r = m.slub.kmalloc(5000, GFP_KERNEL);
        assert!(m.slub.virt_to_slab(r).is_some());
        for i in 0..5000 {
            *r.add(i) = i as u8;
        }
        // Growing from kmalloc-8k to large: copied, the object freed.
        let t = m.slub.krealloc(r, 100_000, GFP_KERNEL | __GFP_ZERO);
        assert!((0..5000).all(|i| *t.add(i) == i as u8));
        assert_eq!(m.slub.ksize(t), 131072);
        // Growing within the object returns it.
        let u = m.slub.kmalloc(100, GFP_KERNEL);
        assert_eq!(m.slub.krealloc(u, 128, GFP_KERNEL), u);
        // krealloc(NULL) is kmalloc; krealloc(p, 0) frees.
        let v = m.slub.krealloc(ptr::null(), 10, GFP_KERNEL);
        assert_eq!(m.slub.ksize(v), 16);
        assert_eq!(m.slub.krealloc(v, 0, GFP_KERNEL), ZERO_SIZE_PTR);
        m.slub.kfree(u);
        m.slub.kfree(t);
    }
    m.shrink_all();
    assert_eq!(m.pages.pages_out(), base);
    // Above KMALLOC_MAX_SIZE the page allocator has no block that large.
    assert!(m
        .slub
        .kmalloc(
            KMALLOC_MAX_SIZE * 2,
            GFP_KERNEL | crate::mm::gfp::__GFP_NOWARN
        )
        .is_null());
}

/// kmem_cache_create() merging (find_mergeable) and its refusals.
#[test]
fn merging() {
    fn ctor(_: *mut u8) {}
    let m = SlubMachine::small();
    let a = m
        .slub
        .kmem_cache_create("merge_a", 100, 0, 0, None)
        .unwrap();
    let b = m
        .slub
        .kmem_cache_create("merge_b", 100, 0, 0, None)
        .unwrap();
    assert!(ptr::eq(a, b), "same size merges");
    assert_eq!(a.refcount.load(Ordering::Relaxed), 2);
    let c = m
        .slub
        .kmem_cache_create("merge_c", 104, 0, 0, None)
        .unwrap();
    assert!(ptr::eq(a, c), "fits the same 104-byte objects");
    assert_eq!(a.object_size(), 104, "kzalloc clears the whole alias");
    let d = m.slub.kmem_cache_create("merge_d", 96, 0, 0, None).unwrap();
    assert!(!ptr::eq(a, d), "a word or more of waste does not merge");
    for (name, flags, ctor) in [
        ("merge_ctor", 0, Some(ctor as Ctor)),
        ("merge_poison", SLAB_POISON, None),
        ("merge_rcl", SLAB_RECLAIM_ACCOUNT, None),
        ("merge_nomerge", SLAB_NO_MERGE, None),
    ] {
        let x = m.slub.kmem_cache_create(name, 100, 0, flags, ctor).unwrap();
        assert!(!ptr::eq(a, x), "{name}");
    }
    // kmalloc caches are never merge targets (usersize, refcount).
    let k = m
        .slub
        .kmem_cache_create("merge_k", 128, 0, 0, None)
        .unwrap();
    assert_ne!(k.name, "kmalloc-128");
    // Destroying an alias drops a reference; the cache lives on.
    // SAFETY: each create is paired with one destroy.
    unsafe {
        m.slub.kmem_cache_destroy(b);
        m.slub.kmem_cache_destroy(c);
    }
    assert!(m.slub.find_cache("merge_a").is_some());
    // SAFETY: the last reference.
    unsafe { m.slub.kmem_cache_destroy(a) };
    assert!(m.slub.find_cache("merge_a").is_none());
    // slab_nomerge.
    let mut p = SlubParams::new(1, 1, 2);
    p.slab_nomerge = true;
    let m = SlubMachine::with_params(16, p);
    let a = m.slub.kmem_cache_create("nm_a", 100, 0, 0, None).unwrap();
    let b = m.slub.kmem_cache_create("nm_b", 100, 0, 0, None).unwrap();
    assert!(!ptr::eq(a, b));
}

/// kmem_cache_create() refusals, in Linux's words.
#[test]
fn create_errors() {
    let m = SlubMachine::small();
    take_captured();
    assert!(m.slub.kmem_cache_create("", 10, 0, 0, None).is_none());
    assert!(m
        .slub
        .kmem_cache_create("huge", (KMALLOC_MAX_SIZE + 1) as u32, 0, 0, None)
        .is_none());
    assert!(m
        .slub
        .kmem_cache_create("badflags", 10, 0, 0x8000_0000, None)
        .is_none());
    let log = take_captured();
    assert!(
        log.contains("kmem_cache_create(huge) integrity check failed"),
        "{log}"
    );
    assert!(
        log.contains("kmem_cache_create_usercopy(badflags) failed with error -22"),
        "{log}"
    );
}

/// /proc/slabinfo: Linux's header and line format.
#[test]
fn slabinfo_format() {
    let m = SlubMachine::small();
    let s = m
        .slub
        .kmem_cache_create("slabinfo_test", 100, 0, SLAB_NO_MERGE, None)
        .unwrap();
    let objs: Vec<*mut u8> = (0..3)
        .map(|_| m.slub.kmem_cache_alloc(s, GFP_KERNEL))
        .collect();
    let mut out = String::new();
    m.slub.slabinfo(&mut out).unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("slabinfo - version: 2.1"));
    assert_eq!(
        lines.next(),
        Some("# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>")
    );
    // Newest first; objects on a CPU slab count as active, as in Linux.
    assert_eq!(
        lines.next(),
        Some("slabinfo_test         39     39    104   39    1 : tunables    0    0    0 : slabdata      1      1      0")
    );
    // Oldest last: bootstrap() listed kmem_cache, then kmem_cache_node.
    let last: Vec<&str> = out
        .lines()
        .rev()
        .take(2)
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(last, ["kmem_cache", "kmem_cache_node"]);
    for p in objs {
        // SAFETY: live.
        unsafe { m.slub.kmem_cache_free(s, p) };
    }
    m.slub.kmem_cache_shrink(s);
    let mut out = String::new();
    m.slub.slabinfo(&mut out).unwrap();
    assert!(out.contains("slabinfo_test          0      0    104   39    1 : tunables    0    0    0 : slabdata      0      0      0"), "{out}");
}

/// kmalloc_size_roundup() for every size 1..=8192 on both kmalloc minimums (8: every class;
/// arm64's 128, where kmalloc-96 and -192 do not exist: setup_kmalloc_cache_index_table()),
/// against the class table: the smallest class that holds the size, which is
/// the cache kmalloc() of the size and of the rounded size both use; and around the limits.
#[test]
fn kmalloc_size_roundup_is_the_class_size() {
    use crate::mm::slab::{KMALLOC_MAX_CACHE_SIZE, KMALLOC_MAX_SIZE};
    let arm64 = SlubMachine::with_params(64, crate::mm::slub::SlubParams::new(1, 1, 7));
    for (m, min) in [(SlubMachine::small(), 8), (arm64, 128)] {
        let mut classes: Vec<usize> = KMALLOC_INFO
            .iter()
            .map(|k| k.size)
            .filter(|&s| match s {
                96 => min < 64,
                192 => min < 128,
                _ => s >= min,
            })
            .collect();
        classes.sort();
        for size in 1..=8192usize {
            let want = *classes.iter().find(|&&c| c >= size).unwrap();
            let r = m.slub.kmalloc_size_roundup(size);
            assert_eq!(r, want, "min {min}: size {size}");
            let a = m.slub.kmalloc_slab(size, GFP_KERNEL).unwrap();
            let b = m.slub.kmalloc_slab(r, GFP_KERNEL).unwrap();
            assert!(
                ptr::eq(a, b),
                "min {min}: size {size} and {r} share a cache"
            );
        }
        let s = &m.slub;
        assert_eq!(s.kmalloc_size_roundup(0), 0);
        assert_eq!(s.kmalloc_size_roundup(usize::MAX), usize::MAX);
        assert_eq!(KMALLOC_MAX_CACHE_SIZE, 8192);
        assert_eq!(s.kmalloc_size_roundup(8193), 16384);
        assert_eq!(s.kmalloc_size_roundup(12288), 16384);
        assert_eq!(
            s.kmalloc_size_roundup(KMALLOC_MAX_SIZE - 1),
            KMALLOC_MAX_SIZE
        );
        assert_eq!(s.kmalloc_size_roundup(KMALLOC_MAX_SIZE), KMALLOC_MAX_SIZE);
        // Past the limit Linux still rounds (kmalloc() of it fails).
        assert_eq!(
            s.kmalloc_size_roundup(KMALLOC_MAX_SIZE + 1),
            2 * KMALLOC_MAX_SIZE
        );
        let p = s.kmalloc(KMALLOC_MAX_SIZE, GFP_KERNEL | crate::mm::gfp::__GFP_NOWARN);
        assert!(!p.is_null());
        assert_eq!(s.ksize(p), s.kmalloc_size_roundup(KMALLOC_MAX_SIZE));
        // SAFETY: live.
        unsafe { s.kfree(p) };
    }
}

/// A machine whose caches never merge (two caches of one size stay two).
fn nomerge() -> SlubMachine {
    let mut p = crate::mm::slub::SlubParams::new(1, 1, 0x1234_5678);
    p.kmalloc_min_size = 8;
    p.slab_nomerge = true;
    SlubMachine::with_params(64, p)
}

/// kmem_cache_alloc_bulk() of 0, 1 and many objects: all or nothing, distinct objects of
/// the cache, zeroed with __GFP_ZERO; kmem_cache_free_bulk() gives every page back.
#[test]
fn bulk_alloc_and_free_of_0_1_and_many() {
    use crate::mm::gfp::__GFP_ZERO;
    let m = nomerge();
    let s = m.slub.kmem_cache_create("bulk", 72, 0, 0, None).unwrap();
    m.shrink_all();
    let pages0 = m.pages.pages_out();
    let mut none: [*mut u8; 0] = [];
    assert_eq!(m.slub.kmem_cache_alloc_bulk(s, GFP_KERNEL, &mut none), 0);
    assert_eq!(m.pages.pages_out(), pages0, "nothing allocated for 0");
    // SAFETY: empty.
    unsafe { m.slub.kmem_cache_free_bulk(Some(s), &mut none) };
    for n in [1usize, 2, 57, 500] {
        let mut p = vec![ptr::null_mut(); n];
        assert_eq!(
            m.slub
                .kmem_cache_alloc_bulk(s, GFP_KERNEL | __GFP_ZERO, &mut p),
            n
        );
        let mut sorted = p.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), n, "{n} distinct objects");
        for &o in &p {
            assert!(!o.is_null());
            let slab = m.slub.virt_to_slab(o).unwrap();
            assert!(ptr::eq(slab.slab_cache(), s));
            // SAFETY: 72 bytes of a live object.
            assert!(unsafe { core::slice::from_raw_parts(o, 72) }
                .iter()
                .all(|&b| b == 0));
            // SAFETY: ours; dirty it for the next round's __GFP_ZERO check.
            unsafe { ptr::write_bytes(o, 0xee, 72) };
        }
        // SAFETY: live objects of s.
        unsafe { m.slub.kmem_cache_free_bulk(Some(s), &mut p) };
        m.shrink_all();
        assert_eq!(m.pages.pages_out(), pages0, "{n}: every slab freed");
    }
    assert_eq!(take_captured().matches("Wrong slab cache").count(), 0);
}

/// Bulk free through the wrong cache: Linux 6.1 (hardened) reports it from cache_from_obj()
/// once per detached freelist and frees the objects to their own cache; kfree_bulk() takes
/// each object's cache (and large kmalloc blocks) itself.
#[test]
fn bulk_free_of_mixed_caches_is_reported_per_detached_freelist() {
    let m = nomerge();
    let a = m.slub.kmem_cache_create("bulk_a", 64, 0, 0, None).unwrap();
    let b = m.slub.kmem_cache_create("bulk_b", 64, 0, 0, None).unwrap();
    m.shrink_all();
    let pages0 = m.pages.pages_out();
    let (a1, a2) = (
        m.slub.kmem_cache_alloc(a, GFP_KERNEL),
        m.slub.kmem_cache_alloc(a, GFP_KERNEL),
    );
    let (b1, b2) = (
        m.slub.kmem_cache_alloc(b, GFP_KERNEL),
        m.slub.kmem_cache_alloc(b, GFP_KERNEL),
    );
    take_captured();
    // The last object (b2) starts a detached freelist with b1 (same slab): one report.
    let mut p = [a1, b1, a2, b2];
    // SAFETY: live objects (two of them of the other cache: the misuse under test).
    unsafe { m.slub.kmem_cache_free_bulk(Some(a), &mut p) };
    let out = take_captured();
    assert_eq!(
        out.matches("cache_from_obj: Wrong slab cache. bulk_a but object is from bulk_b")
            .count(),
        1,
        "{out}"
    );
    m.shrink_all();
    assert_eq!(
        m.pages.pages_out(),
        pages0,
        "all four freed to their caches"
    );

    // kfree_bulk: slab objects of two caches and a large kmalloc block, no report.
    let big = m.slub.kmalloc(64 * 1024, GFP_KERNEL);
    let mut q = [
        m.slub.kmalloc(100, GFP_KERNEL),
        big,
        m.slub.kmem_cache_alloc(b, GFP_KERNEL),
        m.slub.kmalloc(100, GFP_KERNEL),
    ];
    // SAFETY: live kmalloc / slab objects.
    unsafe { m.slub.kfree_bulk(&mut q) };
    assert!(!take_captured().contains("Wrong slab cache"));
    m.shrink_all();
    assert_eq!(m.pages.pages_out(), pages0, "kfree_bulk freed everything");
}

/// The inline kmalloc()'s arithmetic index (Linux's __kmalloc_index) names the cache that
/// kmalloc_slab()'s size_index table does, for every size 1..=KMALLOC_MAX_CACHE_SIZE and
/// every minimum size (arm64's 128, and the 8 ... 64 of other architectures, with and
/// without kmalloc-96 / kmalloc-192), for every kmalloc type.
#[test]
fn kmalloc_index_matches_kmalloc_slab_for_every_size() {
    for min in [8, 16, 32, 64, 128] {
        let mut p = SlubParams::new(2, 1, 1);
        p.kmalloc_min_size = min;
        let m = SlubMachine::with_params(32, p);
        for flags in [GFP_KERNEL, GFP_DMA, __GFP_RECLAIMABLE] {
            for size in 1..=KMALLOC_MAX_CACHE_SIZE {
                let by_table = m.slub.kmalloc_slab(size, flags).expect("a kmalloc class");
                let by_index = m
                    .slub
                    .kmalloc_cache(kmalloc_type(flags), kmalloc_index(size, min))
                    .expect("the index names a created cache");
                assert!(
                    ptr::eq(by_table, by_index),
                    "min {min} size {size}: {} by size_index[], {} by kmalloc_index()",
                    by_table.name,
                    by_index.name
                );
                assert!(by_index.object_size() as usize >= size);
            }
        }
        assert_eq!(kmalloc_index(0, min), 0);
        assert!(m.slub.kmalloc_cache(KmallocCacheType::Normal, 0).is_none());
        assert!(m
            .slub
            .kmalloc_cache(KmallocCacheType::Normal, KMALLOC_SHIFT_HIGH + 1)
            .is_none());
    }
    // The kernel's classes: arm64 in 6.1.
    assert_eq!(KMALLOC_MIN_SIZE, 128);
    assert_eq!(kmalloc_index(64, KMALLOC_MIN_SIZE), 7);
    assert_eq!(kmalloc_index(192, KMALLOC_MIN_SIZE), 8);
    assert_eq!(kmalloc_index(1024, KMALLOC_MIN_SIZE), 10);
    assert_eq!(kmalloc_index(KMALLOC_MAX_CACHE_SIZE, KMALLOC_MIN_SIZE), 13);
    // 96 and 192 exist only for the small minimum sizes.
    assert_eq!(kmalloc_index(72, 32), 1);
    assert_eq!(kmalloc_index(72, 64), 7);
    assert_eq!(kmalloc_index(150, 64), 2);
}
