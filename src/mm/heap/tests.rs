//! Host unit tests of `src/mm/heap.rs` (`cargo hosttest`), on the shared scaffold
//! `mm::testing` (simulated RAM and a machine builder).

use super::*;
use crate::mm::slub::SlubParams;
use crate::mm::testing::SlubMachine;

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

/// Before slab: the early heap; after: kmalloc; frees go to the owner either way.
#[test]
fn dispatch_early_then_slab() {
    let region: &'static mut [u64] = Box::leak(vec![0u64; 1 << 17].into_boxed_slice()); // 1 MiB
    let (start, size) = (region.as_mut_ptr() as usize, region.len() * 8);
    let m = SlubMachine::with_params(64, SlubParams::new(2, 1, 3));
    let slub: &'static SlubAllocator<'static> = Box::leak(m.slub);
    let h: HeapDispatch<'static> = HeapDispatch::new();
    assert!(
        h.allocate(layout(16, 8), false).is_null(),
        "no memory before early_heap_init"
    );
    // SAFETY: the region is ours for the test's life.
    unsafe { h.early_heap_init(start, size) };
    let early: Vec<*mut u8> = (0..100)
        .map(|i| h.allocate(layout(8 + i * 24, 8), false))
        .collect();
    for &p in &early {
        assert_eq!(h.owner(p), Owner::Early);
        assert!((start..start + size).contains(&(p as usize)));
    }
    let z = h.allocate(layout(64, 64), true);
    // SAFETY: 64 zeroed bytes.
    assert!(unsafe { core::slice::from_raw_parts(z, 64) }
        .iter()
        .all(|&b| b == 0));
    assert_eq!(z as usize % 64, 0);

    h.slab_ready(slub);
    m.pages.pages_out();
    let late = h.allocate(layout(100, 8), false);
    assert_eq!(h.owner(late), Owner::Slab);
    assert_eq!(slub.ksize(late), 128, "kmalloc-128 on arm64 6.1");
    // Early blocks freed after the switch go back to the early heap.
    for (i, p) in early.into_iter().enumerate() {
        // SAFETY: allocated above with this layout.
        unsafe { h.deallocate(p, layout(8 + i * 24, 8)) };
    }
    // SAFETY: as above.
    unsafe { h.deallocate(z, layout(64, 64)) };
    assert_eq!(h.early_in_use(), 0);
    // SAFETY: as above.
    unsafe { h.deallocate(late, layout(100, 8)) };
}

/// Alignments 8 ... 8192 through the kmalloc rule, zeroing, realloc, and every page back.
#[test]
fn alignment_rule_and_realloc() {
    let m = SlubMachine::with_params(64, SlubParams::new(1, 1, 4));
    let pages = m.pages;
    let slub: &'static SlubAllocator<'static> = Box::leak(m.slub);
    let h: HeapDispatch<'static> = HeapDispatch::new();
    h.slab_ready(slub);
    let shrink = || {
        for info in crate::mm::slab_common::KMALLOC_INFO.iter().skip(1) {
            if let Some(s) = slub.find_cache(info.name[0]) {
                slub.kmem_cache_shrink(s);
            }
        }
    };
    shrink();
    let base = pages.pages_out();
    let mut live = Vec::new();
    for shift in 3..=13 {
        let align = 1usize << shift;
        for size in [1, 24, 200, 3000, 9000] {
            let l = layout(size, align);
            let p = h.allocate(l, true);
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0, "size {size} align {align}");
            // SAFETY: `size` zeroed bytes.
            assert!(unsafe { core::slice::from_raw_parts(p, size) }
                .iter()
                .all(|&b| b == 0));
            live.push((p, l));
        }
    }
    // Realloc keeps the contents and the alignment.
    let l = layout(40, 8);
    let p = h.allocate(l, false);
    // SAFETY: 40 bytes, then reallocations of the same block.
    unsafe {
        ptr::write_bytes(p, 0x3c, 40);
        let q = h.reallocate(p, l, 5000);
        assert!(core::slice::from_raw_parts(q, 40)
            .iter()
            .all(|&b| b == 0x3c));
        let r = h.reallocate(q, layout(5000, 8), 50_000);
        assert!(core::slice::from_raw_parts(r, 40)
            .iter()
            .all(|&b| b == 0x3c));
        let big = layout(300, 1024);
        let a = h.allocate(big, false);
        let b = h.reallocate(a, big, 3000);
        assert_eq!(b as usize % 1024, 0);
        live.push((r, layout(50_000, 8)));
        live.push((b, layout(3000, 1024)));
    }
    for (p, l) in live {
        // SAFETY: allocated above with this layout.
        unsafe { h.deallocate(p, l) };
    }
    shrink();
    assert_eq!(pages.pages_out(), base);
}

/// A stand-in for vmalloc: host memory, remembered by address.
static VMAP: std::sync::Mutex<Vec<(usize, Layout)>> = std::sync::Mutex::new(Vec::new());
fn test_vmalloc(size: usize, align: usize) -> *mut u8 {
    let l = Layout::from_size_align(size, align.max(PAGE_ALIGN)).unwrap();
    // SAFETY: a non-zero layout.
    let p = unsafe { std::alloc::alloc(l) };
    VMAP.lock().unwrap().push((p as usize, l));
    p
}
fn test_vfree(p: *mut u8) {
    let mut v = VMAP.lock().unwrap();
    let i = v
        .iter()
        .position(|&(a, _)| a == p as usize)
        .expect("vfree of a non-vmalloc address");
    let (_, l) = v.swap_remove(i);
    // SAFETY: allocated by test_vmalloc with this layout.
    unsafe { std::alloc::dealloc(p, l) };
}
fn test_is_vmalloc_addr(p: *const u8) -> bool {
    VMAP.lock()
        .unwrap()
        .iter()
        .any(|&(a, l)| (a..a + l.size()).contains(&(p as usize)))
}
const PAGE_ALIGN: usize = 4096;

/// A vector growing to 16 MiB: krealloc, large kmalloc blocks, then vmalloc above
/// KMALLOC_MAX_SIZE (what `alloc::` does in the kernel).
#[test]
fn collections_grow_through_kmalloc() {
    let m = SlubMachine::with_params(128, SlubParams::new(2, 1, 5));
    let slub: &'static SlubAllocator<'static> = Box::leak(m.slub);
    let h: &'static HeapDispatch<'static> = Box::leak(Box::new(HeapDispatch::new()));
    h.slab_ready(slub);
    assert!(
        h.allocate(layout(KMALLOC_MAX_SIZE + 1, 8), false).is_null(),
        "no vmalloc yet"
    );
    h.set_vmalloc_hooks(VmallocHooks {
        vmalloc: test_vmalloc,
        vfree: test_vfree,
        is_vmalloc_addr: test_is_vmalloc_addr,
    });
    // A growing vector: realloc through krealloc, then large kmalloc blocks.
    let (mut p, mut cap) = (h.allocate(layout(8, 8), false).cast::<u64>(), 1usize);
    for i in 0..2_000_000u64 {
        if i as usize == cap {
            // SAFETY: the block holds `cap` u64s; the new one twice that.
            p = unsafe { h.reallocate(p.cast(), layout(cap * 8, 8), cap * 16) }.cast();
            assert!(!p.is_null(), "grow to {}", cap * 16);
            cap *= 2;
        }
        // SAFETY: i < cap.
        unsafe { *p.add(i as usize) = i * 3 };
    }
    assert_eq!(h.owner(p.cast()), Owner::Vmalloc);
    // SAFETY: 2e6 initialised u64s.
    assert!((0..2_000_000usize).all(|i| unsafe { *p.add(i) } == i as u64 * 3));
    // SAFETY: allocated above.
    unsafe { h.deallocate(p.cast(), layout(cap * 8, 8)) };
    assert!(VMAP.lock().unwrap().is_empty());
}
