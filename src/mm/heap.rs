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

use super::page_alloc::{__GFP_ZERO, GFP_KERNEL};
use super::slab_common::{zero_or_null_ptr, KMALLOC_MAX_SIZE};
use super::slub::{SlabState, SlubAllocator};

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

    /// Switches new allocations to `slab` (kmem_cache_init calls this for the kernel).
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
mod tests {
    use super::*;
    use crate::mm::slub::sim::Machine;
    use crate::mm::slub::SlubParams;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    /// Before slab: the early heap; after: kmalloc; frees go to the owner either way.
    #[test]
    fn dispatch_early_then_slab() {
        let region: &'static mut [u64] = Box::leak(vec![0u64; 1 << 17].into_boxed_slice()); // 1 MiB
        let (start, size) = (region.as_mut_ptr() as usize, region.len() * 8);
        let m = Machine::with_params(64, SlubParams::new(2, 1, 3));
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
        let m = Machine::with_params(64, SlubParams::new(1, 1, 4));
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
        let m = Machine::with_params(128, SlubParams::new(2, 1, 5));
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
}
