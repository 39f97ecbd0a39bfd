//! Host unit tests of `src/mm/slub/debug.rs` (`cargo hosttest`), on the shared scaffold
//! `mm::testing` (simulated RAM and a machine builder).

use super::*;
use crate::kernel::printk::take_captured;
use crate::mm::gfp::{__GFP_ZERO, GFP_KERNEL};
use crate::mm::slab::{
    SlabFlags, SLAB_CONSISTENCY_CHECKS, SLAB_KMALLOC, SLAB_NO_MERGE, SLAB_NO_USER_FLAGS,
    SLAB_POISON, SLAB_RED_ZONE, SLAB_STORE_USER,
};
use crate::mm::slub::KmemCache;
use crate::mm::testing::SlubMachine;

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
        log.contains("Allocated in src/mm/slub/debug/tests.rs:"),
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
