//! Host tests of kvmalloc / kvfree / kvrealloc (mm/util.rs) over a simulated SLUB and a
//! recording stand-in for vmalloc, against Linux 6.1's mm/util.c rules.
use super::*;
use crate::kernel::printk::take_captured;
use crate::mm::gfp::{__GFP_ZERO, GFP_ATOMIC, GFP_KERNEL, GFP_NOWAIT};
use crate::mm::slab::ZERO_SIZE_PTR;
use crate::mm::testing::SlubMachine;
use core::sync::atomic::Ordering;
use std::cell::{Cell, RefCell};
use std::vec::Vec;

/// SLUB for kmalloc; vmalloc hands out page-aligned host blocks and remembers them. Every
/// call is recorded with its flags.
struct Sim {
    m: SlubMachine,
    calls: RefCell<Vec<(&'static str, usize, GfpT, i32)>>,
    vmalloced: RefCell<Vec<(usize, usize)>>,
    vmalloc_fails: bool,
    /// Out of memory for kmalloc.
    kmalloc_fails: Cell<bool>,
}

impl Sim {
    fn new() -> Self {
        Self {
            m: SlubMachine::small(),
            calls: RefCell::new(Vec::new()),
            vmalloced: RefCell::new(Vec::new()),
            vmalloc_fails: false,
            kmalloc_fails: Cell::new(false),
        }
    }

    fn calls(&self) -> Vec<(&'static str, usize, GfpT, i32)> {
        self.calls.borrow_mut().drain(..).collect()
    }
}

impl KvAlloc for Sim {
    fn kmalloc_node(&self, size: usize, flags: GfpT, node: i32) -> *mut u8 {
        self.calls.borrow_mut().push(("kmalloc", size, flags, node));
        if self.kmalloc_fails.get() {
            return ptr::null_mut();
        }
        self.m.slub.kmalloc_node(size, flags, node)
    }

    fn vmalloc_node(&self, size: usize, flags: GfpT, node: i32) -> *mut u8 {
        self.calls.borrow_mut().push(("vmalloc", size, flags, node));
        if self.vmalloc_fails {
            return ptr::null_mut();
        }
        let layout = std::alloc::Layout::from_size_align(size, 4096).unwrap();
        // SAFETY: size is not zero (kvmalloc only falls back above a page).
        let p = unsafe {
            if flags & __GFP_ZERO != 0 {
                std::alloc::alloc_zeroed(layout)
            } else {
                std::alloc::alloc(layout)
            }
        };
        self.vmalloced.borrow_mut().push((p as usize, size));
        p
    }

    unsafe fn kfree(&self, p: *const u8) {
        self.calls.borrow_mut().push(("kfree", 0, 0, 0));
        // SAFETY: forwarded.
        unsafe { self.m.slub.kfree(p) }
    }

    unsafe fn vfree(&self, p: *const u8) {
        self.calls.borrow_mut().push(("vfree", 0, 0, 0));
        let mut v = self.vmalloced.borrow_mut();
        let i = v
            .iter()
            .position(|&(a, _)| a == p as usize)
            .expect("vfree of a vmalloc area");
        let (a, size) = v.swap_remove(i);
        // SAFETY: allocated above with this layout, freed once.
        unsafe {
            std::alloc::dealloc(
                a as *mut u8,
                std::alloc::Layout::from_size_align(size, 4096).unwrap(),
            )
        };
    }

    fn is_vmalloc_addr(&self, p: *const u8) -> bool {
        let p = p as usize;
        self.vmalloced
            .borrow()
            .iter()
            .any(|&(a, s)| p >= a && p < a + s)
    }
}

const LARGE_FLAGS: GfpT = __GFP_NOWARN | __GFP_NORETRY;

#[test]
fn a_page_or_less_is_plain_kmalloc_without_fallback() {
    let s = Sim::new();
    let p = kvmalloc_node_in(&s, 4096, GFP_KERNEL | __GFP_NOFAIL, NUMA_NO_NODE);
    assert!(!p.is_null() && !s.is_vmalloc_addr(p));
    // Flags untouched at PAGE_SIZE, even __GFP_NOFAIL.
    assert_eq!(
        s.calls(),
        [("kmalloc", 4096, GFP_KERNEL | __GFP_NOFAIL, NUMA_NO_NODE)]
    );
    // SAFETY: live, freed once.
    unsafe { kvfree_in(&s, p) };
    assert_eq!(s.calls()[0].0, "kfree");
    // Out of memory: NULL, and no vmalloc for a page or less.
    s.kmalloc_fails.set(true);
    let p = kvmalloc_node_in(&s, 4096, GFP_KERNEL, NUMA_NO_NODE);
    assert!(p.is_null());
    assert_eq!(s.calls().len(), 1);
    s.kmalloc_fails.set(false);
    // kvmalloc(0) is kmalloc(0): ZERO_SIZE_PTR, which kvfree takes.
    assert_eq!(
        kvmalloc_node_in(&s, 0, GFP_KERNEL, NUMA_NO_NODE),
        ZERO_SIZE_PTR
    );
    // SAFETY: ZERO_SIZE_PTR and NULL are no-ops for kfree.
    unsafe {
        kvfree_in(&s, ZERO_SIZE_PTR);
        kvfree_in(&s, ptr::null());
    }
}

#[test]
fn above_a_page_kmalloc_is_asked_quietly_first() {
    let s = Sim::new();
    let p = kvmalloc_node_in(&s, 64 << 10, GFP_KERNEL | __GFP_NOFAIL, 0);
    assert!(!p.is_null() && !s.is_vmalloc_addr(p));
    // __GFP_NOWARN | __GFP_NORETRY added, __GFP_NOFAIL taken off.
    assert_eq!(
        s.calls(),
        [("kmalloc", 64 << 10, GFP_KERNEL | LARGE_FLAGS, 0)]
    );
    // __GFP_RETRY_MAYFAIL keeps its retries: no __GFP_NORETRY.
    let q = kvmalloc_node_in(&s, 8192, GFP_KERNEL | __GFP_RETRY_MAYFAIL, NUMA_NO_NODE);
    assert_eq!(
        s.calls()[0].2,
        GFP_KERNEL | __GFP_RETRY_MAYFAIL | __GFP_NOWARN
    );
    // SAFETY: live, freed once.
    unsafe {
        kvfree_in(&s, p);
        kvfree_in(&s, q);
    }
}

#[test]
fn what_kmalloc_cannot_give_comes_from_vmalloc() {
    let s = Sim::new();
    take_captured();
    // 8 MiB is above KMALLOC_MAX_SIZE (an order-11 page): kmalloc fails, quietly.
    let p = kvmalloc_node_in(&s, 8 << 20, GFP_KERNEL | __GFP_ZERO, NUMA_NO_NODE);
    assert!(s.is_vmalloc_addr(p));
    assert_eq!(
        s.calls(),
        [
            (
                "kmalloc",
                8 << 20,
                GFP_KERNEL | __GFP_ZERO | LARGE_FLAGS,
                NUMA_NO_NODE
            ),
            // vmalloc gets the caller's flags as they were.
            ("vmalloc", 8 << 20, GFP_KERNEL | __GFP_ZERO, NUMA_NO_NODE),
        ]
    );
    // SAFETY: 8 MiB zeroed bytes.
    assert!(unsafe { core::slice::from_raw_parts(p, 8 << 20) }
        .iter()
        .all(|&b| b == 0));
    // Out of pages for kmalloc: a 2-page request falls back too.
    s.m.pages.fail.store(true, Ordering::Relaxed);
    let q = kvmalloc_node_in(&s, 8192, GFP_KERNEL, 0);
    assert!(s.is_vmalloc_addr(q));
    assert_eq!(s.calls()[1], ("vmalloc", 8192, GFP_KERNEL, 0));
    // Atomic and non-blocking requests get no vmalloc.
    for f in [GFP_ATOMIC, GFP_NOWAIT] {
        assert!(kvmalloc_node_in(&s, 8192, f, NUMA_NO_NODE).is_null());
        assert_eq!(s.calls().len(), 1, "flags {:#x}", f);
    }
    s.m.pages.fail.store(false, Ordering::Relaxed);
    // kvfree by address: vfree for both.
    // SAFETY: live, freed once.
    unsafe {
        kvfree_in(&s, p);
        kvfree_in(&s, q);
    }
    assert_eq!(s.calls(), [("vfree", 0, 0, 0), ("vfree", 0, 0, 0)]);
    assert!(s.vmalloced.borrow().is_empty());
    // kmalloc's silence: no allocation-failure report was printed.
    assert!(!take_captured().contains("allocation failure"));
}

#[test]
fn crazy_sizes_and_overflows_are_refused() {
    let mut s = Sim::new();
    s.vmalloc_fails = true;
    take_captured();
    assert!(kvmalloc_node_in(
        &s,
        i32::MAX as usize + 1,
        GFP_KERNEL | __GFP_NOWARN,
        NUMA_NO_NODE
    )
    .is_null());
    assert_eq!(s.calls().len(), 1, "no vmalloc above INT_MAX");
    assert!(!take_captured().contains("WARNING"));
    assert!(kvmalloc_node_in(&s, i32::MAX as usize + 1, GFP_KERNEL, NUMA_NO_NODE).is_null());
    assert!(take_captured().contains("WARNING: CPU: 0 PID: 0 at "));
    s.calls();
    // kvmalloc_array: n * size overflowing is NULL without asking anyone.
    assert!(kvmalloc_array_in(&s, usize::MAX / 2, 3, GFP_KERNEL).is_null());
    assert!(s.calls().is_empty());
    // A vmalloc failure is NULL.
    assert!(kvmalloc_node_in(&s, 8 << 20, GFP_KERNEL, NUMA_NO_NODE).is_null());
}

#[test]
fn kvrealloc_keeps_a_large_enough_block_and_moves_the_rest() {
    let s = Sim::new();
    let p = kvmalloc_node_in(&s, 3000, GFP_KERNEL, NUMA_NO_NODE);
    // SAFETY: 3000 live bytes.
    unsafe { ptr::write_bytes(p, 0xab, 3000) };
    // SAFETY (each call): `p`/`q` live with the sizes given.
    assert_eq!(unsafe { kvrealloc_in(&s, p, 3000, 2000, GFP_KERNEL) }, p);
    let q = unsafe { kvrealloc_in(&s, p, 3000, 8 << 20, GFP_KERNEL) };
    assert!(s.is_vmalloc_addr(q));
    // SAFETY: the first 3000 bytes were copied.
    assert!(unsafe { core::slice::from_raw_parts(q, 3000) }
        .iter()
        .all(|&b| b == 0xab));
    let names: Vec<_> = s.calls().iter().map(|c| c.0).collect();
    assert_eq!(names, ["kmalloc", "kmalloc", "vmalloc", "kfree"]);
    // SAFETY: live, freed once.
    unsafe { kvfree_in(&s, q) };
}
