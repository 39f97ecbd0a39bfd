//! Linux 6.1: the slab bulk API of mm/slub.c — `kmem_cache_alloc_bulk()`,
//! `kmem_cache_free_bulk()` with `build_detached_freelist()` — and include/linux/slab.h's
//! `kfree_bulk()`.
//!
//! Linux takes the objects of a bulk allocation off the CPU freelist under one lock and
//! frees each detached freelist (the objects of one slab) with one slab_free(); here each
//! object goes through the ordinary entry points (the lockless fast paths), with the same
//! results: the same objects, the same hooks (`__GFP_ZERO`, init_on_alloc/free), and the
//! same reports for objects of another cache, one per detached freelist as in Linux.

use core::panic::Location;
use core::ptr;

use super::super::slub::{KmemCache, SlubAllocator};
use crate::include::numa::NUMA_NO_NODE;
use crate::mm::gfp::GfpT;

impl SlubAllocator<'_> {
    /// Linux: kmem_cache_alloc_bulk() — fill `p` with objects of `s`: `p.len()` on success;
    /// 0 when one allocation fails, after freeing what was allocated (Linux: all or
    /// nothing). An empty `p` allocates nothing and returns 0.
    #[track_caller]
    pub fn kmem_cache_alloc_bulk(&self, s: &KmemCache, gfp: GfpT, p: &mut [*mut u8]) -> usize {
        let caller = Location::caller();
        for i in 0..p.len() {
            let object =
                self.slab_alloc_node(s, gfp, NUMA_NO_NODE, caller, s.object_size() as usize);
            if object.is_null() {
                // SAFETY: the i objects just allocated from s, nobody else's.
                unsafe { self.kmem_cache_free_bulk(Some(s), &mut p[..i]) };
                return 0;
            }
            p[i] = object;
        }
        p.len()
    }

    /// Linux: kmem_cache_free_bulk() — free every object of `p` (`s` None: kfree_bulk(),
    /// each object's cache from its slab, large kmalloc blocks too). The slice is reordered
    /// as Linux reorders the array. An object of another cache than `s` is reported
    /// (`cache_from_obj: Wrong slab cache. …`, once per detached freelist) and freed to its
    /// own cache, as Linux 6.1 with CONFIG_SLAB_FREELIST_HARDENED. NULL entries are
    /// skipped.
    ///
    /// # Safety
    /// Every non-NULL entry is a live object of this allocator (of `s`, or of kmalloc when
    /// `s` is None) that nobody uses afterwards.
    #[track_caller]
    pub unsafe fn kmem_cache_free_bulk(&self, s: Option<&KmemCache>, p: &mut [*mut u8]) {
        let caller = Location::caller();
        let mut size = p.len();
        while size > 0 {
            // SAFETY: the caller's guarantee, for p[..size].
            size = unsafe { self.free_detached_freelist(s, size, p, caller) };
        }
    }

    /// Linux: kfree_bulk().
    ///
    /// # Safety
    /// As kmem_cache_free_bulk() with `s` None.
    #[track_caller]
    pub unsafe fn kfree_bulk(&self, p: &mut [*mut u8]) {
        // SAFETY: forwarded.
        unsafe { self.kmem_cache_free_bulk(None, p) }
    }

    /// Linux: build_detached_freelist() and kmem_cache_free_bulk()'s slab_free() of it:
    /// the last object of `p[..size]` and those among the earlier ones on the same slab
    /// (looking at most 3 objects past the last match), moved to the end of `p[..size]`
    /// and freed. Returns how many objects are left to free at the start of `p`.
    ///
    /// # Safety
    /// As kmem_cache_free_bulk(), for `p[..size]`.
    unsafe fn free_detached_freelist(
        &self,
        s: Option<&KmemCache>,
        mut size: usize,
        p: &mut [*mut u8],
        caller: &'static Location<'static>,
    ) -> usize {
        size -= 1;
        let top = size;
        let object = p[top];
        if object.is_null() {
            return size;
        }
        let (cache, slab) = match s {
            None => match self.virt_to_slab(object) {
                Some(slab) => {
                    // SAFETY: a slab's cache outlives its slabs.
                    (unsafe { &*slab.slab_cache() }, slab)
                }
                None => {
                    // Linux: free_large_kmalloc() of a kmalloc'ed block.
                    // SAFETY: the caller's guarantee.
                    unsafe { self.kfree(object) };
                    return size;
                }
            },
            Some(s) => match self.cache_from_obj(s, object) {
                Some(cs) => cs,
                // Not a slab page: reported, not freed.
                None => return size,
            },
        };
        let mut same = size;
        let mut lookahead = 3;
        while size > 0 {
            size -= 1;
            let o = p[size];
            if !o.is_null() && self.virt_to_slab(o).is_some_and(|sl| ptr::eq(sl, slab)) {
                same -= 1;
                p.swap(size, same);
                continue;
            }
            lookahead -= 1;
            if lookahead == 0 {
                break;
            }
        }
        for &o in &p[same..=top] {
            self.slab_free(cache, slab, o, caller);
        }
        same
    }
}
