//! The allocator-independent half of the slab layer: the kmalloc size classes
//! (`kmalloc_info[]`, `kmalloc_slab()`, `create_kmalloc_caches()`),
//! kmalloc / kzalloc / kcalloc / krealloc / kfree / ksize and `kmalloc_large` above
//! `KMALLOC_MAX_CACHE_SIZE`, `kmem_cache_create()` with cache merging (`find_mergeable`,
//! `slab_unmergeable`, `slab_nomerge`), `kmem_cache_destroy()`, `kfree_rcu()`, and
//! `/proc/slabinfo`. Mirrors Linux 6.1's mm/slab_common.c; the `SLAB_*` flags and kmalloc
//! constants of include/linux/slab.h and mm/slab.h are slab.rs's (re-exported here, as every
//! user of these functions includes slab.h), the gfp bits page_alloc.rs's.
//!
//! The functions are methods of [`SlubAllocator`] (so host tests run many allocators side by
//! side); the kernel-facing free functions at the bottom (`kmalloc`, `kfree`, ...) call the
//! one allocator that [`kmem_cache_init`] sets up.
//!
//! # kmalloc classes on arm64 in 6.1
//! Linux 6.1's arm64 defines `ARCH_DMA_MINALIGN` as 128, and include/linux/slab.h then makes
//! `ARCH_KMALLOC_MINALIGN`, `KMALLOC_MIN_SIZE` and `1 << KMALLOC_SHIFT_LOW` all 128: the
//! smallest kmalloc cache on a 6.1 arm64 kernel is kmalloc-128, kmalloc-96 and kmalloc-192
//! are never created (`create_kmalloc_caches` only adds them when `KMALLOC_MIN_SIZE` is at
//! most 32 / 64), and `setup_kmalloc_cache_index_table()` points sizes 1..=128 at
//! kmalloc-128 and 129..=192 at kmalloc-256. (Linux 6.5 lowered this to 8 with
//! `ARCH_KMALLOC_MINALIGN` = 8 and DMA bouncing.) The kernel uses that,
//! [`ARM64_KMALLOC_MIN_SIZE`]; the minimum is a parameter of the allocator so the host tests
//! also check the full 8 … 8192 + 96 + 192 set other architectures get.
//!
//! # Alignment kmalloc guarantees (what heap.rs relies on)
//! Every object is aligned to `ARCH_KMALLOC_MINALIGN` (= `kmalloc_min_size`), and, as Linux
//! guarantees since 5.4, a power-of-two size is naturally aligned (`create_boot_cache` gives
//! kmalloc-N an alignment of N). Large kmalloc blocks are whole buddy blocks: page aligned,
//! and naturally aligned to their size in the linear map.
//!
//! # What is different from Linux
//! - krealloc() keeps the kmalloc red zone and `__GFP_ZERO` right the way Linux 6.12 does
//!   (6.1 compared only against ksize(), leaving a stale `orig_size`).
//! - kfree_rcu(): there is no RCU here; objects wait on a list until the next
//!   `kvfree_rcu_barrier()`, which `kmem_cache_destroy()` calls first (as 6.12 does).
//! - No memcg: `__GFP_ACCOUNT` allocations use the normal caches (Linux with
//!   `cgroup.memory=nokmem`), and there are no kmalloc-cg-* caches.

use core::fmt::{self, Write};
use core::panic::Location;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};

use super::slab::*;
use super::slub::{
    slab_ksize, slub_debug_orig_size, KmemCache, Slab, SlabPageSource, SlabState, SlubAllocator,
    SlubParams, PAGE_SZ, SLUB_RED_ACTIVE,
};
use crate::include::numa::NUMA_NO_NODE;
use crate::mm::gfp::{GfpT, __GFP_COMP, __GFP_ZERO, GFP_KERNEL};

// ---------------------------------------------------------------------------------------------
// Merging flags and kmalloc_info[] (mm/slab_common.c).

/// Linux: SLAB_NEVER_MERGE (mm/slab_common.c) — plus 6.5's SLAB_NO_MERGE.
pub const SLAB_NEVER_MERGE: SlabFlags = SLAB_RED_ZONE
    | SLAB_POISON
    | SLAB_STORE_USER
    | SLAB_TRACE
    | SLAB_TYPESAFE_BY_RCU
    | SLAB_NOLEAKTRACE
    | SLAB_FAILSLAB
    | SLAB_NO_MERGE;
/// Linux: SLAB_MERGE_SAME — flags two caches must agree on to merge.
pub const SLAB_MERGE_SAME: SlabFlags =
    SLAB_RECLAIM_ACCOUNT | SLAB_CACHE_DMA | SLAB_CACHE_DMA32 | SLAB_ACCOUNT;

/// One row of Linux's `kmalloc_info[]`: the names by type and the object size.
pub struct KmallocInfo {
    pub name: [&'static str; NR_KMALLOC_TYPES],
    pub size: usize,
}

macro_rules! init_kmalloc_info {
    ($size:expr, $short:literal) => {
        KmallocInfo {
            name: [
                concat!("kmalloc-", $short),
                concat!("kmalloc-rcl-", $short),
                concat!("dma-kmalloc-", $short),
            ],
            size: $size,
        }
    };
}

/// Linux: kmalloc_info[] — index i holds size 2^i, but 1 and 2 hold 96 and 192.
pub const KMALLOC_INFO: [KmallocInfo; KMALLOC_SHIFT_HIGH + 1] = [
    KmallocInfo {
        name: ["", "", ""],
        size: 0,
    },
    init_kmalloc_info!(96, "96"),
    init_kmalloc_info!(192, "192"),
    init_kmalloc_info!(8, "8"),
    init_kmalloc_info!(16, "16"),
    init_kmalloc_info!(32, "32"),
    init_kmalloc_info!(64, "64"),
    init_kmalloc_info!(128, "128"),
    init_kmalloc_info!(256, "256"),
    init_kmalloc_info!(512, "512"),
    init_kmalloc_info!(1024, "1k"),
    init_kmalloc_info!(2048, "2k"),
    init_kmalloc_info!(4096, "4k"),
    init_kmalloc_info!(8192, "8k"),
];

/// Linux: kmem_cache_create()'s error numbers.
const EINVAL: i32 = -22;
const ENOMEM: i32 = -12;
const EBUSY: i32 = -16;

impl SlubAllocator<'_> {
    /// Linux: kmalloc_slab() — the cache that serves `size` bytes with `flags`; `None` for
    /// sizes above `KMALLOC_MAX_CACHE_SIZE` and for 0 (callers turn 0 into ZERO_SIZE_PTR).
    #[inline]
    pub fn kmalloc_slab(&self, size: usize, flags: GfpT) -> Option<&KmemCache> {
        let index = if size <= 192 {
            if size == 0 {
                return None;
            }
            self.size_index[size_index_elem(size)].load(Ordering::Relaxed) as usize
        } else {
            if size > KMALLOC_MAX_CACHE_SIZE {
                return None;
            }
            fls(size as u64 - 1) as usize
        };
        self.kmalloc_cache(kmalloc_type(flags), index)
    }

    /// Linux: `kmalloc_caches[type][index]` — None where there is no such cache (an index
    /// past `KMALLOC_SHIFT_HIGH`, a class this minimum size does not create, or before
    /// create_kmalloc_caches()).
    #[inline(always)]
    pub fn kmalloc_cache(&self, ty: KmallocCacheType, index: usize) -> Option<&KmemCache> {
        let s = self.kmalloc_caches[ty as usize]
            .get(index)?
            .load(Ordering::Acquire);
        // SAFETY: kmalloc caches live as long as the allocator (never destroyed).
        unsafe { s.as_ref() }
    }

    /// Linux: create_kmalloc_cache() (create_boot_cache() with SLAB_KMALLOC).
    fn create_kmalloc_cache(
        &self,
        name: &'static str,
        size: u32,
        flags: SlabFlags,
    ) -> *mut KmemCache {
        let kc = self.kmem_cache().expect("kmalloc caches before kmem_cache");
        let s = self
            .kmem_cache_zalloc(kc, super::gfp::GFP_NOWAIT)
            .cast::<KmemCache>();
        if s.is_null() {
            panic!("Out of memory when creating slab {}", name);
        }
        // SAFETY: a fresh kmem_cache object with room for nr_cpu_ids CPU slots.
        unsafe {
            ptr::write(
                s,
                KmemCache::new(name, size, 0, None, self.params.nr_cpu_ids),
            );
            self.create_boot_cache(s, name, size, flags | SLAB_KMALLOC);
        }
        // SAFETY: initialised above.
        let sr = unsafe { &*s };
        let _g = self.slab_mutex.lock();
        self.slab_caches_add(sr);
        sr.refcount.store(1, Ordering::Relaxed);
        s
    }

    /// Linux: new_kmalloc_cache().
    fn new_kmalloc_cache(&self, idx: usize, ty: KmallocCacheType, flags: SlabFlags) {
        let flags = flags
            | match ty {
                KmallocCacheType::Reclaim => SLAB_RECLAIM_ACCOUNT,
                KmallocCacheType::Dma => SLAB_CACHE_DMA,
                KmallocCacheType::Normal => 0,
            };
        let info = &KMALLOC_INFO[idx];
        let s = self.create_kmalloc_cache(info.name[ty as usize], info.size as u32, flags);
        self.kmalloc_caches[ty as usize][idx].store(s, Ordering::Release);
    }

    /// Linux: create_kmalloc_caches() — every type's caches from `KMALLOC_SHIFT_LOW` to
    /// `KMALLOC_SHIFT_HIGH`, 96 and 192 right after 64 and 128 when the minimum allows them;
    /// then kmalloc is usable: `slab_state = UP`.
    pub(super) fn create_kmalloc_caches(&self, flags: SlabFlags) {
        let min = self.params.kmalloc_min_size;
        let shift_low = min.trailing_zeros() as usize;
        for ty in [
            KmallocCacheType::Normal,
            KmallocCacheType::Reclaim,
            KmallocCacheType::Dma,
        ] {
            let missing = |i: usize| {
                self.kmalloc_caches[ty as usize][i]
                    .load(Ordering::Relaxed)
                    .is_null()
            };
            for i in shift_low..=KMALLOC_SHIFT_HIGH {
                if missing(i) {
                    self.new_kmalloc_cache(i, ty, flags);
                }
                // Caches that are not of the two-to-the-power-of size. These have to be
                // created immediately after the earlier power of two caches.
                if min <= 32 && i == 6 && missing(1) {
                    self.new_kmalloc_cache(1, ty, flags);
                }
                if min <= 64 && i == 7 && missing(2) {
                    self.new_kmalloc_cache(2, ty, flags);
                }
            }
        }
        // Kmalloc array is now usable.
        self.set_slab_state(SlabState::Up);
    }

    /// Linux: __kmalloc_large_node() — above `KMALLOC_MAX_CACHE_SIZE`, a compound page
    /// straight from the page allocator.
    #[inline(never)]
    fn kmalloc_large_node(&self, size: usize, flags: GfpT, node: i32) -> *mut u8 {
        let order = get_order(size);
        let ptr = match self.source().alloc_pages(flags | __GFP_COMP, order, node) {
            Some(page) => self.source().page_address(page),
            None => ptr::null_mut(),
        };
        crate::mm::kmemleak::kmemleak_alloc(ptr, size, 1);
        ptr
    }

    /// Linux: kmalloc_large().
    pub fn kmalloc_large(&self, size: usize, flags: GfpT) -> *mut u8 {
        self.kmalloc_large_node(size, flags, NUMA_NO_NODE)
    }

    /// Linux: __do_kmalloc_node() — the body of kmalloc and kmalloc_node.
    #[inline]
    fn do_kmalloc_node(
        &self,
        size: usize,
        flags: GfpT,
        node: i32,
        caller: &'static Location<'static>,
    ) -> *mut u8 {
        if size > KMALLOC_MAX_CACHE_SIZE {
            return self.kmalloc_large_node(size, flags, node);
        }
        if size == 0 {
            return ZERO_SIZE_PTR;
        }
        let Some(s) = self.kmalloc_slab(size, flags) else {
            return ptr::null_mut();
        };
        self.slab_alloc_node(s, flags, node, caller, size)
    }

    /// Linux: kmalloc() — `size` bytes; `ZERO_SIZE_PTR` for 0; NULL when out of memory.
    #[track_caller]
    pub fn kmalloc(&self, size: usize, flags: GfpT) -> *mut u8 {
        self.do_kmalloc_node(size, flags, NUMA_NO_NODE, Location::caller())
    }

    /// Linux: kmalloc_node().
    #[track_caller]
    pub fn kmalloc_node(&self, size: usize, flags: GfpT, node: i32) -> *mut u8 {
        self.do_kmalloc_node(size, flags, node, Location::caller())
    }

    /// Linux: kcalloc() / kmalloc_array(n, size, flags | __GFP_ZERO) — NULL on overflow.
    #[track_caller]
    pub fn kcalloc(&self, n: usize, size: usize, flags: GfpT) -> *mut u8 {
        match n.checked_mul(size) {
            Some(bytes) => {
                self.do_kmalloc_node(bytes, flags | __GFP_ZERO, NUMA_NO_NODE, Location::caller())
            }
            None => ptr::null_mut(),
        }
    }

    /// Linux: kmalloc_trace() — allocate from a given kmalloc-type cache, recording the
    /// requested size: where the inline [`kmalloc`] goes once it knows the cache (the
    /// slub_kunit cases build such caches themselves). Out of line, as in Linux: the
    /// callers inline only the cache lookup.
    #[inline(never)]
    #[track_caller]
    pub fn kmalloc_trace(&self, s: &KmemCache, flags: GfpT, size: usize) -> *mut u8 {
        self.slab_alloc_node(s, flags, NUMA_NO_NODE, Location::caller(), size)
    }

    /// Linux: folio_order() of a head page.
    fn head_order(page: NonNull<super::page::Page>) -> u32 {
        // SAFETY: a struct page of the source; a head's first tail is in its block.
        unsafe {
            let p = page.as_ref();
            if p.page_head() {
                (*page.as_ptr().add(1)).first_tail_compound_order()
            } else {
                0
            }
        }
    }

    /// Linux: free_large_kmalloc().
    ///
    /// # Safety
    /// `head` heads a block kmalloc_large() returned, no longer used.
    #[inline(never)]
    unsafe fn free_large_kmalloc(&self, head: NonNull<super::page::Page>, object: *mut u8) {
        let order = Self::head_order(head);
        crate::mm::kmemleak::kmemleak_free(object);
        // Linux: WARN_ON_ONCE(order == 0), then the pointer.
        if order == 0 {
            crate::kernel::bug::warn_on();
            pr_warn!("object pointer: 0x{:016x}", object as usize);
        }
        // SAFETY: the caller's guarantee.
        unsafe { self.source().free_pages(head, order) };
    }

    /// Linux: kfree() — free what kmalloc returned (slab object or large block); NULL and
    /// `ZERO_SIZE_PTR` are ignored.
    ///
    /// # Safety
    /// `object` is NULL, ZERO_SIZE_PTR, or a live kmalloc/kmem_cache_alloc result of this
    /// allocator that nobody uses afterwards.
    #[track_caller]
    pub unsafe fn kfree(&self, object: *const u8) {
        let caller = Location::caller();
        // The linear map never covers NULL and ZERO_SIZE_PTR (SlubAllocator::new), so their
        // test (Linux: ZERO_OR_NULL_PTR() first) waits until the lookup misses.
        match self.lm_virt_to_head_page(object) {
            // SAFETY: the caller's guarantee.
            Some(head) => unsafe { self.kfree_head(head, object as *mut u8, caller) },
            // SAFETY: the caller's guarantee.
            None => unsafe { self.kfree_outside_linear_map(object as *mut u8, caller) },
        }
    }

    /// kfree() of NULL, ZERO_SIZE_PTR or an object whose page the linear map does not
    /// cover: nothing, or ask the page source.
    ///
    /// # Safety
    /// As kfree().
    #[inline(never)]
    unsafe fn kfree_outside_linear_map(&self, object: *mut u8, caller: &'static Location<'static>) {
        if zero_or_null_ptr(object) {
            return;
        }
        let Some(head) = self.virt_to_head_page(object) else {
            pr_err!(
                "kfree: 0x{:016x} is not memory of this allocator; not freed",
                object as usize
            );
            return;
        };
        // SAFETY: forwarded.
        unsafe { self.kfree_head(head, object, caller) }
    }

    /// kfree() once the head page is known: a slab object, or a kmalloc_large() block.
    ///
    /// # Safety
    /// As kfree(); `head` is the head page of the block holding `object`.
    #[inline(always)]
    unsafe fn kfree_head(
        &self,
        head: NonNull<super::page::Page>,
        object: *mut u8,
        caller: &'static Location<'static>,
    ) {
        // SAFETY: a head struct page of the source seen as its slab overlay (Linux:
        // folio_slab(virt_to_folio(object)), one lookup).
        let slab = unsafe { &*head.as_ptr().cast::<Slab>() };
        if slab.test_slab() {
            // SAFETY: PG_slab: the slab's cache is live while it has objects.
            let s = unsafe { &*slab.slab_cache_of_object() };
            self.slab_free(s, slab, object, caller);
        } else {
            // SAFETY: a non-slab block under a kmalloc'ed pointer came from kmalloc_large.
            unsafe { self.free_large_kmalloc(head, object) }
        }
    }

    /// Linux: kmalloc_size_roundup() — the size kmalloc() really allocates for `size` bytes,
    /// so that a caller can ask for all of it up front: the kmalloc class's object size, a
    /// whole number of pages above the largest class (even past KMALLOC_MAX_SIZE, where
    /// kmalloc() itself fails, as Linux), 0 for 0 and `usize::MAX` for `usize::MAX`.
    pub fn kmalloc_size_roundup(&self, size: usize) -> usize {
        if size == 0 {
            return 0;
        }
        // Linux: the saturated "too-large" case (what size_mul()/size_add() overflow to).
        if size == usize::MAX {
            return usize::MAX;
        }
        if size > KMALLOC_MAX_CACHE_SIZE {
            return (super::PAGE_SIZE as usize) << get_order(size);
        }
        // The flags do not matter: size_index is common to all kmalloc types.
        self.kmalloc_slab(size, GFP_KERNEL)
            .map_or(0, |c| c.object_size() as usize)
    }

    /// Linux: __ksize() / ksize() — how many bytes the object really has room for.
    pub fn ksize(&self, object: *const u8) -> usize {
        if zero_or_null_ptr(object) {
            return 0;
        }
        // Linux: `size = kfence_ksize(objp) ?: __ksize(objp);`.
        let size = self.kfence_ksize(object);
        if size != 0 {
            return size;
        }
        let Some(head) = self.virt_to_head_page(object) else {
            return 0;
        };
        if let Some(slab) = self.virt_to_slab(object) {
            // SAFETY: PG_slab: the slab's cache is live.
            return slab_ksize(unsafe { &*slab.slab_cache() });
        }
        let size = PAGE_SZ << Self::head_order(head);
        if size <= KMALLOC_MAX_CACHE_SIZE {
            pr_warn!(
                "WARNING: ksize: 0x{:016x} is not a slab object",
                object as usize
            );
            return 0;
        }
        if object != self.source().page_address(head) {
            pr_warn!(
                "WARNING: ksize: 0x{:016x} is inside a large kmalloc block",
                object as usize
            );
            return 0;
        }
        size
    }

    /// Linux: krealloc() — resize in place when the object has room, else allocate, copy,
    /// free (in the form of 6.12's __do_krealloc(), see the module doc).
    ///
    /// # Safety
    /// As kfree() for `p`; on success `p` must not be used any more.
    #[track_caller]
    pub unsafe fn krealloc(&self, p: *const u8, new_size: usize, flags: GfpT) -> *mut u8 {
        let caller = Location::caller();
        if new_size == 0 {
            // SAFETY: forwarded.
            unsafe { self.kfree(p) };
            return ZERO_SIZE_PTR;
        }
        let (mut ks, mut orig_size, mut cache) = (0usize, 0usize, None);
        if !zero_or_null_ptr(p) {
            if self.is_kfence_address(p) {
                (ks, orig_size) = (self.kfence_ksize(p), self.kfence_ksize(p));
            } else if let Some(slab) = self.virt_to_slab(p) {
                // SAFETY: PG_slab: the slab's cache is live.
                let s = unsafe { &*slab.slab_cache() };
                orig_size = self.get_orig_size(s, p as *mut u8);
                ks = s.object_size() as usize;
                cache = Some(s);
            } else {
                ks = self.ksize(p);
            }
        }
        if new_size <= ks {
            let p = p as *mut u8;
            // Zero out spare memory.
            if flags & __GFP_ZERO != 0 {
                // SAFETY: both ranges lie inside the object's `ks` bytes.
                unsafe {
                    if orig_size != 0 && orig_size < new_size {
                        ptr::write_bytes(p.add(orig_size), 0, new_size - orig_size);
                    } else {
                        ptr::write_bytes(p.add(new_size), 0, ks - new_size);
                    }
                }
            }
            // Setup kmalloc redzone when needed.
            if let Some(s) = cache.filter(|s| slub_debug_orig_size(s)) {
                self.set_orig_size(s, p, new_size);
                if s.flags & SLAB_RED_ZONE != 0 && new_size < ks {
                    // SAFETY: the tail of the object, inside its `ks` bytes.
                    unsafe { ptr::write_bytes(p.add(new_size), SLUB_RED_ACTIVE, ks - new_size) };
                }
            }
            return p;
        }
        let ret = self.do_kmalloc_node(new_size, flags, NUMA_NO_NODE, caller);
        if !ret.is_null() && !zero_or_null_ptr(p) {
            let n = if orig_size != 0 { orig_size } else { ks };
            // SAFETY: `n` bytes are the old object's; the new one is bigger.
            unsafe {
                ptr::copy_nonoverlapping(p, ret, n);
                self.kfree(p);
            }
        }
        ret
    }

    // -----------------------------------------------------------------------------------------
    // kfree_rcu.

    /// Linux: kfree_rcu(ptr, rhf) — free `obj` after a grace period; its `struct rcu_head`
    /// (two words) is at `rcu_offset`. See the module doc for when that is.
    ///
    /// # Safety
    /// As kfree(); the object has 16 bytes at `rcu_offset` for the rcu_head.
    pub unsafe fn kfree_rcu(&self, obj: *mut u8, rcu_offset: usize) {
        let head = obj.wrapping_add(rcu_offset).cast::<usize>();
        let mut pending = self.rcu_pending.lock();
        // SAFETY: the rcu_head is inside the live object (caller's guarantee). Like Linux's
        // kvfree_call_rcu(), `next` links the list and `func` holds the offset.
        unsafe {
            ptr::write_unaligned(head, *pending);
            ptr::write_unaligned(head.add(1), rcu_offset);
        }
        *pending = head as usize;
    }

    /// Linux: kvfree_rcu_barrier() — end the grace period: free every kfree_rcu() object.
    pub fn kvfree_rcu_barrier(&self) {
        let mut head = core::mem::take(&mut *self.rcu_pending.lock());
        while head != 0 {
            let h = head as *mut usize;
            // SAFETY: queued by kfree_rcu(): a live object's rcu_head.
            unsafe {
                let next = ptr::read_unaligned(h);
                let off = ptr::read_unaligned(h.add(1));
                self.kfree(h.cast::<u8>().sub(off));
                head = next;
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // kmem_cache_create and merging.

    /// Linux: slab_unmergeable().
    pub fn slab_unmergeable(&self, s: &KmemCache) -> bool {
        self.params.slab_nomerge
            || s.flags & SLAB_NEVER_MERGE != 0
            || s.ctor.is_some()
            || s.usersize != 0
            // We may have set a slab to be unmergeable during bootstrap.
            || s.refcount.load(Ordering::Relaxed) < 0
    }

    /// Linux: find_mergeable() — an existing cache that can serve this request. Called with
    /// `slab_mutex` held.
    fn find_mergeable(
        &self,
        size: u32,
        align: u32,
        flags: SlabFlags,
        name: &str,
        ctor: Option<Ctor>,
    ) -> Option<&KmemCache> {
        if self.params.slab_nomerge || ctor.is_some() {
            return None;
        }
        let size = size.next_multiple_of(8);
        let align = calculate_alignment(flags, align, size, self.params.cache_line_size);
        let size = size.next_multiple_of(align);
        let flags = super::slub::kmem_cache_flags(&self.params, flags, name);
        if flags & SLAB_NEVER_MERGE != 0 {
            return None;
        }
        let mut found: Option<*const KmemCache> = None;
        self.for_each_cache_rev(|s| {
            if found.is_some()
                || self.slab_unmergeable(s)
                || size > s.size
                || (flags & SLAB_MERGE_SAME) != (s.flags & SLAB_MERGE_SAME)
                // Check if alignment is compatible.
                || (s.size & !(align - 1)) != s.size
                || s.size - size >= 8
            {
                return;
            }
            found = Some(s);
        });
        // SAFETY: caches on slab_caches live until destroyed under slab_mutex, which the
        // caller holds.
        found.map(|s| unsafe { &*s })
    }

    /// Linux: __kmem_cache_alias().
    fn kmem_cache_alias(
        &self,
        name: &str,
        size: u32,
        align: u32,
        flags: SlabFlags,
        ctor: Option<Ctor>,
    ) -> Option<&KmemCache> {
        let s = self.find_mergeable(size, align, flags, name, ctor)?;
        s.refcount.fetch_add(1, Ordering::Relaxed);
        // Adjust the object sizes so that we clear the complete object on kzalloc.
        s.grow_for_alias(size);
        Some(s)
    }

    /// Linux: create_cache().
    #[allow(clippy::too_many_arguments)]
    fn create_cache(
        &self,
        name: &'static str,
        object_size: u32,
        align: u32,
        flags: SlabFlags,
        useroffset: u32,
        usersize: u32,
        ctor: Option<Ctor>,
    ) -> Result<*mut KmemCache, i32> {
        let kc = self.kmem_cache().ok_or(EINVAL)?;
        let s = self.kmem_cache_zalloc(kc, GFP_KERNEL).cast::<KmemCache>();
        if s.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: a fresh kmem_cache object with room for nr_cpu_ids CPU slots.
        unsafe {
            let mut c = KmemCache::new(name, object_size, align, ctor, self.params.nr_cpu_ids);
            c.useroffset = useroffset;
            c.usersize = usersize;
            ptr::write(s, c);
            if !self.kmem_cache_open(s, flags) {
                self.__kmem_cache_release(&*s);
                self.kmem_cache_free(kc, s.cast());
                return Err(EINVAL);
            }
            (*s).refcount.store(1, Ordering::Relaxed);
            self.slab_caches_add(&*s);
        }
        Ok(s)
    }

    /// Linux: kmem_cache_create() (kmem_cache_create_usercopy with no usercopy region) — a
    /// cache of `size`-byte objects, or an existing compatible cache it merges with.
    pub fn kmem_cache_create(
        &self,
        name: &'static str,
        size: u32,
        align: u32,
        flags: SlabFlags,
        ctor: Option<Ctor>,
    ) -> Option<&KmemCache> {
        self.kmem_cache_create_usercopy(name, size, align, flags, 0, 0, ctor)
    }

    /// Linux: kmem_cache_create_usercopy().
    #[allow(clippy::too_many_arguments)]
    pub fn kmem_cache_create_usercopy(
        &self,
        name: &'static str,
        size: u32,
        align: u32,
        flags: SlabFlags,
        useroffset: u32,
        usersize: u32,
        ctor: Option<Ctor>,
    ) -> Option<&KmemCache> {
        let result = {
            let _guard = self.slab_mutex.lock();
            (|| {
                // Linux: kmem_cache_sanity_check().
                if self.slab_state() < SlabState::Up
                    || name.is_empty()
                    || size as usize > KMALLOC_MAX_SIZE
                {
                    pr_err!("kmem_cache_create({}) integrity check failed", name);
                    return Err(EINVAL);
                }
                // Refuse requests with allocator specific flags.
                if flags & !SLAB_FLAGS_PERMITTED != 0 {
                    return Err(EINVAL);
                }
                let flags = flags & CACHE_CREATE_MASK;
                // Fail closed on bad usersize of useroffset values.
                let (useroffset, usersize) = if (usersize == 0 && useroffset != 0)
                    || size < usersize
                    || size - usersize < useroffset
                {
                    (0, 0)
                } else {
                    (useroffset, usersize)
                };
                if usersize == 0 {
                    if let Some(s) = self.kmem_cache_alias(name, size, align, flags, ctor) {
                        return Ok(s as *const KmemCache as *mut KmemCache);
                    }
                }
                let align = calculate_alignment(flags, align, size, self.params.cache_line_size);
                self.create_cache(name, size, align, flags, useroffset, usersize, ctor)
            })()
        };
        match result {
            // SAFETY: a cache on slab_caches; it lives until kmem_cache_destroy.
            Ok(s) => Some(unsafe { &*s }),
            Err(err) => {
                if flags & SLAB_PANIC != 0 {
                    panic!(
                        "kmem_cache_create_usercopy: Failed to create slab '{}'. Error {}",
                        name, err
                    );
                }
                pr_warn!(
                    "kmem_cache_create_usercopy({}) failed with error {}",
                    name,
                    err
                );
                None
            }
        }
    }

    /// Linux: kmem_cache_destroy() — drop one reference; the last one shuts the cache down,
    /// which is refused (the cache stays, with Linux's report) while objects are live.
    ///
    /// # Safety
    /// `s` came from kmem_cache_create() of this allocator; the caller drops this reference
    /// (after the last one the cache's memory is gone).
    #[track_caller]
    pub unsafe fn kmem_cache_destroy(&self, s: &KmemCache) {
        let caller = Location::caller();
        // Pending kfree_rcu() objects may be in this cache.
        self.kvfree_rcu_barrier();
        let _guard = self.slab_mutex.lock();
        if s.refcount.fetch_sub(1, Ordering::Relaxed) - 1 != 0 {
            return;
        }
        // SAFETY: the last reference, under slab_mutex.
        if let Err(err) = unsafe { self.shutdown_cache(s) } {
            // Linux: WARN(shutdown_cache(s), ...).
            pr_warn!("------------[ cut here ]------------");
            pr_warn!(
                "kmem_cache_destroy {}: Slab cache still has objects when called from {}:{}",
                s.name,
                caller.file(),
                caller.line()
            );
            pr_warn!(
                "WARNING: CPU: {} PID: 0 at mm/slab_common.c kmem_cache_destroy (error {})",
                self.source().smp_processor_id(),
                err
            );
        }
    }

    /// Linux: shutdown_cache() — empty the cache; if that worked, unlink and free it.
    ///
    /// # Safety
    /// slab_mutex is held; this was the cache's last reference.
    unsafe fn shutdown_cache(&self, s: &KmemCache) -> Result<(), i32> {
        if self.__kmem_cache_shutdown(s) != 0 {
            return Err(EBUSY);
        }
        self.slab_caches_del(s);
        // Linux: slab_kmem_cache_release().
        self.__kmem_cache_release(s);
        let kc = self.kmem_cache().expect("kmem_cache");
        // SAFETY: unlinked and empty: nobody can reach it any more.
        unsafe { self.kmem_cache_free(kc, s as *const KmemCache as *mut u8) };
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // /proc/slabinfo.

    /// Linux: slab_show() over every cache, with print_slabinfo_header() — the text of
    /// /proc/slabinfo, newest cache first as Linux lists them.
    pub fn slabinfo(&self, m: &mut impl Write) -> fmt::Result {
        print_slabinfo_header(m)?;
        let _guard = self.slab_mutex.lock();
        let mut res = Ok(());
        self.for_each_cache(|s| {
            if res.is_ok() {
                res = cache_show(s, &self.get_slabinfo(s), m);
            }
        });
        res
    }
}

/// Linux: print_slabinfo_header().
pub fn print_slabinfo_header(m: &mut impl Write) -> fmt::Result {
    writeln!(m, "slabinfo - version: 2.1")?;
    m.write_str(
        "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>",
    )?;
    m.write_str(" : tunables <limit> <batchcount> <sharedfactor>")?;
    m.write_str(" : slabdata <active_slabs> <num_slabs> <sharedavail>")?;
    m.write_str("\n")
}

/// Linux: cache_show() — one line of /proc/slabinfo.
pub fn cache_show(s: &KmemCache, sinfo: &Slabinfo, m: &mut impl Write) -> fmt::Result {
    write!(
        m,
        "{:<17} {:>6} {:>6} {:>6} {:>4} {:>4}",
        s.name,
        sinfo.active_objs,
        sinfo.num_objs,
        s.size,
        sinfo.objects_per_slab,
        1u32 << sinfo.cache_order
    )?;
    write!(
        m,
        " : tunables {:>4} {:>4} {:>4}",
        sinfo.limit, sinfo.batchcount, sinfo.shared
    )?;
    writeln!(
        m,
        " : slabdata {:>6} {:>6} {:>6}",
        sinfo.active_slabs, sinfo.num_slabs, sinfo.shared_avail
    )
}

// ---------------------------------------------------------------------------------------------
// The kernel's allocator: Linux's global functions over the one SlubAllocator.

static SLUB: spin::Once<SlubAllocator<'static>> = spin::Once::new();

/// The kernel's slab allocator, once `kmem_cache_init` has run.
pub fn slub() -> Option<&'static SlubAllocator<'static>> {
    SLUB.get()
}

/// [`SLUB`]'s address once it is set up, for the fast paths' [`the_slub`]: testing a pointer
/// takes one load and a branch, `Once::get()` a load, a compare and a branch.
static SLUB_PTR: AtomicPtr<SlubAllocator<'static>> = AtomicPtr::new(ptr::null_mut());

#[inline(always)]
fn the_slub() -> &'static SlubAllocator<'static> {
    let p = SLUB_PTR.load(Ordering::Acquire);
    if p.is_null() {
        slub_not_ready();
    }
    // SAFETY: SLUB_PTR is null or the address of SLUB's value (set once by kmem_cache_init
    // after SLUB.call_once), which lives for ever and is never mutated through it.
    unsafe { &*p }
}

#[cold]
#[inline(never)]
#[track_caller]
fn slub_not_ready() -> ! {
    panic!("slab allocator used before kmem_cache_init")
}

/// Linux: kmem_cache_init() — the kernel's entry point, from mm_init() after mem_init() has
/// released memblock's memory to the buddy. `source` is the buddy (`page_alloc()`), `params`
/// the machine: `SlubParams::new(nr_cpu_ids, nr_node_ids, seed)` with `slab_nodes` set to the
/// nodes with normal memory, then `.with_boot_params()` for the command line. Returns the
/// allocator, which the caller (init's kmem_cache_init) then hands to Rust's global
/// allocator (heap.rs): this layer sits below heap.rs and does not name it.
pub fn kmem_cache_init(
    source: &'static dyn SlabPageSource,
    params: SlubParams,
) -> &'static SlubAllocator<'static> {
    // The inline kmalloc() computes its index with the kernel's KMALLOC_MIN_SIZE.
    assert_eq!(
        params.kmalloc_min_size, KMALLOC_MIN_SIZE,
        "SLUB: KMALLOC_MIN_SIZE"
    );
    let s = SLUB.call_once(|| SlubAllocator::new(source, params));
    SLUB_PTR.store(
        s as *const SlubAllocator<'static> as *mut SlubAllocator<'static>,
        Ordering::Release,
    );
    s.kmem_cache_init();
    s
}

/// Linux: kmem_cache_shrink() over every cache (what `echo 1 > /sys/kernel/slab/*/shrink`
/// does): every empty slab back to the page allocator. Returns the caches shrunk.
///
/// Lock: `slab_mutex`, held across the whole walk, as Linux's
/// slab_mem_going_offline_callback() holds it around its flush_all + shrink of every
/// cache: kmem_cache_destroy() takes it too, so no cache can be freed while it is being
/// shrunk. (Collecting the list under the mutex and shrinking after dropping it let another
/// CPU destroy a cache in between, and the shrink then walked freed memory.) The shrink
/// takes only the locks below `slab_mutex` (flush_lock, the CPU, list and slab locks).
pub fn kmem_cache_shrink_all() -> usize {
    let slub = the_slub();
    let _g = slub.slab_mutex.lock();
    let mut n = 0;
    slub.for_each_cache(|s| {
        slub.kmem_cache_shrink(s);
        n += 1;
    });
    n
}

/// Every cache's `/proc/slabinfo` numbers (Linux: what `slab_show()` reads through
/// `get_slabinfo()`), newest cache first: `f(name, info)` for each, under `slab_mutex`, so
/// `f` must not create or destroy caches. Read-only; the tests compare object counts before
/// and after a workload. Objects in per-CPU slabs count as active, as in Linux: flush first
/// (`kmem_cache_shrink_all`) for exact numbers.
pub fn for_each_slabinfo(mut f: impl FnMut(&str, &Slabinfo)) {
    let slub = the_slub();
    let _g = slub.slab_mutex.lock();
    slub.for_each_cache(|s| f(s.name, &slub.get_slabinfo(s)));
}

/// Pages in the slabs of the cache called `name`, node by node (`out[nid]`; nodes past
/// `out` are left out), as its `kmem_cache_node` counters have them: Linux's
/// `/sys/kernel/slab/<name>/slabs` (`N<nid>=` entries) times the pages per slab. Read-only,
/// for the tests. False if there is no such cache.
pub fn kmem_cache_node_pages(name: &str, out: &mut [u64]) -> bool {
    let slub = the_slub();
    let _g = slub.slab_mutex.lock();
    let mut found = false;
    slub.for_each_cache(|s| {
        if !found && s.name == name {
            found = true;
            for (nid, n) in s.nodes() {
                if let Some(o) = out.get_mut(nid as usize) {
                    *o = (n.node_nr_slabs().max(0) as u64) << s.oo.oo_order();
                }
            }
        }
    });
    found
}

static SLABINFO_AT_BOOT: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);

/// `slabinfo`: print /proc/slabinfo at the end of boot (ours; Linux has procfs).
fn slabinfo_setup(_val: Option<&str>) -> crate::kernel::params::SetupResult {
    SLABINFO_AT_BOOT.store(true, core::sync::atomic::Ordering::Relaxed);
    Ok(())
}
crate::early_param!("slabinfo", slabinfo_setup);

/// Prints slabinfo if the `slabinfo` parameter asked for it.
pub fn print_slabinfo_if_asked() {
    if SLABINFO_AT_BOOT.load(core::sync::atomic::Ordering::Relaxed) && slub().is_some() {
        pr_info!("mm: slabinfo");
        slabinfo_show();
    }
}

/// Linux: kmem_cache_init_late().
pub fn kmem_cache_init_late() {
    the_slub().kmem_cache_init_late();
}

/// Linux: slab_state (DOWN until kmem_cache_init).
pub fn slab_state() -> SlabState {
    SLUB.get().map_or(SlabState::Down, |s| s.slab_state())
}

/// Linux: slab_is_available().
pub fn slab_is_available() -> bool {
    slab_state() >= SlabState::Up
}

/// Linux: kmem_cache_create().
pub fn kmem_cache_create(
    name: &'static str,
    size: u32,
    align: u32,
    flags: SlabFlags,
    ctor: Option<Ctor>,
) -> Option<&'static KmemCache> {
    the_slub().kmem_cache_create(name, size, align, flags, ctor)
}

/// Linux: kmem_cache_alloc().
#[track_caller]
pub fn kmem_cache_alloc(s: &KmemCache, flags: GfpT) -> *mut u8 {
    the_slub().kmem_cache_alloc(s, flags)
}

/// Linux: kmem_cache_zalloc().
#[track_caller]
pub fn kmem_cache_zalloc(s: &KmemCache, flags: GfpT) -> *mut u8 {
    the_slub().kmem_cache_zalloc(s, flags)
}

/// Linux: kmem_cache_free().
///
/// # Safety
/// See [`SlubAllocator::kmem_cache_free`].
#[track_caller]
pub unsafe fn kmem_cache_free(s: &KmemCache, x: *mut u8) {
    // SAFETY: forwarded.
    unsafe { the_slub().kmem_cache_free(s, x) }
}

/// Linux: kmem_cache_shrink().
pub fn kmem_cache_shrink(s: &KmemCache) -> i32 {
    the_slub().kmem_cache_shrink(s)
}

/// Linux: kmem_cache_destroy().
///
/// # Safety
/// See [`SlubAllocator::kmem_cache_destroy`].
#[track_caller]
pub unsafe fn kmem_cache_destroy(s: &KmemCache) {
    // SAFETY: forwarded.
    unsafe { the_slub().kmem_cache_destroy(s) }
}

/// Linux: kmalloc() (include/linux/slab.h) — inline, in Linux's shape: the cache is
/// `kmalloc_caches[kmalloc_type(flags)][kmalloc_index(size)]`, which folds to one load when
/// `size` and `flags` are constants (Linux: `__builtin_constant_p(size)`), then
/// kmalloc_trace(). Sizes above the largest class, 0 and the time before
/// create_kmalloc_caches() go to the out-of-line kmalloc (Linux: `__kmalloc()`).
#[inline(always)]
#[track_caller]
pub fn kmalloc(size: usize, flags: GfpT) -> *mut u8 {
    let slub = the_slub();
    if size != 0 && size <= KMALLOC_MAX_CACHE_SIZE {
        let index = kmalloc_index(size, KMALLOC_MIN_SIZE);
        if let Some(s) = slub.kmalloc_cache(kmalloc_type(flags), index) {
            return slub.kmalloc_trace(s, flags, size);
        }
    }
    slub.kmalloc(size, flags)
}

/// Linux: kzalloc() — kmalloc() with `__GFP_ZERO`.
#[inline(always)]
#[track_caller]
pub fn kzalloc(size: usize, flags: GfpT) -> *mut u8 {
    kmalloc(size, flags | __GFP_ZERO)
}

/// Linux: kcalloc().
#[track_caller]
pub fn kcalloc(n: usize, size: usize, flags: GfpT) -> *mut u8 {
    the_slub().kcalloc(n, size, flags)
}

/// Linux: krealloc().
///
/// # Safety
/// See [`SlubAllocator::krealloc`].
#[track_caller]
pub unsafe fn krealloc(p: *const u8, new_size: usize, flags: GfpT) -> *mut u8 {
    // SAFETY: forwarded.
    unsafe { the_slub().krealloc(p, new_size, flags) }
}

/// Linux: kfree().
///
/// # Safety
/// See [`SlubAllocator::kfree`].
#[inline]
#[track_caller]
pub unsafe fn kfree(p: *const u8) {
    // SAFETY: forwarded.
    unsafe { the_slub().kfree(p) }
}

/// Linux: ksize().
pub fn ksize(p: *const u8) -> usize {
    the_slub().ksize(p)
}

/// /proc/slabinfo of the kernel's allocator (empty before kmem_cache_init).
pub fn slabinfo(m: &mut impl Write) -> fmt::Result {
    match SLUB.get() {
        Some(s) => s.slabinfo(m),
        None => print_slabinfo_header(m),
    }
}

/// Prints /proc/slabinfo to the log, one printk line per line.
pub fn slabinfo_show() {
    struct Lines(crate::kernel::printk::LineBuf<256>);
    impl Write for Lines {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for (i, part) in s.split('\n').enumerate() {
                if i > 0 {
                    pr_info!("{}", self.0.as_str());
                    self.0.clear();
                }
                self.0.write_str(part)?;
            }
            Ok(())
        }
    }
    let _ = slabinfo(&mut Lines(crate::kernel::printk::LineBuf::new()));
}

mod bulk;
mod util;

#[cfg(test)]
mod tests;
