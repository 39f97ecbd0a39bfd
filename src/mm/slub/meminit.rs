//! Linux 6.1: SLUB's side of init_on_alloc / init_on_free (and the kmemleak calls of the
//! same hooks) — mm/slab.h's
//! `slab_want_init_on_alloc()` / `slab_want_init_on_free()`, and mm/slub.c's zeroing in
//! `slab_free_hook()`, `maybe_wipe_obj_freeptr()` and `slab_post_alloc_hook()`. The two
//! switches come in [`SlubParams`](super::SlubParams) (the kernel copies the page
//! allocator's, which read the command line).

use core::ptr;

use super::{KmemCache, SlubAllocator};
use crate::mm::gfp::{GfpT, __GFP_ZERO};
use crate::mm::slab::{SLAB_POISON, SLAB_RED_ZONE, SLAB_TYPESAFE_BY_RCU};

/// memset(p, 0, len) for the zeroing hooks, as arm64's assembler memset zeroes: 64 bytes
/// per step with four `stp xzr, xzr` (what LLVM would turn a plain loop of stores back into
/// a call of the generic `memset`, which takes about three times the instructions), then the
/// rest, if any, with `write_bytes`.
///
/// # Safety
/// `p` is valid for writes of `len` bytes.
#[inline(always)]
pub(super) unsafe fn memzero(p: *mut u8, len: usize) {
    #[cfg(target_arch = "aarch64")]
    {
        let blocks = len / 64;
        let mut q = p;
        if blocks != 0 {
            // SAFETY: the caller's guarantee covers the `blocks * 64` bytes written (STP
            // needs no alignment on normal memory).
            unsafe {
                core::arch::asm!(
                    "2:",
                    "stp xzr, xzr, [{q}]",
                    "stp xzr, xzr, [{q}, #16]",
                    "stp xzr, xzr, [{q}, #32]",
                    "stp xzr, xzr, [{q}, #48]",
                    "add {q}, {q}, #64",
                    "subs {n}, {n}, #1",
                    "b.ne 2b",
                    q = inout(reg) q,
                    n = inout(reg) blocks => _,
                    options(nostack),
                )
            };
        }
        if !len.is_multiple_of(64) {
            // SAFETY: the rest of the caller's range.
            unsafe { ptr::write_bytes(q, 0, len % 64) };
        }
    }
    #[cfg(not(target_arch = "aarch64"))]
    // SAFETY: the caller's guarantee.
    unsafe {
        ptr::write_bytes(p, 0, len)
    };
}

impl SlubAllocator<'_> {
    /// Linux: slab_want_init_on_alloc() — not for caches with a constructor (the object
    /// must keep what it built), nor, beyond `__GFP_ZERO`, for RCU-typesafe or poisoned ones.
    #[inline]
    pub(super) fn slab_want_init_on_alloc(&self, gfp: GfpT, s: &KmemCache) -> bool {
        if self.params.init_on_alloc {
            if s.ctor.is_some() {
                return false;
            }
            if s.flags & (SLAB_TYPESAFE_BY_RCU | SLAB_POISON) != 0 {
                return gfp & __GFP_ZERO != 0;
            }
            return true;
        }
        gfp & __GFP_ZERO != 0
    }

    /// Linux: slab_want_init_on_free().
    #[inline]
    pub(super) fn slab_want_init_on_free(&self, s: &KmemCache) -> bool {
        self.params.init_on_free
            && s.ctor.is_none()
            && s.flags & (SLAB_TYPESAFE_BY_RCU | SLAB_POISON) == 0
    }

    /// Whether an allocation with `gfp` needs slab_post_alloc_hook()'s work (the fast
    /// paths' test: no switch on (init_on_alloc, init_on_free, kmemleak) and no
    /// `__GFP_ZERO`, nothing to do).
    #[inline(always)]
    pub(super) fn alloc_needs_init(&self, gfp: GfpT) -> bool {
        gfp & __GFP_ZERO != 0 || self.params.alloc_hook
    }

    /// Linux: maybe_wipe_obj_freeptr() then slab_post_alloc_hook()'s zeroing: under
    /// init_on_free the object was zeroed when freed but for the free pointer, which is
    /// cleared now; under init_on_alloc (or `__GFP_ZERO`) the object is zeroed.
    #[inline(never)]
    pub(super) fn slab_post_alloc_hook(
        &self,
        s: &KmemCache,
        gfp: GfpT,
        object: *mut u8,
        orig_size: usize,
    ) -> *mut u8 {
        if object.is_null() {
            return object;
        }
        if self.params.kmemleak {
            // A tail call: the hook stays without a stack frame.
            return self.slab_post_alloc_kmemleak(s, gfp, object, orig_size);
        }
        self.slab_post_alloc_init(s, gfp, object, orig_size)
    }

    /// slab_post_alloc_hook() under kmemleak: kmemleak_alloc_recursive(), then the rest.
    #[cold]
    #[inline(never)]
    fn slab_post_alloc_kmemleak(
        &self,
        s: &KmemCache,
        gfp: GfpT,
        object: *mut u8,
        orig_size: usize,
    ) -> *mut u8 {
        crate::mm::kmemleak::kmemleak_alloc_recursive(object, s.object_size() as usize, 1, s.flags);
        self.slab_post_alloc_init(s, gfp, object, orig_size)
    }

    /// slab_post_alloc_hook()'s initialisation of a non-null object.
    #[inline(always)]
    fn slab_post_alloc_init(
        &self,
        s: &KmemCache,
        gfp: GfpT,
        object: *mut u8,
        orig_size: usize,
    ) -> *mut u8 {
        if self.slab_want_init_on_free(s) {
            // SAFETY: the free pointer's word lies inside the object's slot (s.offset +
            // 8 <= s.size), which the caller now owns.
            unsafe { ptr::write_unaligned(object.add(s.offset as usize) as *mut usize, 0) };
        }
        if self.slab_want_init_on_alloc(gfp, s) {
            return self.slab_post_alloc_zero(s, object, orig_size);
        }
        object
    }

    /// Linux: slab_free_hook() — kmemleak_free_recursive(), then the init_on_free
    /// zeroing.
    #[inline(never)]
    pub(super) fn slab_free_hook(&self, s: &KmemCache, object: *mut u8) {
        if self.params.kmemleak {
            crate::mm::kmemleak::kmemleak_free_recursive(object, s.flags);
        }
        self.slab_free_init(s, object);
    }

    /// Linux: slab_free_hook()'s init_on_free zeroing: the object, and the metadata after
    /// `inuse` up to the next object's left red zone (the right red zone between
    /// `object_size` and `inuse` stays, for the debug checks).
    #[inline]
    pub(super) fn slab_free_init(&self, s: &KmemCache, object: *mut u8) {
        // Linux: slab_free_freelist_hook() leaves KFENCE objects to kfence_free().
        if !self.slab_want_init_on_free(s) || self.is_kfence_address(object) {
            return;
        }
        let rsize = if s.flags & SLAB_RED_ZONE != 0 {
            s.red_left_pad
        } else {
            0
        };
        let inuse = s.inuse() as usize;
        // SAFETY: the object being freed is the caller's until the free completes; its slot
        // spans s.size - red_left_pad bytes from `object`.
        unsafe {
            memzero(object, s.object_size() as usize);
            ptr::write_bytes(object.add(inuse), 0, (s.size - rsize) as usize - inuse);
        }
    }
}

#[cfg(test)]
mod tests;
