//! Host unit tests of `src/mm/slab.rs` (`cargo hosttest`).

use super::*;
use crate::mm::gfp::{GFP_DMA, GFP_KERNEL};

#[test]
fn fls_and_get_order() {
    assert_eq!(fls(0), 0);
    assert_eq!(fls(1), 1);
    assert_eq!(fls(0x8000_0000), 32);
    let page = PAGE_SIZE as usize;
    assert_eq!(get_order(1), 0);
    assert_eq!(get_order(page), 0);
    assert_eq!(get_order(page + 1), 1);
    assert_eq!(get_order(2 * page), 1);
    assert_eq!(get_order(2 * page + 1), 2);
    assert_eq!(
        get_order(KMALLOC_MAX_SIZE),
        KMALLOC_SHIFT_MAX as u32 - super::super::PAGE_SHIFT
    );
}

#[test]
fn kmalloc_limits() {
    // 4 KiB pages: kmalloc caches up to 8 KiB, kmalloc up to 4 MiB (the buddy's largest block).
    assert_eq!(KMALLOC_MAX_CACHE_SIZE, 2 * PAGE_SIZE as usize);
    assert_eq!(KMALLOC_MAX_SIZE, 4 << 20);
    assert!(zero_or_null_ptr(core::ptr::null()));
    assert!(zero_or_null_ptr(ZERO_SIZE_PTR));
    assert!(!zero_or_null_ptr(ZERO_SIZE_PTR.wrapping_add(1)));
}

#[test]
fn kmalloc_types() {
    assert_eq!(kmalloc_type(GFP_KERNEL), KmallocCacheType::Normal);
    assert_eq!(
        kmalloc_type(GFP_KERNEL | __GFP_RECLAIMABLE),
        KmallocCacheType::Reclaim
    );
    assert_eq!(kmalloc_type(GFP_DMA), KmallocCacheType::Dma);
    // DMA wins over reclaimable, as in Linux.
    assert_eq!(
        kmalloc_type(GFP_DMA | __GFP_RECLAIMABLE),
        KmallocCacheType::Dma
    );
}

#[test]
fn alignment() {
    // SLAB_HWCACHE_ALIGN halves the cache line while the object fits twice.
    assert_eq!(calculate_alignment(SLAB_HWCACHE_ALIGN, 0, 24, 64), 32);
    assert_eq!(calculate_alignment(SLAB_HWCACHE_ALIGN, 0, 100, 64), 64);
    assert_eq!(calculate_alignment(SLAB_HWCACHE_ALIGN, 0, 8, 64), 8);
    // Without it: the requested alignment, at least ARCH_SLAB_MINALIGN (8).
    assert_eq!(calculate_alignment(0, 0, 24, 64), 8);
    assert_eq!(calculate_alignment(0, 256, 24, 64), 256);
}

#[test]
fn size_index_table() {
    // KMALLOC_MIN_SIZE 8: Linux's initial table is kept.
    let mut t = SIZE_INDEX_INIT;
    setup_kmalloc_cache_index_table(&mut t, 8);
    assert_eq!(t, SIZE_INDEX_INIT);
    // arm64 6.1 (128): 1..=128 -> kmalloc-128 (index 7), 129..=192 -> kmalloc-256 (8).
    let mut t = SIZE_INDEX_INIT;
    setup_kmalloc_cache_index_table(&mut t, ARM64_KMALLOC_MIN_SIZE);
    for size in (8..=192).step_by(8) {
        let want = if size <= 128 { 7 } else { 8 };
        assert_eq!(t[size_index_elem(size)], want, "size {size}");
    }
}
