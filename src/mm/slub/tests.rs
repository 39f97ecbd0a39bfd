use super::*;
use crate::kernel::printk::take_captured;
use crate::mm::slab_common::{KMALLOC_INFO, SLAB_NO_MERGE};
use crate::mm::testing::{__pa, set_cpu, Backing, Machine, SimPages, SlubMachine};

fn test_kmem_cache_create<'m>(
    m: &'m SlubMachine,
    name: &'static str,
    size: u32,
    flags: SlabFlags,
) -> &'m KmemCache {
    m.slub
        .kmem_cache_create(name, size, 0, flags | SLAB_NO_USER_FLAGS, None)
        .expect("cache")
}

/// slub_kunit: test_clobber_zone.
#[test]
fn kunit_clobber_zone() {
    let m = SlubMachine::small();
    take_captured();
    let s = test_kmem_cache_create(&m, "TestSlub_RZ_alloc", 64, SLAB_RED_ZONE);
    let p = m.slub.kmem_cache_alloc(s, GFP_KERNEL);
    // SAFETY: the first byte of the right red zone, inside the slab.
    unsafe { *p.add(64) = 0x12 };
    m.slub.validate_slab_cache(s);
    assert_eq!(m.slub.slab_errors(), 2);
    let log = take_captured();
    assert!(
        log.contains("BUG TestSlub_RZ_alloc (Not tainted): Right Redzone overwritten"),
        "{log}"
    );
    assert!(log.contains("First byte 0x12 instead of 0xcc"), "{log}");
    assert!(
        log.contains("FIX TestSlub_RZ_alloc: Restoring Right Redzone 0x"),
        "{log}"
    );
    assert!(log.contains("Redzone  "), "the object dump: {log}");
    // Repaired: a second validation finds nothing.
    m.slub.reset_slab_errors();
    m.slub.validate_slab_cache(s);
    assert_eq!(m.slub.slab_errors(), 0);
    // SAFETY: allocated above; the cache is ours.
    unsafe {
        m.slub.kmem_cache_free(s, p);
        m.slub.kmem_cache_destroy(s);
    }
    assert_eq!(m.slub.slab_errors(), 0);
}

/// slub_kunit: test_next_pointer.
#[test]
fn kunit_next_pointer() {
    let m = SlubMachine::small();
    let s = test_kmem_cache_create(&m, "TestSlub_next_ptr_free", 64, SLAB_POISON);
    let p = m.slub.kmem_cache_alloc(s, GFP_KERNEL);
    // SAFETY: ours; then reading and corrupting its free pointer, as the kunit case does.
    unsafe {
        m.slub.kmem_cache_free(s, p);
        let ptr_addr = p.add(s.offset as usize).cast::<u64>();
        let tmp = *ptr_addr;
        *p.add(s.offset as usize) = !*p.add(s.offset as usize);
        take_captured();
        // Expecting three errors: the corrupted freechain, the wrong count of objects in
        // use, and the fix.
        m.slub.validate_slab_cache(s);
        assert_eq!(m.slub.slab_errors(), 3);
        let log = take_captured();
        assert!(
            log.contains("BUG TestSlub_next_ptr_free (Not tainted): Freechain corrupt"),
            "{log}"
        );
        assert!(
            log.contains("Wrong object count. Counter is 0 but counted were"),
            "{log}"
        );
        assert!(
            log.contains("FIX TestSlub_next_ptr_free: Object count adjusted"),
            "{log}"
        );
        // Repair the pointer: still the wrong count and its fix.
        *ptr_addr = tmp;
        m.slub.reset_slab_errors();
        m.slub.validate_slab_cache(s);
        assert_eq!(m.slub.slab_errors(), 2);
        // Previous validation repaired the count of objects in use.
        m.slub.reset_slab_errors();
        m.slub.validate_slab_cache(s);
        assert_eq!(m.slub.slab_errors(), 0);
        m.slub.kmem_cache_destroy(s);
    }
}

/// slub_kunit's write-after-free cases: in a fresh 64-byte `flags` cache an object is
/// freed, then `byte` is written at `offset` in it; validate_slab_cache() must count two
/// errors. Returns what the validation printed and the byte at `offset` after it.
fn write_after_free(name: &'static str, flags: SlabFlags, offset: usize, byte: u8) -> (String, u8) {
    let m = SlubMachine::small();
    let s = test_kmem_cache_create(&m, name, 64, flags);
    let p = m.slub.kmem_cache_alloc(s, GFP_KERNEL);
    // SAFETY: a write after free, inside the slab, as the kunit cases do.
    unsafe {
        m.slub.kmem_cache_free(s, p);
        *p.add(offset) = byte;
    }
    take_captured();
    m.slub.validate_slab_cache(s);
    assert_eq!(m.slub.slab_errors(), 2);
    let log = take_captured();
    // SAFETY: the object is still inside the slab (free, possibly repaired).
    let after = unsafe { *p.add(offset) };
    // SAFETY: the cache is ours.
    unsafe { m.slub.kmem_cache_destroy(s) };
    (log, after)
}

/// slub_kunit: test_first_word.
#[test]
fn kunit_first_word() {
    let (log, first) = write_after_free("TestSlub_1th_word_free", SLAB_POISON, 0, 0x78);
    assert!(
        log.contains("BUG TestSlub_1th_word_free (Not tainted): Poison overwritten"),
        "{log}"
    );
    assert!(log.contains("First byte 0x78 instead of 0x6b"), "{log}");
    assert!(
        log.contains("FIX TestSlub_1th_word_free: Restoring Poison 0x"),
        "{log}"
    );
    // The repaired object is free again.
    assert_eq!(first, POISON_FREE);
}

/// slub_kunit: test_clobber_50th_byte.
#[test]
fn kunit_clobber_50th_byte() {
    let (log, _) = write_after_free("TestSlub_50th_word_free", SLAB_POISON, 50, 0x9a);
    assert!(log.contains("First byte 0x9a instead of 0x6b"));
}

/// slub_kunit: test_clobber_redzone_free.
#[test]
fn kunit_clobber_redzone_free() {
    let (log, _) = write_after_free("TestSlub_RZ_free", SLAB_RED_ZONE, 64, 0xab);
    assert!(log.contains("Right Redzone overwritten"), "{log}");
    assert!(log.contains("First byte 0xab instead of 0xbb"), "{log}");
}

/// slub_kunit: test_kmalloc_redzone_access.
#[test]
fn kunit_kmalloc_redzone_access() {
    let m = SlubMachine::small();
    let s = test_kmem_cache_create(
        &m,
        "TestSlub_RZ_kmalloc",
        32,
        SLAB_KMALLOC | SLAB_STORE_USER | SLAB_RED_ZONE,
    );
    let p = m.slub.kmalloc_trace(s, GFP_KERNEL, 18);
    // SAFETY: bytes past the request but inside the object.
    unsafe {
        *p.add(18) = 0xab;
        *p.add(19) = 0xab;
    }
    take_captured();
    m.slub.validate_slab_cache(s);
    assert_eq!(m.slub.slab_errors(), 2);
    let log = take_captured();
    assert!(
        log.contains("BUG TestSlub_RZ_kmalloc (Not tainted): kmalloc Redzone overwritten"),
        "{log}"
    );
    assert!(log.contains("@offset="), "{log}");
    assert!(
        log.contains("Allocated in src/mm/slub/tests.rs:"),
        "store-user tracking: {log}"
    );
    // SAFETY: ours.
    unsafe {
        m.slub.kmem_cache_free(s, p);
        m.slub.kmem_cache_destroy(s);
    }
}

/// slub_kunit: test_kfree_rcu.
#[test]
fn kunit_kfree_rcu() {
    let m = SlubMachine::small();
    let s = test_kmem_cache_create(&m, "TestSlub_kfree_rcu", 16, SLAB_NO_MERGE);
    let p = m.slub.kmem_cache_alloc(s, GFP_KERNEL);
    // SAFETY: a live object with room for its rcu_head at 0; the cache is ours.
    unsafe {
        m.slub.kfree_rcu(p, 0);
        m.slub.kmem_cache_destroy(s);
    }
    assert_eq!(m.slub.slab_errors(), 0);
    assert!(!take_captured().contains("still has objects"));
}

/// slub_kunit: test_kfree_rcu_wq_destroy — create, kfree_rcu, destroy from another
/// thread, many times.
#[test]
fn kunit_kfree_rcu_wq_destroy() {
    let m = SlubMachine::small();
    let slub: &SlubAllocator = &m.slub;
    for _ in 0..20 {
        let s = slub
            .kmem_cache_create(
                "TestSlub_kfree_rcu_wq_destroy",
                16,
                0,
                SLAB_NO_MERGE | SLAB_NO_USER_FLAGS,
                None,
            )
            .unwrap();
        let p = slub.kmem_cache_alloc(s, GFP_KERNEL);
        // SAFETY: a live object with room for its rcu_head.
        unsafe { slub.kfree_rcu(p, 0) };
        std::thread::scope(|t| {
            t.spawn(|| {
                // SAFETY: the cache is ours; the work item is its last user.
                unsafe { slub.kmem_cache_destroy(s) }
            });
        });
    }
    assert_eq!(m.slub.slab_errors(), 0);
}

/// slub_kunit: test_leak_destroy — destroy with a live object is refused and reported.
#[test]
fn kunit_leak_destroy() {
    let m = SlubMachine::small();
    let s = test_kmem_cache_create(&m, "TestSlub_leak_destroy", 64, SLAB_NO_MERGE);
    let p = m.slub.kmem_cache_alloc(s, GFP_KERNEL);
    take_captured();
    // SAFETY: the cache stays (the destroy is refused), as Linux leaves it.
    unsafe { m.slub.kmem_cache_destroy(s) };
    assert_eq!(m.slub.slab_errors(), 2);
    let log = take_captured();
    assert!(
        log.contains("BUG TestSlub_leak_destroy (Not tainted): Objects remaining in TestSlub_leak_destroy on __kmem_cache_shutdown()"),
        "{log}"
    );
    let off = p as usize - (p as usize & !(PAGE_SZ - 1));
    assert!(
        log.contains(&format!("Object 0x{:016x} @offset={}", p as usize, off)),
        "{log}"
    );
    assert!(log.contains("kmem_cache_destroy TestSlub_leak_destroy: Slab cache still has objects when called from"), "{log}");
    // The cache is still there, in /proc/slabinfo.
    let mut out = String::new();
    m.slub.slabinfo(&mut out).unwrap();
    assert!(out.contains("TestSlub_leak_destroy"));
}

/// slub_kunit: test_krealloc_redzone_zeroing.
#[test]
fn kunit_krealloc_redzone_zeroing() {
    let m = SlubMachine::small();
    let s = test_kmem_cache_create(
        &m,
        "TestSlub_krealloc",
        64,
        SLAB_KMALLOC | SLAB_STORE_USER | SLAB_RED_ZONE,
    );
    let mut p = m.slub.kmalloc_trace(s, GFP_KERNEL, 48);
    // SAFETY: the object and its reallocations are ours.
    unsafe {
        ptr::write_bytes(p, 0xff, 48);
        // Test shrink.
        p = m.slub.krealloc(p, 40, GFP_KERNEL | __GFP_ZERO);
        for i in 40..64 {
            assert_eq!(*p.add(i), SLUB_RED_ACTIVE, "byte {i}");
        }
        // Test grow within the same 64B kmalloc object.
        p = m.slub.krealloc(p, 56, GFP_KERNEL | __GFP_ZERO);
        for i in 40..56 {
            assert_eq!(*p.add(i), 0);
        }
        for i in 56..64 {
            assert_eq!(*p.add(i), SLUB_RED_ACTIVE);
        }
        m.slub.validate_slab_cache(s);
        assert_eq!(m.slub.slab_errors(), 0);
        ptr::write_bytes(p, 0xff, 56);
        // Test grow with allocating a bigger 128B object.
        p = m.slub.krealloc(p, 112, GFP_KERNEL | __GFP_ZERO);
        for i in 0..56 {
            assert_eq!(*p.add(i), 0xff);
        }
        for i in 56..112 {
            assert_eq!(*p.add(i), 0);
        }
        m.slub.kfree(p);
        m.slub.validate_slab_cache(s);
        assert_eq!(m.slub.slab_errors(), 0);
        m.slub.kmem_cache_destroy(s);
    }
}

/// The taint in later reports, as Linux's print_tainted() shows TAINT_BAD_PAGE.
#[test]
fn second_report_is_tainted() {
    let m = SlubMachine::small();
    let s = test_kmem_cache_create(&m, "TestSlub_taint", 64, SLAB_RED_ZONE);
    let p = m.slub.kmem_cache_alloc(s, GFP_KERNEL);
    for _ in 0..2 {
        // SAFETY: the right red zone, inside the slab.
        unsafe { *p.add(64) = 0x12 };
        m.slub.validate_slab_cache(s);
    }
    let log = take_captured();
    assert!(
        log.contains("BUG TestSlub_taint (Tainted: G    B            ): Right Redzone overwritten"),
        "{log}"
    );
}

/// With `F`, a double free is caught before it corrupts the freelist.
#[test]
fn double_free_is_refused_with_consistency_checks() {
    let m = SlubMachine::small();
    let s = test_kmem_cache_create(
        &m,
        "TestSlub_double",
        64,
        SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE,
    );
    let p = m.slub.kmem_cache_alloc(s, GFP_KERNEL);
    let q = m.slub.kmem_cache_alloc(s, GFP_KERNEL);
    take_captured();
    // SAFETY: deliberately freeing twice: the checks must catch the second.
    unsafe {
        m.slub.kmem_cache_free(s, p);
        m.slub.kmem_cache_free(s, p);
    }
    let log = take_captured();
    assert!(
        log.contains("BUG TestSlub_double (Not tainted): Object already free"),
        "{log}"
    );
    assert!(log.contains("FIX TestSlub_double: Object at 0x"), "{log}");
    m.slub.reset_slab_errors();
    m.slub.validate_slab_cache(s);
    assert_eq!(m.slub.slab_errors(), 0, "{}", take_captured());
    // SAFETY: q is live.
    unsafe { m.slub.kmem_cache_free(s, q) };
}

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

/// The `SLUB:` line for each machine of the Linux fixtures.
#[test]
fn slub_line_matches_linux_fixtures() {
    let fixtures = [
        include_str!("../../../tests/fixtures/linux-6.1/a_128M_smp1.log"),
        include_str!("../../../tests/fixtures/linux-6.1/c_4G_smp2.log"),
        include_str!("../../../tests/fixtures/linux-6.1/f_4G_numa2.log"),
        include_str!("../../../tests/fixtures/linux-6.1/m_2G_numa2.log"),
        include_str!("../../../tests/fixtures/linux-6.1/o_4G_numa4.log"),
        include_str!("../../../tests/fixtures/linux-6.1/q_4G_numa2_numaoff.log"),
    ];
    let machines = [(1, 1), (2, 1), (2, 2), (2, 2), (4, 4), (2, 1)];
    for (log, (cpus, nodes)) in fixtures.iter().zip(machines) {
        let linux = log
            .lines()
            .find_map(|l| l.find("SLUB: ").map(|i| &l[i..]))
            .expect("a SLUB: line");
        let m = SlubMachine::with_params(16 * nodes as usize, SlubParams::new(cpus, nodes, 7));
        let mine = take_captured();
        let line = mine
            .lines()
            .find_map(|l| l.find("SLUB: ").map(|i| &l[i..]))
            .unwrap();
        assert_eq!(line, linux);
        assert_eq!(SlubInfoLine(&m.slub.params).to_string(), linux);
    }
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

/// slub_debug= parsing and per-cache matching (Linux's setup_slub_debug()).
#[test]
fn slub_debug_option() {
    let p = SlubParams::new(1, 1, 0).with_slub_debug(Some("FZ,kmalloc-64,kmalloc-1*"));
    assert_eq!(p.slub_debug, 0, "a slab list leaves the global flags alone");
    assert_eq!(
        kmem_cache_flags(&p, 0, "kmalloc-64"),
        SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE
    );
    assert_eq!(
        kmem_cache_flags(&p, 0, "kmalloc-128"),
        SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE
    );
    assert_eq!(kmem_cache_flags(&p, 0, "kmalloc-32"), 0);
    let p = SlubParams::new(1, 1, 0).with_slub_debug(Some("P;U,dentry"));
    assert_eq!(p.slub_debug, SLAB_POISON);
    assert_eq!(kmem_cache_flags(&p, 0, "dentry"), SLAB_STORE_USER);
    assert_eq!(kmem_cache_flags(&p, 0, "inode"), SLAB_POISON);
    assert_eq!(
        kmem_cache_flags(&p, SLAB_NO_USER_FLAGS, "inode"),
        SLAB_NO_USER_FLAGS
    );
    let p = SlubParams::new(1, 1, 0).with_slub_debug(Some("-"));
    assert_eq!(p.slub_debug, 0);
    let p = SlubParams::new(1, 1, 0).with_slub_debug(Some(",kmalloc-8"));
    assert_eq!(kmem_cache_flags(&p, 0, "kmalloc-8"), DEBUG_DEFAULT_FLAGS);
    let p = SlubParams::new(1, 1, 0).with_slub_debug(Some("FZPUO"));
    assert!(p.disable_higher_order_debug);
    take_captured();
    let _ = SlubParams::new(1, 1, 0).with_slub_debug(Some("Q"));
    assert!(take_captured().contains("slub_debug option 'Q' unknown. skipped"));
    // `O`: a cache whose debug metadata would raise its minimum order gets none.
    let mut p = SlubParams::new(1, 1, 0).with_slub_debug(Some("FZPUO"));
    p.kmalloc_min_size = 8;
    let m = SlubMachine::with_params(32, p);
    assert_eq!(
        m.slub.find_cache("kmalloc-4k").unwrap().flags & DEBUG_METADATA_FLAGS,
        0
    );
    assert_ne!(
        m.slub.find_cache("kmalloc-64").unwrap().flags & DEBUG_METADATA_FLAGS,
        0
    );
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

/// Out of memory: NULL and Linux's report.
#[test]
fn out_of_memory_report() {
    let m = SlubMachine::small();
    let s = m
        .slub
        .kmem_cache_create("oom", 2000, 0, SLAB_NO_MERGE, None)
        .unwrap();
    m.pages.fail.store(true, Ordering::Relaxed);
    take_captured();
    assert!(m.slub.kmem_cache_alloc(s, GFP_KERNEL).is_null());
    let log = take_captured();
    assert!(
        log.contains("SLUB: Unable to allocate memory on node -1, gfp=0xcc0(GFP_KERNEL)"),
        "{log}"
    );
    assert!(
        log.contains(
            "  cache: oom, object size: 2000, buffer size: 2000, default order: 2, min order: 0"
        ),
        "{log}"
    );
    assert!(m
        .slub
        .kmem_cache_alloc(s, GFP_KERNEL | __GFP_NOWARN)
        .is_null());
    assert!(take_captured().is_empty());
    m.pages.fail.store(false, Ordering::Relaxed);
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
