//! Host unit tests of `src/mm/slub/meminit.rs`: SLUB's init_on_alloc / init_on_free over
//! machines of their own (the switches are SlubParams fields).

use crate::mm::gfp::GFP_KERNEL;
use crate::mm::slab_common::KMALLOC_INFO;
use crate::mm::slub::SlubParams;
use crate::mm::testing::SlubMachine;

fn machine(init_on_alloc: bool, init_on_free: bool) -> SlubMachine {
    let mut p = SlubParams::new(1, 1, 0x1234_5678).with_meminit(init_on_alloc, init_on_free);
    p.kmalloc_min_size = 8;
    SlubMachine::with_params(64, p)
}

/// Every kmalloc class's object size.
fn kmalloc_sizes() -> impl Iterator<Item = usize> {
    KMALLOC_INFO.iter().map(|k| k.size).filter(|&s| s >= 8)
}

/// kmalloc(size), dirty the object, kfree, kmalloc again: the same object (LIFO).
fn dirty_and_realloc(m: &SlubMachine, size: usize) -> *mut u8 {
    let p = m.slub.kmalloc(size, GFP_KERNEL);
    assert!(!p.is_null());
    // SAFETY: `size` bytes we own.
    unsafe { core::ptr::write_bytes(p, 0xa5, size) };
    // SAFETY: live, from kmalloc.
    unsafe { m.slub.kfree(p) };
    let q = m.slub.kmalloc(size, GFP_KERNEL);
    assert_eq!(q, p, "size {size}: not the object just freed");
    q
}

fn obj(p: *mut u8, size: usize) -> &'static [u8] {
    // SAFETY: an object of at least `size` bytes in the leaked simulated RAM.
    unsafe { core::slice::from_raw_parts(p, size) }
}

#[test]
fn init_on_alloc_hands_out_zeroed_objects_of_every_kmalloc_class() {
    let off = machine(false, false);
    let on = machine(true, false);
    for size in kmalloc_sizes() {
        // The control: without the switch the dirt (all but the free pointer) comes back.
        let p = dirty_and_realloc(&off, size);
        assert!(obj(p, size).iter().filter(|&&b| b == 0xa5).count() >= size - 8);
        let q = dirty_and_realloc(&on, size);
        assert!(obj(q, size).iter().all(|&b| b == 0), "size {size}");
        // SAFETY: live objects.
        unsafe {
            off.slub.kfree(p);
            on.slub.kfree(q);
        }
    }
}

#[test]
fn init_on_free_zeroes_freed_objects_but_the_free_pointer() {
    let m = machine(false, true);
    for size in kmalloc_sizes() {
        let s = m.slub.kmalloc_slab(size, GFP_KERNEL).unwrap();
        let offset = s.offset as usize;
        // Two objects, so that the freed one's free pointer is not NULL... or is: the
        // hardened pointer is neither, so the slot is compared by position only.
        let p = m.slub.kmalloc(size, GFP_KERNEL);
        // SAFETY: ours.
        unsafe { core::ptr::write_bytes(p, 0x5a, size) };
        // SAFETY: live.
        unsafe { m.slub.kfree(p) };
        for (i, &b) in obj(p, size).iter().enumerate() {
            if !(offset..offset + 8).contains(&i) {
                assert_eq!(b, 0, "size {size}: byte {i} after free");
            }
        }
        // maybe_wipe_obj_freeptr(): allocated again, the free pointer slot is cleared too.
        let q = m.slub.kmalloc(size, GFP_KERNEL);
        assert_eq!(q, p);
        assert!(obj(q, size).iter().all(|&b| b == 0), "size {size}");
        // SAFETY: live.
        unsafe { m.slub.kfree(q) };
    }
}

#[test]
fn caches_with_a_constructor_are_left_alone() {
    fn ctor(p: *mut u8) {
        // SAFETY: SLUB hands the constructor a whole object of 64 bytes.
        unsafe { core::ptr::write_bytes(p, 0x77, 64) };
    }
    let m = machine(true, true);
    let s = m
        .slub
        .kmem_cache_create("meminit_ctor", 64, 0, 0, Some(ctor))
        .unwrap();
    let p = m.slub.kmem_cache_alloc(s, GFP_KERNEL);
    assert!(obj(p, 64).iter().all(|&b| b == 0x77));
    // SAFETY: live, from s.
    unsafe { m.slub.kmem_cache_free(s, p) };
    let q = m.slub.kmem_cache_alloc(s, GFP_KERNEL);
    assert_eq!(q, p);
    assert!(
        obj(q, 64).iter().all(|&b| b == 0x77),
        "neither zeroed on free nor on alloc"
    );
}
