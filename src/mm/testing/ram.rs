//! Simulated RAM for host tests: host allocations standing in for windows of physical
//! memory, and Linux's `__va()`/`__pa()` over them as the plain `fn`s the cores take as
//! hooks (`Memblock::set_phys_to_virt`, `PageAllocEnv::phys_to_virt`, `arch_numa_init`).
//! Mirrors nothing in Linux: it is what `arch/arm64/mm/mmu.c`'s linear map is to the kernel.
//!
//! Each test thread has its own physical address space: the hooks look the address up in
//! the windows of the calling thread, so tests running in parallel may all put RAM at
//! 0x4000_0000 (a thread a test spawns sees no windows).

use crate::mm::{PhysAddr, VirtAddr, PAGE_SIZE};
use std::alloc::{alloc, dealloc, Layout};
use std::cell::RefCell;

/// What simulated RAM holds before anyone writes it, so a test tells zeroed memory from
/// untouched memory.
pub const FILL: u8 = 0xaa;

/// Host and physical addresses of a window agree modulo this (4 MiB, the largest buddy
/// block): a naturally aligned physical block is a naturally aligned host block.
const ALIGN: usize = PAGE_SIZE as usize * crate::include::mmzone::MAX_ORDER_NR_PAGES as usize;

/// A backed window: physical base, host address, size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    base: u64,
    host: usize,
    size: usize,
}

std::thread_local! {
    /// The windows this thread's `__va()`/`__pa()` see.
    static MAPPED: RefCell<Vec<Window>> = const { RefCell::new(Vec::new()) };
}

/// The windows of one simulated machine; their host memory is freed when this is dropped,
/// unless [`SimRam::leak`] made it live for the rest of the process.
pub struct SimRam {
    windows: Vec<(Window, *mut u8, Layout)>,
}

impl SimRam {
    /// A machine with no RAM yet. The calling thread forgets every window it saw before
    /// (one simulated machine per thread at a time).
    pub fn new() -> Self {
        MAPPED.with(|m| m.borrow_mut().clear());
        Self {
            windows: Vec::new(),
        }
    }

    /// Backs physical `[base, base + size)` with host memory filled with [`FILL`]: page
    /// aligned, and congruent to `base` modulo 4 MiB.
    pub fn back(&mut self, base: u64, size: u64) {
        let size = size as usize;
        if size == 0 {
            return;
        }
        let layout = Layout::from_size_align(size + ALIGN, PAGE_SIZE as usize).unwrap();
        // SAFETY: the layout has a non-zero size.
        let mem = unsafe { alloc(layout) };
        assert!(!mem.is_null(), "out of host memory for {size:#x} bytes");
        let want = base as usize % ALIGN;
        let skew = (want + ALIGN - mem as usize % ALIGN) % ALIGN;
        let host = mem.wrapping_add(skew);
        // SAFETY: `skew < ALIGN`, so `[host, host + size)` lies inside the allocation.
        unsafe { core::ptr::write_bytes(host, FILL, size) };
        let w = Window {
            base,
            host: host as usize,
            size,
        };
        MAPPED.with(|m| m.borrow_mut().push(w));
        self.windows.push((w, mem, layout));
    }

    /// `len` bytes of simulated RAM at `pa`, which must lie in one window.
    pub fn bytes(&self, pa: PhysAddr, len: u64) -> &[u8] {
        let pa = pa.0;
        let w = self
            .windows
            .iter()
            .map(|(w, _, _)| w)
            .find(|w| pa >= w.base && pa - w.base + len <= w.size as u64)
            .unwrap_or_else(|| panic!("[{pa:#x}, +{len:#x}) is not simulated RAM"));
        // SAFETY: inside the window (checked above), which lives as long as `self`.
        unsafe {
            core::slice::from_raw_parts(
                (w.host + (pa - w.base) as usize) as *const u8,
                len as usize,
            )
        }
    }

    /// Keeps the host memory for the rest of the process: for structures leaked as
    /// `'static` (a `NodeDataMap`, a `PageAlloc`) that point into it.
    pub fn leak(mut self) {
        self.windows.clear();
    }
}

impl Default for SimRam {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SimRam {
    fn drop(&mut self) {
        MAPPED.with(|m| {
            m.borrow_mut()
                .retain(|w| !self.windows.iter().any(|(o, _, _)| o == w))
        });
        for &(_, mem, layout) in &self.windows {
            // SAFETY: allocated in back() with this layout.
            unsafe { dealloc(mem, layout) };
        }
    }
}

/// Finds the window holding `f(window)`, trying the inside of windows before their ends
/// (an end address may be the start of the next window).
fn lookup<T>(f: impl Fn(&Window, bool) -> Option<T>) -> Option<T> {
    MAPPED.with(|m| {
        let m = m.borrow();
        m.iter()
            .find_map(|w| f(w, false))
            .or_else(|| m.iter().find_map(|w| f(w, true)))
    })
}

/// Linux's `__va()` over this thread's simulated RAM (the end of a window included).
/// Panics for physical addresses no window backs.
pub fn __va(pa: PhysAddr) -> *mut u8 {
    lookup(|w, end| {
        let off = pa.0.checked_sub(w.base)?;
        let inside = if end {
            off == w.size as u64
        } else {
            off < w.size as u64
        };
        inside.then(|| (w.host + off as usize) as *mut u8)
    })
    .unwrap_or_else(|| panic!("phys {:#x} is outside the simulated RAM", pa.0))
}

/// Linux's `__pa()` of a simulated RAM address (the end of a window included), as
/// memblock's hook takes it. Panics for other addresses.
pub fn __pa(va: *const u8) -> PhysAddr {
    let v = va as usize;
    lookup(|w, end| {
        let off = v.checked_sub(w.host)?;
        let inside = if end { off == w.size } else { off < w.size };
        inside.then(|| PhysAddr(w.base + off as u64))
    })
    .unwrap_or_else(|| panic!("{v:#x} is not a simulated RAM address"))
}

/// [`__pa`] as the page allocator's hook takes it.
pub fn __pa_virt(va: VirtAddr) -> PhysAddr {
    __pa(va.0 as *const u8)
}
