//! The slab layer's shared names, below both SLUB and the kmalloc layer: the `SLAB_*` cache
//! flags, the kmalloc size-class constants (`KMALLOC_*`, `ZERO_SIZE_PTR`, `kmalloc_type()`),
//! the initial `size_index[]` table, `calculate_alignment()`, the constructor type and
//! `struct slabinfo`. Mirrors Linux 6.1's include/linux/slab.h and mm/slab.h (plus the few
//! helpers of mm/slab_common.c and the bitops that both slub.rs and slab_common.rs use).
//!
//! Imports only constants (page size, `MAX_ORDER`, the gfp bits): slub.rs builds on it,
//! slab_common.rs on both, heap.rs on all three.

use super::addr::{PAGE_SHIFT, PAGE_SIZE};
use crate::mm::gfp::{GfpT, __GFP_DMA, __GFP_RECLAIMABLE};

// ---------------------------------------------------------------------------------------------
// Cache flags (include/linux/slab.h, 6.1; `slab_flags_t`).

/// Linux: slab_flags_t.
pub type SlabFlags = u32;
/// Linux: SLAB_CONSISTENCY_CHECKS — `F` in `slub_debug=`.
pub const SLAB_CONSISTENCY_CHECKS: SlabFlags = 0x0000_0100;
/// Linux: SLAB_RED_ZONE — `Z`.
pub const SLAB_RED_ZONE: SlabFlags = 0x0000_0400;
/// Linux: SLAB_POISON — `P`.
pub const SLAB_POISON: SlabFlags = 0x0000_0800;
/// Linux: SLAB_KMALLOC — a kmalloc cache (its objects remember the requested size when
/// `SLAB_STORE_USER` is on).
pub const SLAB_KMALLOC: SlabFlags = 0x0000_1000;
/// Linux: SLAB_HWCACHE_ALIGN.
pub const SLAB_HWCACHE_ALIGN: SlabFlags = 0x0000_2000;
/// Linux: SLAB_CACHE_DMA.
pub const SLAB_CACHE_DMA: SlabFlags = 0x0000_4000;
/// Linux: SLAB_CACHE_DMA32.
pub const SLAB_CACHE_DMA32: SlabFlags = 0x0000_8000;
/// Linux: SLAB_STORE_USER — `U`.
pub const SLAB_STORE_USER: SlabFlags = 0x0001_0000;
/// Linux: SLAB_RECLAIM_ACCOUNT.
pub const SLAB_RECLAIM_ACCOUNT: SlabFlags = 0x0002_0000;
/// Linux: SLAB_PANIC.
pub const SLAB_PANIC: SlabFlags = 0x0004_0000;
/// Linux: SLAB_TYPESAFE_BY_RCU (accepted; no RCU readers exist here).
pub const SLAB_TYPESAFE_BY_RCU: SlabFlags = 0x0008_0000;
/// Linux: SLAB_MEM_SPREAD.
pub const SLAB_MEM_SPREAD: SlabFlags = 0x0010_0000;
/// Linux: SLAB_TRACE — `T`.
pub const SLAB_TRACE: SlabFlags = 0x0020_0000;
/// Linux: SLAB_DEBUG_OBJECTS.
pub const SLAB_DEBUG_OBJECTS: SlabFlags = 0x0040_0000;
/// Linux: SLAB_NOLEAKTRACE.
pub const SLAB_NOLEAKTRACE: SlabFlags = 0x0080_0000;
/// Linux 6.5: SLAB_NO_MERGE (the later slub_kunit cases need it; 6.1 had only slab_nomerge).
pub const SLAB_NO_MERGE: SlabFlags = 0x0100_0000;
/// Linux: SLAB_FAILSLAB — `A`.
pub const SLAB_FAILSLAB: SlabFlags = 0x0200_0000;
/// Linux: SLAB_ACCOUNT.
pub const SLAB_ACCOUNT: SlabFlags = 0x0400_0000;
/// Linux: SLAB_NO_USER_FLAGS — `slub_debug=` does not apply to this cache.
pub const SLAB_NO_USER_FLAGS: SlabFlags = 0x1000_0000;
/// Linux: SLAB_SKIP_KFENCE.
pub const SLAB_SKIP_KFENCE: SlabFlags = 0x2000_0000;
/// Linux: SLAB_TEMPORARY (= SLAB_RECLAIM_ACCOUNT).
pub const SLAB_TEMPORARY: SlabFlags = SLAB_RECLAIM_ACCOUNT;

/// Linux: SLAB_CORE_FLAGS (mm/slab.h).
pub const SLAB_CORE_FLAGS: SlabFlags = SLAB_HWCACHE_ALIGN
    | SLAB_CACHE_DMA
    | SLAB_CACHE_DMA32
    | SLAB_PANIC
    | SLAB_TYPESAFE_BY_RCU
    | SLAB_DEBUG_OBJECTS;
/// Linux: SLAB_DEBUG_FLAGS (SLUB_DEBUG).
pub const SLAB_DEBUG_FLAGS: SlabFlags =
    SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER | SLAB_TRACE | SLAB_CONSISTENCY_CHECKS;
/// Linux: SLAB_CACHE_FLAGS (SLUB) — plus SLAB_NO_MERGE.
pub const SLAB_CACHE_FLAGS: SlabFlags = SLAB_NOLEAKTRACE
    | SLAB_RECLAIM_ACCOUNT
    | SLAB_TEMPORARY
    | SLAB_ACCOUNT
    | SLAB_NO_USER_FLAGS
    | SLAB_KMALLOC
    | SLAB_NO_MERGE;
/// Linux: CACHE_CREATE_MASK.
pub const CACHE_CREATE_MASK: SlabFlags = SLAB_CORE_FLAGS | SLAB_DEBUG_FLAGS | SLAB_CACHE_FLAGS;
/// Linux: SLAB_FLAGS_PERMITTED.
pub const SLAB_FLAGS_PERMITTED: SlabFlags = SLAB_CORE_FLAGS
    | SLAB_DEBUG_FLAGS
    | SLAB_MEM_SPREAD
    | SLAB_CACHE_FLAGS
    | SLAB_SKIP_KFENCE
    | SLAB_FAILSLAB;

// ---------------------------------------------------------------------------------------------
// kmalloc size classes (include/linux/slab.h for SLUB, mm/slab_common.c).

/// `KMALLOC_MIN_SIZE` = `ARCH_KMALLOC_MINALIGN` = `ARCH_DMA_MINALIGN` of Linux 6.1 on arm64.
pub const ARM64_KMALLOC_MIN_SIZE: usize = 128;
/// Linux: KMALLOC_SHIFT_HIGH (SLUB: PAGE_SHIFT + 1).
pub const KMALLOC_SHIFT_HIGH: usize = PAGE_SHIFT as usize + 1;
/// Linux: KMALLOC_MAX_CACHE_SIZE — larger requests go to the page allocator.
pub const KMALLOC_MAX_CACHE_SIZE: usize = 1 << KMALLOC_SHIFT_HIGH;
/// Linux: KMALLOC_SHIFT_MAX (MAX_ORDER + PAGE_SHIFT - 1).
pub const KMALLOC_SHIFT_MAX: usize = crate::include::mmzone::MAX_ORDER + PAGE_SHIFT as usize - 1;
/// Linux: KMALLOC_MAX_SIZE — the largest kmalloc (4 MiB).
pub const KMALLOC_MAX_SIZE: usize = 1 << KMALLOC_SHIFT_MAX;
/// Linux: ZERO_SIZE_PTR — what kmalloc(0) returns: not NULL, but faults on any access.
pub const ZERO_SIZE_PTR: *mut u8 = 16 as *mut u8;

/// Linux: ZERO_OR_NULL_PTR().
pub fn zero_or_null_ptr(p: *const u8) -> bool {
    p as usize <= ZERO_SIZE_PTR as usize
}

/// Linux: enum kmalloc_cache_type (ZONE_DMA as on arm64; no KMALLOC_CGROUP: no memcg).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum KmallocCacheType {
    /// Linux: KMALLOC_NORMAL.
    Normal = 0,
    /// Linux: KMALLOC_RECLAIM.
    Reclaim = 1,
    /// Linux: KMALLOC_DMA.
    Dma = 2,
}

/// Linux: NR_KMALLOC_TYPES.
pub const NR_KMALLOC_TYPES: usize = 3;

/// Linux: kmalloc_type() — which family of kmalloc caches serves `flags`.
pub const fn kmalloc_type(flags: GfpT) -> KmallocCacheType {
    if flags & (__GFP_DMA | __GFP_RECLAIMABLE) == 0 {
        KmallocCacheType::Normal
    } else if flags & __GFP_DMA != 0 {
        KmallocCacheType::Dma
    } else {
        KmallocCacheType::Reclaim
    }
}

/// Linux: the initial size_index[] — the cache index of each 8-byte step up to 192.
pub const SIZE_INDEX_INIT: [u8; 24] = [
    3, // 8
    4, // 16
    5, // 24
    5, // 32
    6, // 40
    6, // 48
    6, // 56
    6, // 64
    1, // 72
    1, // 80
    1, // 88
    1, // 96
    7, // 104
    7, // 112
    7, // 120
    7, // 128
    2, // 136
    2, // 144
    2, // 152
    2, // 160
    2, // 168
    2, // 176
    2, // 184
    2, // 192
];

/// Linux: KMALLOC_MIN_SIZE of the kernel's allocator — arm64's in 6.1 (see
/// [`ARM64_KMALLOC_MIN_SIZE`]); slab_common.rs's kmem_cache_init() insists on it, so that
/// [`kmalloc_index`] with it is the kernel's `kmalloc_index()`.
pub const KMALLOC_MIN_SIZE: usize = ARM64_KMALLOC_MIN_SIZE;

/// Linux: __kmalloc_index() — the `kmalloc_caches[]` index for `size` bytes when the
/// smallest cache is `kmalloc_min_size` (KMALLOC_MIN_SIZE): 0 for 0, `KMALLOC_SHIFT_LOW` up
/// to the minimum, 1 (kmalloc-96) and 2 (kmalloc-192) where those caches exist, else the
/// smallest `k` with `size <= 2^k`. Linux writes that last part as the chain
/// `if (size <= 8) return 3; if (size <= 16) return 4; ...`, which is `fls(size - 1)`;
/// both fold to a constant when the size is one, and `fls` costs three instructions
/// when it is not. For `1 <= size <= KMALLOC_MAX_CACHE_SIZE` it picks the cache that
/// kmalloc_slab()'s `size_index[]` table does (setup_kmalloc_cache_index_table()).
#[inline(always)]
pub const fn kmalloc_index(size: usize, kmalloc_min_size: usize) -> usize {
    if size == 0 {
        return 0;
    }
    if size <= kmalloc_min_size {
        return kmalloc_min_size.trailing_zeros() as usize;
    }
    if kmalloc_min_size <= 32 && size > 64 && size <= 96 {
        return 1;
    }
    if kmalloc_min_size <= 64 && size > 128 && size <= 192 {
        return 2;
    }
    fls(size as u64 - 1) as usize
}

/// Linux: size_index_elem().
pub const fn size_index_elem(bytes: usize) -> usize {
    (bytes - 1) / 8
}

/// Linux: fls() — the 1-based index of the highest set bit, 0 for 0.
pub const fn fls(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// Linux: get_order() — the smallest order whose block holds `size` bytes.
pub const fn get_order(size: usize) -> u32 {
    if size <= PAGE_SIZE as usize {
        0
    } else {
        fls(((size - 1) >> PAGE_SHIFT) as u64)
    }
}

/// Linux: setup_kmalloc_cache_index_table() — redirect the small sizes below
/// `KMALLOC_MIN_SIZE` (and 96 / 192 when those caches do not exist) to real caches.
pub fn setup_kmalloc_cache_index_table(size_index: &mut [u8; 24], kmalloc_min_size: usize) {
    assert!(kmalloc_min_size <= 256 && kmalloc_min_size.is_power_of_two());
    let shift_low = kmalloc_min_size.trailing_zeros() as u8;
    let mut i = 8;
    while i < kmalloc_min_size {
        let elem = size_index_elem(i);
        if elem >= size_index.len() {
            break;
        }
        size_index[elem] = shift_low;
        i += 8;
    }
    if kmalloc_min_size >= 64 {
        // The 96 byte sized cache is not used if the alignment is 64 byte.
        for i in (64 + 8..=96).step_by(8) {
            size_index[size_index_elem(i)] = 7;
        }
    }
    if kmalloc_min_size >= 128 {
        // The 192 byte sized cache is not used if the alignment is 128 byte. Redirect kmalloc
        // to use the 256 byte cache instead.
        for i in (128 + 8..=192).step_by(8) {
            size_index[size_index_elem(i)] = 8;
        }
    }
}

/// Linux: calculate_alignment() — the alignment a cache's objects get.
pub fn calculate_alignment(flags: SlabFlags, align: u32, size: u32, cache_line: u32) -> u32 {
    let mut align = align;
    if flags & SLAB_HWCACHE_ALIGN != 0 {
        let mut ralign = cache_line;
        while size <= ralign / 2 {
            ralign /= 2;
        }
        align = align.max(ralign);
    }
    // Linux: arch_slab_minalign() — ARCH_SLAB_MINALIGN, __alignof__(unsigned long long).
    align = align.max(8);
    align.next_multiple_of(8)
}

/// A cache's constructor (Linux: `void (*ctor)(void *)`).
pub type Ctor = fn(*mut u8);

/// Linux: struct slabinfo.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slabinfo {
    pub active_objs: u64,
    pub num_objs: u64,
    pub active_slabs: u64,
    pub num_slabs: u64,
    pub shared_avail: u64,
    pub limit: u32,
    pub batchcount: u32,
    pub shared: u32,
    pub objects_per_slab: u32,
    pub cache_order: u32,
}

#[cfg(test)]
mod tests;
