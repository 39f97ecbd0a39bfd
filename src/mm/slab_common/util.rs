//! Linux 6.1: the kmalloc helpers of mm/util.c — `kmemdup()`, `kmemdup_nul()`,
//! `kstrdup()`, `kstrndup()` — over this allocator's kmalloc (Linux's
//! `kmalloc_track_caller()`: the caller recorded is the helper's caller).

use core::ffi::CStr;
use core::panic::Location;
use core::ptr;

use super::super::slub::SlubAllocator;
use crate::include::numa::NUMA_NO_NODE;
use crate::mm::gfp::GfpT;

impl SlubAllocator<'_> {
    /// kmalloc_track_caller() of `len` bytes holding `src` then `nul` NUL bytes (0 or 1).
    fn dup(&self, src: &[u8], nul: bool, gfp: GfpT, caller: &'static Location<'static>) -> *mut u8 {
        let len = src.len() + nul as usize;
        let p = self.do_kmalloc_node(len, gfp, NUMA_NO_NODE, caller);
        if !p.is_null() && len != 0 {
            // SAFETY: `len` fresh bytes of ours, not overlapping `src` (a live borrow).
            unsafe {
                ptr::copy_nonoverlapping(src.as_ptr(), p, src.len());
                if nul {
                    p.add(src.len()).write(0);
                }
            }
        }
        p
    }

    /// Linux: kmemdup() — a kmalloc'ed copy of `src` (ZERO_SIZE_PTR for an empty one, as
    /// kmalloc(0)); NULL when out of memory.
    #[track_caller]
    pub fn kmemdup(&self, src: &[u8], gfp: GfpT) -> *mut u8 {
        self.dup(src, false, gfp, Location::caller())
    }

    /// Linux: kmemdup_nul() — a copy of `src` with a NUL byte appended.
    #[track_caller]
    pub fn kmemdup_nul(&self, src: &[u8], gfp: GfpT) -> *mut u8 {
        self.dup(src, true, gfp, Location::caller())
    }

    /// Linux: kstrdup() — a copy of the C string, NUL included; NULL for NULL.
    #[track_caller]
    pub fn kstrdup(&self, s: Option<&CStr>, gfp: GfpT) -> *mut u8 {
        match s {
            Some(s) => self.dup(s.to_bytes_with_nul(), false, gfp, Location::caller()),
            None => ptr::null_mut(),
        }
    }

    /// Linux: kstrndup() — a copy of at most `max` bytes of the C string, NUL-terminated;
    /// NULL for NULL.
    #[track_caller]
    pub fn kstrndup(&self, s: Option<&CStr>, max: usize, gfp: GfpT) -> *mut u8 {
        match s {
            Some(s) => {
                let b = s.to_bytes();
                self.dup(&b[..b.len().min(max)], true, gfp, Location::caller())
            }
            None => ptr::null_mut(),
        }
    }
}

#[cfg(test)]
mod tests;
