//! Rust's global allocator for the kernel (`alloc::` — Box, Vec, BTreeMap): an early heap
//! until SLUB is up, kmalloc after. Not a Linux file: Linux's early allocations are memblock
//! calls, and everything later is kmalloc/vmalloc; Rust's `alloc` needs one `GlobalAlloc`
//! for both phases.
//!
//! ```text
//!   boot ──► early_heap_init(va, size) ──► ... ──► kmem_cache_init() ──► ...
//!            alloc: early Heap<32>                 alloc: kmalloc / kmalloc_large
//!            dealloc: whoever owns the address (the early region, or kfree)
//! ```
//!
//! # The alignment rule
//! kmalloc guarantees `ARCH_KMALLOC_MINALIGN` (the allocator's `kmalloc_min_size`: 128 on
//! arm64 6.1) for every object and natural alignment for power-of-two sizes (slab_common.rs).
//! So a `Layout` whose alignment is at most that minimum is served by `kmalloc(size)`; a
//! larger alignment by `kmalloc(max(size, align).next_power_of_two())`, which is naturally
//! aligned. The result is checked anyway: a misaligned block is freed and the allocation
//! fails rather than returning memory the caller may not use.
//!
//! Blocks larger than kmalloc can serve (`KMALLOC_MAX_SIZE`, 4 MiB: the buddy's largest
//! block) go to vmalloc when its hooks are set ([`VmallocHooks`], Linux's kvmalloc()
//! fallback); without them such an allocation fails.
//!
//! # Locks
//! `early` is a spin lock around the early heap; `early_range` and `slab` are set once
//! (early_heap_init, slab_ready) and read without it.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicUsize, Ordering};

use buddy_system_allocator::Heap;

use super::slab::{zero_or_null_ptr, KMALLOC_MAX_SIZE};
use super::slub::{SlabState, SlubAllocator};
use crate::mm::gfp::{__GFP_ZERO, GFP_KERNEL};

/// Which allocator owns a pointer (for dealloc and for tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The early heap.
    Early,
    /// vmalloc (through [`VmallocHooks`]).
    Vmalloc,
    /// kmalloc (a slab object or a large kmalloc block).
    Slab,
}

/// The vmalloc half of Linux's kvmalloc(), for blocks above `KMALLOC_MAX_SIZE`: set by the
/// kernel once vmalloc is up (`HeapDispatch::set_vmalloc_hooks`).
#[derive(Clone, Copy)]
pub struct VmallocHooks {
    /// Linux: __vmalloc_node(size, align, GFP_KERNEL, ...) — NULL on failure.
    pub vmalloc: fn(size: usize, align: usize) -> *mut u8,
    /// Linux: vfree().
    pub vfree: fn(*mut u8),
    /// Linux: is_vmalloc_addr().
    pub is_vmalloc_addr: fn(*const u8) -> bool,
}

/// The dispatching allocator: the early heap and, once set, a SLUB allocator.
pub struct HeapDispatch<'a> {
    /// The early heap. Lock: this spin lock.
    early: spin::Mutex<Heap<32>>,
    /// The early heap's region [start, end) (set once).
    early_start: AtomicUsize,
    early_end: AtomicUsize,
    /// The slab allocator, once kmem_cache_init() ran.
    slab: spin::Once<&'a SlubAllocator<'a>>,
    /// vmalloc, once it is up.
    vmalloc: spin::Once<VmallocHooks>,
}

impl<'a> HeapDispatch<'a> {
    /// No memory yet: every allocation fails until early_heap_init().
    pub const fn new() -> Self {
        Self {
            early: spin::Mutex::new(Heap::new()),
            early_start: AtomicUsize::new(0),
            early_end: AtomicUsize::new(0),
            slab: spin::Once::new(),
            vmalloc: spin::Once::new(),
        }
    }

    /// Lets blocks above KMALLOC_MAX_SIZE come from vmalloc.
    pub fn set_vmalloc_hooks(&self, hooks: VmallocHooks) {
        self.vmalloc.call_once(|| hooks);
    }

    /// Seeds the early heap with `[start, start + size)` (the kernel: a memblock allocation
    /// in the linear map, during setup_arch()). Only one region.
    ///
    /// # Safety
    /// The region is writable memory nothing else uses, for as long as this dispatcher lives.
    pub unsafe fn early_heap_init(&self, start: usize, size: usize) {
        assert!(
            self.early_end.load(Ordering::Relaxed) == 0,
            "early heap seeded twice"
        );
        let mut h = self.early.lock();
        // SAFETY: the caller's guarantee.
        unsafe { h.init(start, size) };
        self.early_start.store(start, Ordering::Relaxed);
        self.early_end.store(start + size, Ordering::Release);
    }

    /// Switches new allocations to `slab` (init's kmem_cache_init() calls this for the
    /// kernel, right after SLUB is up).
    pub fn slab_ready(&self, slab: &'a SlubAllocator<'a>) {
        self.slab.call_once(|| slab);
    }

    /// The slab allocator, if it is up.
    fn slab(&self) -> Option<&'a SlubAllocator<'a>> {
        self.slab
            .get()
            .copied()
            .filter(|s| s.slab_state() >= SlabState::Up)
    }

    /// Who owns `p`: the early heap if `p` is in its region, else kmalloc.
    pub fn owner(&self, p: *const u8) -> Owner {
        let (s, e) = (
            self.early_start.load(Ordering::Relaxed),
            self.early_end.load(Ordering::Acquire),
        );
        if (s..e).contains(&(p as usize)) {
            Owner::Early
        } else if self.vmalloc.get().is_some_and(|v| (v.is_vmalloc_addr)(p)) {
            Owner::Vmalloc
        } else {
            Owner::Slab
        }
    }

    /// Bytes in use in the early heap (its statistics).
    pub fn early_in_use(&self) -> usize {
        self.early.lock().stats_alloc_actual()
    }

    /// The kmalloc size that gives `layout` its alignment (see the module doc).
    fn kmalloc_size(slab: &SlubAllocator, layout: Layout) -> usize {
        if layout.align() <= slab.params.kmalloc_min_size {
            layout.size()
        } else {
            layout.size().max(layout.align()).next_power_of_two()
        }
    }

    /// GlobalAlloc::alloc, with `zero` for alloc_zeroed.
    #[track_caller]
    pub fn allocate(&self, layout: Layout, zero: bool) -> *mut u8 {
        if let Some(slab) = self.slab() {
            let size = Self::kmalloc_size(slab, layout).max(1);
            if size > KMALLOC_MAX_SIZE {
                let Some(v) = self.vmalloc.get() else {
                    return ptr::null_mut();
                };
                let p = (v.vmalloc)(layout.size(), layout.align());
                if !p.is_null() && zero {
                    // SAFETY: a fresh block of layout.size() bytes.
                    unsafe { ptr::write_bytes(p, 0, layout.size()) };
                }
                return p;
            }
            let gfp = if zero {
                GFP_KERNEL | __GFP_ZERO
            } else {
                GFP_KERNEL
            };
            let p = slab.kmalloc(size, gfp);
            if zero_or_null_ptr(p) {
                return ptr::null_mut();
            }
            if !(p as usize).is_multiple_of(layout.align()) {
                pr_err!(
                    "mm: kmalloc({}) returned 0x{:016x}, not aligned to {}",
                    size,
                    p as usize,
                    layout.align()
                );
                // SAFETY: just allocated, never handed out.
                unsafe { slab.kfree(p) };
                return ptr::null_mut();
            }
            return p;
        }
        match self.early.lock().alloc(layout) {
            Ok(p) => {
                if zero {
                    // SAFETY: a fresh block of at least layout.size() bytes.
                    unsafe { ptr::write_bytes(p.as_ptr(), 0, layout.size()) };
                }
                p.as_ptr()
            }
            Err(()) => ptr::null_mut(),
        }
    }

    /// GlobalAlloc::dealloc: to whichever allocator owns the address.
    ///
    /// # Safety
    /// `p` came from allocate() with this layout and is not used afterwards.
    pub unsafe fn deallocate(&self, p: *mut u8, layout: Layout) {
        match self.owner(p) {
            // SAFETY: the caller's guarantee; the early heap handed it out with this layout.
            Owner::Early => unsafe { self.early.lock().dealloc(NonNull::new_unchecked(p), layout) },
            Owner::Vmalloc => {
                if let Some(v) = self.vmalloc.get() {
                    (v.vfree)(p)
                }
            }
            Owner::Slab => match self.slab.get() {
                // SAFETY: outside the early region, so kmalloc returned it.
                Some(slab) => unsafe { slab.kfree(p) },
                None => pr_err!("mm: dealloc of 0x{:016x}: no allocator owns it", p as usize),
            },
        }
    }

    /// GlobalAlloc::realloc: krealloc for kmalloc'ed blocks of default alignment that stay
    /// within kmalloc's range; else a new block, a copy and a free.
    ///
    /// # Safety
    /// As GlobalAlloc::realloc.
    pub unsafe fn reallocate(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if let Some(slab) = self.slab() {
            if self.owner(p) == Owner::Slab
                && layout.align() <= slab.params.kmalloc_min_size
                && new_size <= KMALLOC_MAX_SIZE
            {
                // SAFETY: a kmalloc'ed block with default alignment; krealloc keeps it.
                let q = unsafe { slab.krealloc(p, new_size.max(1), GFP_KERNEL) };
                return if zero_or_null_ptr(q) {
                    ptr::null_mut()
                } else {
                    q
                };
            }
        }
        // SAFETY: the new layout is valid: GlobalAlloc::realloc's contract.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let q = self.allocate(new_layout, false);
        if !q.is_null() {
            // SAFETY: both blocks hold at least min(old, new) bytes.
            unsafe {
                ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                self.deallocate(p, layout);
            }
        }
        q
    }
}

impl Default for HeapDispatch<'_> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: allocate/deallocate follow GlobalAlloc's contract: blocks of at least the layout's
// size and alignment (checked for kmalloc, guaranteed by Heap), freed by their owner.
unsafe impl GlobalAlloc for HeapDispatch<'_> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.allocate(layout, false)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.allocate(layout, true)
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.deallocate(p, layout) }
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe { self.reallocate(p, layout, new_size) }
    }
}

/// The kernel's heap (`#[global_allocator]` on the bare-metal target).
#[cfg_attr(target_os = "none", global_allocator)]
pub static KERNEL_HEAP: HeapDispatch<'static> = HeapDispatch::new();

/// Seeds the kernel's early heap (the kernel calls this from setup_arch() with a memblock
/// allocation's linear-map address).
///
/// # Safety
/// See [`HeapDispatch::early_heap_init`].
pub unsafe fn early_heap_init(start_va: usize, size: usize) {
    // SAFETY: forwarded.
    unsafe { KERNEL_HEAP.early_heap_init(start_va, size) }
}

#[cfg(test)]
mod tests;
