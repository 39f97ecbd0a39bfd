//! SLUB's side of KFENCE (Linux 6.1: include/linux/kfence.h's inline `kfence_alloc()`,
//! `kfence_free()`, `is_kfence_address()`, `kfence_ksize()` as mm/slub.c and
//! mm/slab_common.c call them). KFENCE itself sits above SLUB (mm/kfence.rs); it reaches
//! the slab paths through [`KfenceHooks`], which kfence_init() sets once on the allocator.
//!
//! Cost when KFENCE is off: the allocation entry tests one flag (Linux: the
//! `kfence_allocation_key` static branch); when on, it also compares the arch counter with
//! the gate's time, inline, and calls KFENCE only when a sample is due; the free side is only reached from `__slab_free()`
//! (a KFENCE page is never a CPU slab, so the lockless free fast path never sees one), from
//! ksize()/krealloc() and from the init_on_free zeroing, none of them fast paths.

use core::sync::atomic::{AtomicU64, Ordering};

use super::{KmemCache, Slab, SlubAllocator};
use crate::mm::gfp::GfpT;

/// What SLUB asks KFENCE (Linux: include/linux/kfence.h).
pub trait KfenceHooks: Sync {
    /// Linux: kfence_alloc() past its static branch — the sampling gate, then
    /// `__kfence_alloc()`: a guarded object of `size` bytes for `s`, or null if this
    /// allocation is not sampled (or the pool is full).
    fn kfence_alloc(&self, s: &KmemCache, size: usize, gfp: GfpT) -> *mut u8;
    /// Linux: is_kfence_address().
    fn is_kfence_address(&self, addr: *const u8) -> bool;
    /// Linux: kfence_ksize() — the object's size, 0 if `addr` is no KFENCE object.
    fn kfence_ksize(&self, addr: *const u8) -> usize;
    /// Linux: kfence_free() — false if `addr` is not KFENCE's; else the object is freed (or
    /// the invalid free reported). `init`: slab_want_init_on_free() of its cache.
    fn kfence_free(&self, addr: *mut u8, init: bool) -> bool;
    /// Linux: the `kfence_allocation_gate` that the inline kfence_alloc() reads before
    /// calling in: the arch counter's value (arm64: CNTVCT_EL0) before which no allocation
    /// is sampled. SLUB reads it and the counter inline, and calls
    /// [`kfence_alloc`](Self::kfence_alloc) only once it is due.
    fn allocation_gate(&'static self) -> &'static AtomicU64;
}

impl Slab {
    /// Linux: kfence_init_pool()'s `__folio_set_slab()` and kfence_guarded_alloc()'s
    /// `slab->slab_cache = cache`: a pool page becomes a one-object slab of `cache` (null:
    /// only the flag), so that kfree() and kmem_cache_free() find their way to
    /// `__slab_free()` and from there to kfence_free().
    pub fn set_kfence_slab(&self, cache: *const KmemCache) {
        self.slab_cache
            .store(cache as *mut KmemCache, Ordering::Release);
        self.__page_flags
            .fetch_or(1 << super::PG_SLAB_BIT, Ordering::Release);
    }
}

impl SlubAllocator<'_> {
    /// Linux: the kfence_allocation_key static branch is enabled (kfence_init()): from
    /// now on slab_alloc_node() offers every allocation to `k`.
    pub fn set_kfence(&self, k: &'static dyn KfenceHooks) {
        self.kfence.call_once(|| k);
        self.kfence_gate
            .store(k.allocation_gate() as *const _ as *mut _, Ordering::Release);
        self.kfence_on.store(1, Ordering::Release);
    }

    /// Linux: kfence_alloc()'s `if (likely(atomic_read(&kfence_allocation_gate))) return
    /// NULL;` — is the gate due (KFENCE on, the counter past the gate's time)?
    #[inline(always)]
    pub(super) fn kfence_due(&self) -> bool {
        if self.kfence_on.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let gate = self.kfence_gate.load(Ordering::Acquire);
        // SAFETY: set (to KFENCE's 'static gate) before kfence_on, never cleared.
        let deadline = unsafe { (*gate).load(Ordering::Relaxed) };
        super::cmpxchg::arch_counter() >= deadline
    }

    /// The hooks, once kfence_init() set them.
    #[inline]
    fn kfence(&self) -> Option<&'static dyn KfenceHooks> {
        self.kfence.get().copied()
    }

    /// Linux: slab_alloc_node()'s `kfence_alloc()` past the static branch; then what
    /// kfence_guarded_alloc() does with the cache: the constructor, and the zeroing
    /// slab_post_alloc_hook() leaves out for KFENCE objects (only `size` bytes: the object
    /// may end at its guard page).
    #[cold]
    #[inline(never)]
    pub(super) fn kfence_alloc(&self, s: &KmemCache, size: usize, gfp: GfpT) -> Option<*mut u8> {
        let object = self.kfence()?.kfence_alloc(s, size, gfp);
        if object.is_null() {
            return None;
        }
        if let Some(ctor) = s.ctor {
            ctor(object);
        }
        if self.slab_want_init_on_alloc(gfp, s) {
            // SAFETY: a fresh KFENCE object of `size` bytes, ours.
            unsafe { core::ptr::write_bytes(object, 0, size) };
        }
        Some(object)
    }

    /// Linux: is_kfence_address() (false while KFENCE is off).
    #[inline]
    pub fn is_kfence_address(&self, addr: *const u8) -> bool {
        self.kfence().is_some_and(|k| k.is_kfence_address(addr))
    }

    /// Linux: kfence_ksize() (0 while KFENCE is off).
    pub(in crate::mm) fn kfence_ksize(&self, addr: *const u8) -> usize {
        self.kfence().map_or(0, |k| k.kfence_ksize(addr))
    }

    /// Linux: `__slab_free()`'s `if (kfence_free(head)) return;`.
    #[inline(always)]
    pub(super) fn kfence_free(&self, s: &KmemCache, object: *mut u8) -> bool {
        if self.kfence_on.load(Ordering::Relaxed) == 0 {
            return false;
        }
        self.kfence_free_slow(s, object)
    }

    #[cold]
    #[inline(never)]
    fn kfence_free_slow(&self, s: &KmemCache, object: *mut u8) -> bool {
        match self.kfence() {
            Some(k) => k.kfence_free(object, self.slab_want_init_on_free(s)),
            None => false,
        }
    }
}
