//! kmem_cache_init and SLUB on the real machine: the `SLUB:` line equals Linux's for the same
//! CPUs and nodes; thousands of objects across every kmalloc class keep their patterns, and
//! freeing them all (and shrinking) gives every page back to the buddy; a constructor
//! cache; alignments 8..4096; Rust's Vec and BTreeMap grow to tens of MiB through the global
//! allocator (kmalloc, then vmalloc above kmalloc's limit); slabinfo; init_on_alloc /
//! init_on_free zero the objects kmalloc hands out / takes back.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use arm64_mm::arch::aarch64::mm::mmu::PAGES_FOR_TABLES;
use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::boot_command_line;
use arm64_mm::mm::gfp::GFP_KERNEL;
use arm64_mm::mm::page_alloc::page_alloc;
use arm64_mm::mm::slab_common::{
    kfree, kmalloc, kmem_cache_alloc, kmem_cache_create, kmem_cache_free, kmem_cache_node_pages,
    kmem_cache_shrink_all, ksize, slab_state,
};
use arm64_mm::{check, qemu_test};
use core::sync::atomic::Ordering;

qemu_test!(
    r#"
run -m 128M --smp 1 --append "slabinfo test.meminit"
expect-output SLUB: HWalign=64, Order=0-3, MinObjects=0, CPUs=1, Nodes=1
expect-output mm: slabinfo
expect-output vmap_area
expect-output kmalloc-128
expect-output test_ctor
run -m 128M --smp 1 --append "init_on_alloc=0 test.meminit"
expect-output ] mem auto-init: stack:all(zero), heap alloc:off, heap free:off
run -m 128M --smp 1 --append "init_on_alloc=0 init_on_free=1 test.meminit"
expect-output ] mem auto-init: stack:all(zero), heap alloc:off, heap free:on
run -m 128M --smp 1 --append "slub_debug"
expect-no-output BUG 
run -m 1G --smp 1 --append "slub_min_order=99"
expect-output slub_min_order=99 is above MAX_ORDER - 1 (10); using 10
expect-output SLUB: HWalign=64, Order=10-10, MinObjects=0, CPUs=1, Nodes=1
run -m 4G --smp 2 --numa 2
expect-output SLUB: HWalign=64, Order=0-3, MinObjects=0, CPUs=2, Nodes=2
run -m 4G --smp 4 --numa 4
expect-output SLUB: HWalign=64, Order=0-3, MinObjects=0, CPUs=4, Nodes=4
"#
);

const SIZES: [usize; 14] = [
    1, 8, 64, 96, 128, 192, 256, 512, 1000, 1024, 2048, 4096, 8192, 20000,
];

fn ctor(p: *mut u8) {
    // SAFETY: SLUB calls the constructor on a fresh object of the cache's size (64).
    unsafe { core::ptr::write_bytes(p, 0x5a, 64) };
}

#[no_mangle]
pub fn kernel_init() -> ! {
    let pa = page_alloc().expect("buddy");
    check!(
        arm64_mm::mm::slab_common::slab_is_available(),
        "slab is available ({:?})",
        slab_state()
    );

    if boot_command_line().contains("test.meminit") {
        let m = pa.meminit();
        meminit_objects(m.init_on_alloc, m.init_on_free);
    }

    // The bookkeeping array (too big for the 64 KiB boot stack) comes from the heap too.
    const N: usize = 6000;
    // A constructor cache, made before the page count is taken (caches live forever).
    let c = kmem_cache_create("test_ctor", 64, 64, 0, Some(ctor)).expect("cache");
    kmem_cache_shrink_all();
    pa.drain_all_pages(None);
    let free0 = pa.nr_free_pages();
    let mut objs: Vec<(*mut u8, usize)> = Vec::with_capacity(N);

    // Stress: 6000 objects across all classes, each filled with a pattern.
    let mut ok_patterns = true;
    for i in 0..N {
        let size = SIZES[i % SIZES.len()];
        let p = kmalloc(size, GFP_KERNEL);
        assert!(!p.is_null(), "kmalloc({}) failed", size);
        // SAFETY: kmalloc returned `size` usable bytes.
        unsafe { core::ptr::write_bytes(p, (i & 0xff) as u8, size) };
        objs.push((p, size));
    }
    for (i, &(p, size)) in objs.iter().enumerate() {
        // SAFETY: still allocated.
        let bytes = unsafe { core::slice::from_raw_parts(p, size) };
        ok_patterns &= bytes.iter().all(|&b| b == (i & 0xff) as u8) && ksize(p) >= size;
    }
    check!(
        ok_patterns,
        "{} objects across every kmalloc class keep their patterns",
        N
    );
    for &(p, _) in objs.iter() {
        // SAFETY: each object is freed once.
        unsafe { kfree(p) };
    }

    drop(objs);

    // Constructor and alignments.
    let o = kmem_cache_alloc(c, GFP_KERNEL);
    // SAFETY: a 64-byte object of the cache.
    let constructed = unsafe { core::slice::from_raw_parts(o, 64) }
        .iter()
        .all(|&b| b == 0x5a);
    check!(
        constructed && (o as usize).is_multiple_of(64),
        "the constructor ran and the object is 64-byte aligned"
    );
    // SAFETY: the object came from `c`.
    unsafe { kmem_cache_free(c, o) };
    for shift in 3..=12 {
        let align = 1usize << shift;
        let layout = core::alloc::Layout::from_size_align(align, align).unwrap();
        // SAFETY: a non-zero layout.
        let p = unsafe { alloc::alloc::alloc(layout) };
        check!(
            !p.is_null() && (p as usize).is_multiple_of(align),
            "alignment {} honoured",
            align
        );
        // SAFETY: allocated above with the same layout.
        unsafe { alloc::alloc::dealloc(p, layout) };
    }

    kmem_cache_shrink_all();
    pa.drain_all_pages(None);
    check!(
        pa.nr_free_pages() == free0,
        "after freeing and shrinking every page is back ({} / {})",
        pa.nr_free_pages(),
        free0
    );

    // Rust collections through the global allocator. What may stay afterwards, as in
    // Linux: the page tables made for the vmalloc range (kept once made) and the slabs of
    // the vmap_area cache that hold the free-space tree's nodes. Both are counted, so every
    // other page must be back exactly.
    let tables0 = PAGES_FOR_TABLES.load(Ordering::Relaxed);
    let va0 = vmap_area_pages();
    let mut v: Vec<u64> = Vec::new();
    for i in 0..(4u64 << 20) {
        v.push(i);
    }
    let wrong = v
        .iter()
        .enumerate()
        .filter(|&(i, &x)| x != i as u64)
        .count();
    check!(
        v.len() == 4 << 20 && wrong == 0,
        "a Vec of 32 MiB grown by push: every element read back ({} wrong)",
        wrong
    );
    drop(v);
    // 2654435761 is not a multiple of the prime 1000003, so the 200000 keys are distinct.
    let key = |i: u64| i.wrapping_mul(2654435761) % 1_000_003;
    let mut m = BTreeMap::new();
    for i in 0..200_000u64 {
        m.insert(key(i), i);
    }
    let lost = (0..200_000u64)
        .filter(|&i| m.get(&key(i)) != Some(&i))
        .count();
    check!(
        m.len() == 200_000 && lost == 0 && m.keys().zip(m.keys().skip(1)).all(|(a, b)| a < b),
        "a BTreeMap of {} entries: every key finds its value ({} lost), keys in order",
        m.len(),
        lost
    );
    drop(m);
    arm64_mm::mm::vmalloc::api::purge_vmap_area_lazy();
    kmem_cache_shrink_all();
    pa.drain_all_pages(None);
    let tables = (PAGES_FOR_TABLES.load(Ordering::Relaxed) - tables0) as i64;
    let va = vmap_area_pages() - va0;
    let leaked = free0 as i64 - pa.nr_free_pages() as i64;
    check!(
        leaked == tables + va,
        "collections freed: {} pages short of the start = {} new vmalloc page-table pages + {} \
         vmap_area slab pages",
        leaked,
        tables,
        va
    );
    arm64_mm::mm::slab_common::slabinfo_show();
    ktest::finish()
}

/// For each kmalloc class of SIZES: an object dirtied and freed reads zero but for its free
/// pointer's word exactly when init_on_free is on; allocated again (the same object: the
/// CPU freelist is LIFO) it reads zero exactly when either switch is on.
fn meminit_objects(init_on_alloc: bool, init_on_free: bool) {
    for &size in SIZES.iter().filter(|&&s| s <= 8192) {
        let p = kmalloc(size, GFP_KERNEL);
        // SAFETY: `size` bytes of ours; after the kfree the object stays mapped in its
        // (CPU) slab, and nothing allocates before it is read.
        let left = unsafe {
            core::ptr::write_bytes(p, 0xa5, size);
            kfree(p);
            core::slice::from_raw_parts(p, size)
                .iter()
                .filter(|&&b| b != 0)
                .count()
        };
        check!(
            (left <= 8) == init_on_free || size <= 8,
            "kmalloc-{}: {} of {} bytes non-zero after kfree (init_on_free {})",
            ksize(p),
            left,
            size,
            init_on_free
        );
        let q = kmalloc(size, GFP_KERNEL);
        // SAFETY: `size` bytes of a live object.
        let dirty = unsafe { core::slice::from_raw_parts(q, size) }
            .iter()
            .filter(|&&b| b != 0)
            .count();
        check!(
            q == p && (dirty == 0) == (init_on_alloc || init_on_free),
            "kmalloc-{}: allocated again, {} bytes non-zero (init_on_alloc {}, init_on_free {})",
            ksize(q),
            dirty,
            init_on_alloc,
            init_on_free
        );
        // SAFETY: live, freed once.
        unsafe { kfree(q) };
    }
}

/// The pages of the vmap_area cache's slabs, on every node.
fn vmap_area_pages() -> i64 {
    let mut pages = [0u64; 16];
    kmem_cache_node_pages("vmap_area", &mut pages);
    pages.iter().sum::<u64>() as i64
}
