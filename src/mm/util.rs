//! kvmalloc and friends (Linux 6.1: mm/util.c): memory that is physically contiguous when
//! the slab allocator can give it, and only virtually contiguous otherwise.
//!
//! kvmalloc_node() first asks kmalloc; for more than a page it asks quietly and without
//! hard retries (`__GFP_NOWARN | __GFP_NORETRY`, and without `__GFP_NOFAIL`, which the
//! vmalloc fallback honours instead), so that a large request does not fragment or OOM the
//! buddy allocator for the sake of contiguity nobody needs. A request of a page or less, or
//! one that may not sleep, gets no fallback; one above INT_MAX is refused. kvfree() tells
//! the two kinds apart by address (is_vmalloc_addr()).
//!
//! The logic is written once over [`KvAlloc`] (the allocators below it), so the host tests
//! drive it over a simulated slab allocator; `Kernel` is the kernel's own SLUB and vmalloc
//! (on the target, where vmalloc's API is).

use core::ptr;

use crate::include::numa::NUMA_NO_NODE;
use crate::mm::addr::PAGE_SIZE;
#[cfg(target_os = "none")]
use crate::mm::gfp::__GFP_ZERO;
use crate::mm::gfp::{
    GfpT, __GFP_DIRECT_RECLAIM, __GFP_NOFAIL, __GFP_NORETRY, __GFP_NOWARN, __GFP_RETRY_MAYFAIL,
};

/// What kvmalloc needs of the allocators below it.
pub trait KvAlloc {
    /// Linux: kmalloc_node() — NULL on failure, ZERO_SIZE_PTR for 0 bytes.
    fn kmalloc_node(&self, size: usize, flags: GfpT, node: i32) -> *mut u8;
    /// Linux: __vmalloc_node() — page-aligned, virtually contiguous; NULL on failure.
    fn vmalloc_node(&self, size: usize, flags: GfpT, node: i32) -> *mut u8;
    /// Linux: kfree().
    ///
    /// # Safety
    /// `p` is NULL, ZERO_SIZE_PTR or a live kmalloc object, not used after this.
    unsafe fn kfree(&self, p: *const u8);
    /// Linux: vfree().
    ///
    /// # Safety
    /// `p` is NULL or a live vmalloc area's start, not used after this.
    unsafe fn vfree(&self, p: *const u8);
    /// Linux: is_vmalloc_addr().
    fn is_vmalloc_addr(&self, p: *const u8) -> bool;
}

/// Linux: gfpflags_allow_blocking().
pub const fn gfpflags_allow_blocking(flags: GfpT) -> bool {
    flags & __GFP_DIRECT_RECLAIM != 0
}

/// Linux: kvmalloc_node() over `a`.
#[track_caller]
pub fn kvmalloc_node_in(a: &impl KvAlloc, size: usize, flags: GfpT, node: i32) -> *mut u8 {
    let mut kmalloc_flags = flags;
    // Contiguity first (it fragments less than vmalloc's pages), but a large request must
    // not be disruptive: no warning, no OOM killer, and __GFP_NOFAIL is vmalloc's to honour.
    if size > PAGE_SIZE as usize {
        kmalloc_flags |= __GFP_NOWARN;
        if kmalloc_flags & __GFP_RETRY_MAYFAIL == 0 {
            kmalloc_flags |= __GFP_NORETRY;
        }
        kmalloc_flags &= !__GFP_NOFAIL;
    }
    let ret = a.kmalloc_node(size, kmalloc_flags, node);
    // A fallback for a page or less makes no sense.
    if !ret.is_null() || size <= PAGE_SIZE as usize {
        return ret;
    }
    // vmalloc may sleep.
    if !gfpflags_allow_blocking(flags) {
        return ptr::null_mut();
    }
    if size > i32::MAX as usize {
        if flags & __GFP_NOWARN == 0 {
            warn_on_once_too_large();
        }
        return ptr::null_mut();
    }
    a.vmalloc_node(size, flags, node)
}

/// Linux: the WARN_ON_ONCE(!(flags & __GFP_NOWARN)) of kvmalloc_node()'s size check.
#[track_caller]
fn warn_on_once_too_large() {
    static WARNED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, core::sync::atomic::Ordering::Relaxed) {
        crate::kernel::bug::warn_on();
    }
}

/// Linux: kvmalloc_array_node() — `n * size` bytes, NULL if that overflows.
#[track_caller]
pub fn kvmalloc_array_in(a: &impl KvAlloc, n: usize, size: usize, flags: GfpT) -> *mut u8 {
    match n.checked_mul(size) {
        Some(bytes) => kvmalloc_node_in(a, bytes, flags, NUMA_NO_NODE),
        None => ptr::null_mut(),
    }
}

/// Linux: kvfree() — vfree() for a vmalloc address, kfree() for anything else.
///
/// # Safety
/// `p` is NULL, ZERO_SIZE_PTR, or a live block from kvmalloc (or from kmalloc or vmalloc),
/// not used after this.
pub unsafe fn kvfree_in(a: &impl KvAlloc, p: *const u8) {
    if a.is_vmalloc_addr(p) {
        // SAFETY: a vmalloc address the caller hands back (the contract).
        unsafe { a.vfree(p) }
    } else {
        // SAFETY: a kmalloc object, NULL or ZERO_SIZE_PTR (the contract).
        unsafe { a.kfree(p) }
    }
}

/// Linux: kvrealloc() (6.1) — the same block if it is large enough, else a new one with
/// the first `oldsize` bytes copied and the old one freed; NULL (old block kept) on failure.
///
/// # Safety
/// `p` is a live kvmalloc block of at least `oldsize` bytes (or NULL with `oldsize` 0); on
/// success it may not be used again unless it was returned.
#[track_caller]
pub unsafe fn kvrealloc_in(
    a: &impl KvAlloc,
    p: *const u8,
    oldsize: usize,
    newsize: usize,
    flags: GfpT,
) -> *mut u8 {
    if oldsize >= newsize {
        return p as *mut u8;
    }
    let newp = kvmalloc_node_in(a, newsize, flags, NUMA_NO_NODE);
    if newp.is_null() {
        return newp;
    }
    // SAFETY: `p` holds `oldsize` bytes (the contract), `newp` `newsize > oldsize` fresh
    // bytes; two live blocks do not overlap.
    unsafe {
        ptr::copy_nonoverlapping(p, newp, oldsize);
        kvfree_in(a, p);
    }
    newp
}

/// The kernel's allocators: SLUB (`kmalloc_node`) and vmalloc. Both NULL before they are up.
#[cfg(target_os = "none")]
pub struct Kernel;

#[cfg(target_os = "none")]
impl KvAlloc for Kernel {
    #[track_caller]
    fn kmalloc_node(&self, size: usize, flags: GfpT, node: i32) -> *mut u8 {
        crate::mm::slab_common::slub()
            .map_or(ptr::null_mut(), |s| s.kmalloc_node(size, flags, node))
    }

    fn vmalloc_node(&self, size: usize, flags: GfpT, node: i32) -> *mut u8 {
        use crate::mm::vmalloc::api::{vmalloc, vmalloc_node, vzalloc};
        let size = size as u64;
        let area = match (node, flags & __GFP_ZERO != 0) {
            (NUMA_NO_NODE, false) => vmalloc(size),
            (NUMA_NO_NODE, true) => vzalloc(size),
            (nid, zero) => vmalloc_node(size, nid).inspect(|a| {
                if zero {
                    // SAFETY: vmalloc_node just mapped `size` bytes there for us alone.
                    unsafe { ptr::write_bytes(a.as_mut_ptr::<u8>(), 0, size as usize) }
                }
            }),
        };
        area.map_or(ptr::null_mut(), |a| a.as_mut_ptr())
    }

    #[track_caller]
    unsafe fn kfree(&self, p: *const u8) {
        if let Some(s) = crate::mm::slab_common::slub() {
            // SAFETY: forwarded (the trait's contract).
            unsafe { s.kfree(p) }
        }
    }

    unsafe fn vfree(&self, p: *const u8) {
        crate::mm::vmalloc::api::vfree(p as u64)
    }

    fn is_vmalloc_addr(&self, p: *const u8) -> bool {
        crate::mm::vmalloc::api::is_vmalloc_addr(p as u64)
    }
}

#[cfg(target_os = "none")]
/// Linux: kvmalloc_node().
#[track_caller]
pub fn kvmalloc_node(size: usize, flags: GfpT, node: i32) -> *mut u8 {
    kvmalloc_node_in(&Kernel, size, flags, node)
}

#[cfg(target_os = "none")]
/// Linux: kvmalloc().
#[track_caller]
pub fn kvmalloc(size: usize, flags: GfpT) -> *mut u8 {
    kvmalloc_node_in(&Kernel, size, flags, NUMA_NO_NODE)
}

#[cfg(target_os = "none")]
/// Linux: kvzalloc().
#[track_caller]
pub fn kvzalloc(size: usize, flags: GfpT) -> *mut u8 {
    kvmalloc_node_in(&Kernel, size, flags | __GFP_ZERO, NUMA_NO_NODE)
}

#[cfg(target_os = "none")]
/// Linux: kvmalloc_array().
#[track_caller]
pub fn kvmalloc_array(n: usize, size: usize, flags: GfpT) -> *mut u8 {
    kvmalloc_array_in(&Kernel, n, size, flags)
}

#[cfg(target_os = "none")]
/// Linux: kvcalloc().
#[track_caller]
pub fn kvcalloc(n: usize, size: usize, flags: GfpT) -> *mut u8 {
    kvmalloc_array_in(&Kernel, n, size, flags | __GFP_ZERO)
}

#[cfg(target_os = "none")]
/// Linux: kvfree().
///
/// # Safety
/// See [`kvfree_in`].
pub unsafe fn kvfree(p: *const u8) {
    // SAFETY: forwarded.
    unsafe { kvfree_in(&Kernel, p) }
}

#[cfg(target_os = "none")]
/// Linux: kvrealloc().
///
/// # Safety
/// See [`kvrealloc_in`].
#[track_caller]
pub unsafe fn kvrealloc(p: *const u8, oldsize: usize, newsize: usize, flags: GfpT) -> *mut u8 {
    // SAFETY: forwarded.
    unsafe { kvrealloc_in(&Kernel, p, oldsize, newsize, flags) }
}

#[cfg(test)]
mod tests;
