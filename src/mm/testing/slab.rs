//! SLUB's page source and the SLUB step of a simulated machine, for host tests.
//!
//! [`SimPages`] is a page source over simulated RAM with its own memmap, split evenly
//! between nodes, that hands out naturally aligned blocks, counts them, checks what comes
//! back and can be told to fail (out of memory): SLUB's tests see every page it takes.
//! [`SlubMachine`] is SLUB brought up (`kmem_cache_init`, `kmem_cache_init_late`) over
//! such a source or over the buddy of a [`super::Machine`]. Mirrors `mm/slub.c`'s
//! `kmem_cache_init()` path for host tests; the page source stands in for `alloc_pages()`.

use super::ram::SimRam;
use crate::include::mmzone::MAX_ORDER;
use crate::mm::gfp::{GfpT, __GFP_COMP, __GFP_ZERO};
use crate::mm::page::{init_single_page, Page, PG_HEAD, PG_SLAB, TAIL_MAPPING};
use crate::mm::slub::{KmemCache, SlabPageSource, SlubAllocator, SlubParams, PAGE_SZ};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::cell::Cell;
use std::sync::Mutex;

std::thread_local! {
    static CPU: Cell<usize> = const { Cell::new(0) };
}

/// Makes the current thread "run on" `cpu`.
pub fn set_cpu(cpu: usize) {
    CPU.with(|c| c.set(cpu));
}

/// Linux: smp_processor_id() — the CPU the current thread "runs on" (0 unless
/// [`set_cpu`] said otherwise).
pub fn smp_processor_id() -> usize {
    CPU.with(|c| c.get())
}

/// Simulated pages: an arena of simulated RAM at physical 0 with its own memmap.
pub struct SimPages {
    /// Owns the arena's host memory.
    _ram: SimRam,
    mem: *mut u8,
    pages: Box<[Page]>,
    used: Mutex<Vec<bool>>,
    nodes: usize,
    /// Pages handed out and not yet returned.
    pub pages_out: AtomicI64,
    /// Make every allocation fail (out of memory).
    pub fail: AtomicBool,
}

// SAFETY: the arena is shared memory handed out in exclusive blocks under `used`.
unsafe impl Sync for SimPages {}
// SAFETY: as above.
unsafe impl Send for SimPages {}

impl SimPages {
    pub fn new(mib: usize, nodes: usize) -> Self {
        let npages = mib * 256;
        // Physical 0 keeps every naturally aligned block naturally aligned on the host.
        let mut ram = SimRam::new();
        ram.back(0, (npages * PAGE_SZ) as u64);
        let mem = super::ram::__va(crate::mm::PhysAddr(0));
        let pages: Box<[Page]> = (0..npages).map(|_| Page::zeroed()).collect();
        Self {
            _ram: ram,
            mem,
            pages,
            used: Mutex::new(vec![false; npages]),
            nodes,
            pages_out: AtomicI64::new(0),
            fail: AtomicBool::new(false),
        }
    }

    fn npages(&self) -> usize {
        self.pages.len()
    }

    fn page_ptr(&self, idx: usize) -> *mut Page {
        self.pages.as_ptr().wrapping_add(idx) as *mut Page
    }

    pub fn nid_of(&self, addr: *const u8) -> i32 {
        let idx = (addr as usize - self.mem as usize) / PAGE_SZ;
        (idx / (self.npages() / self.nodes)) as i32
    }

    pub fn pages_out(&self) -> i64 {
        self.pages_out.load(Ordering::Relaxed)
    }

    fn try_node(&self, used: &mut [bool], order: u32, nid: usize) -> Option<usize> {
        let per = self.npages() / self.nodes;
        let n = 1usize << order;
        let mut i = nid * per;
        while i + n <= (nid + 1) * per {
            if used[i..i + n].iter().all(|u| !u) {
                used[i..i + n].iter_mut().for_each(|u| *u = true);
                return Some(i);
            }
            i += n;
        }
        None
    }
}

// SAFETY: blocks are exclusive (the `used` map), naturally aligned, prepared as the trait
// asks; addresses map one-to-one to the memmap.
unsafe impl SlabPageSource for SimPages {
    fn alloc_pages(&self, gfp: GfpT, order: u32, nid: i32) -> Option<NonNull<Page>> {
        if self.fail.load(Ordering::Relaxed) || order as usize >= MAX_ORDER {
            return None;
        }
        let mut used = self.used.lock().unwrap();
        // NUMA_NO_NODE: the running CPU's node first (Linux: numa_mem_id()).
        let nid = if nid < 0 { self.numa_mem_id() } else { nid };
        let first = nid as usize % self.nodes;
        let idx = (0..self.nodes)
            .map(|k| (first + k) % self.nodes)
            .find_map(|node| self.try_node(&mut used, order, node))?;
        drop(used);
        let per = self.npages() / self.nodes;
        for i in 0..1usize << order {
            // SAFETY: the block is ours now.
            unsafe { init_single_page(&mut *self.page_ptr(idx + i), 2, ((idx + i) / per) as i32) };
        }
        if order > 0 && gfp & __GFP_COMP != 0 {
            // SAFETY: as above (Linux: prep_compound_page()).
            unsafe {
                let head = self.page_ptr(idx);
                (*head).set_flag(PG_HEAD);
                for i in 1..1usize << order {
                    let p = &mut *head.add(i);
                    p.mapping = TAIL_MAPPING;
                    p.set_compound_head(head);
                }
                (*head.add(1)).set_compound_head_info(crate::mm::page::COMPOUND_PAGE_DTOR, order);
            }
        }
        let addr = self.mem.wrapping_add(idx * PAGE_SZ);
        // SAFETY: the block's memory is ours.
        unsafe {
            ptr::write_bytes(
                addr,
                if gfp & __GFP_ZERO != 0 { 0 } else { 0xa7 },
                PAGE_SZ << order,
            )
        };
        self.pages_out.fetch_add(1 << order, Ordering::Relaxed);
        NonNull::new(self.page_ptr(idx))
    }

    unsafe fn free_pages(&self, page: NonNull<Page>, order: u32) {
        let idx =
            (page.as_ptr() as usize - self.pages.as_ptr() as usize) / core::mem::size_of::<Page>();
        // SAFETY: a page of our memmap.
        let p = unsafe { page.as_ref() };
        assert_eq!(
            p.flags.load(Ordering::Relaxed) & (1 << PG_SLAB),
            0,
            "freeing a page with PG_slab"
        );
        assert_eq!(p.mapping, 0, "freeing a page with a mapping");
        assert_eq!(p.page_count(), 1, "freeing a page with refcount != 1");
        assert!(!p.page_tail(), "freeing a tail page");
        if p.page_head() {
            // SAFETY: a head's first tail is the next page of our memmap.
            let tail_order = unsafe { (*page.as_ptr().add(1)).first_tail_compound_order() };
            assert_eq!(tail_order, order);
        }
        let mut used = self.used.lock().unwrap();
        for u in &mut used[idx..idx + (1 << order)] {
            assert!(*u, "double free of a page");
            *u = false;
        }
        // SAFETY: freed memory: scribble to catch use after free.
        unsafe { ptr::write_bytes(self.mem.wrapping_add(idx * PAGE_SZ), 0xd7, PAGE_SZ << order) };
        self.pages_out.fetch_sub(1 << order, Ordering::Relaxed);
    }

    fn page_address(&self, page: NonNull<Page>) -> *mut u8 {
        let idx =
            (page.as_ptr() as usize - self.pages.as_ptr() as usize) / core::mem::size_of::<Page>();
        self.mem.wrapping_add(idx * PAGE_SZ)
    }

    fn virt_to_page(&self, addr: *const u8) -> Option<NonNull<Page>> {
        let off = (addr as usize).checked_sub(self.mem as usize)?;
        (off < self.npages() * PAGE_SZ).then(|| NonNull::new(self.page_ptr(off / PAGE_SZ)).unwrap())
    }

    fn smp_processor_id(&self) -> usize {
        smp_processor_id()
    }

    fn numa_mem_id(&self) -> i32 {
        (smp_processor_id() % self.nodes) as i32
    }
}

/// A machine up to SLUB: the allocator over its page source, brought up.
pub struct SlubMachine<S: SlabPageSource + 'static = SimPages> {
    pub slub: Box<SlubAllocator<'static>>,
    pub pages: &'static S,
}

impl<S: SlabPageSource + 'static> SlubMachine<S> {
    /// kmem_cache_init() and kmem_cache_init_late() over `pages`.
    pub fn over(pages: &'static S, params: SlubParams) -> Self {
        let slub = Box::new(SlubAllocator::new(pages, params));
        slub.kmem_cache_init();
        slub.kmem_cache_init_late();
        Self { slub, pages }
    }

    /// Every cache's empty slabs returned: what a page count may be compared after.
    pub fn shrink_all(&self) {
        let mut caches = Vec::new();
        {
            let _g = self.slub.slab_mutex.lock();
            self.slub
                .for_each_cache(|s| caches.push(s as *const KmemCache));
        }
        for s in caches {
            // SAFETY: caches live while the machine does (no destroy runs concurrently).
            self.slub.kmem_cache_shrink(unsafe { &*s });
        }
    }
}

impl SlubMachine<SimPages> {
    /// SLUB over `mib` MiB of [`SimPages`], split between `params.nr_node_ids` nodes.
    pub fn with_params(mib: usize, params: SlubParams) -> Self {
        let pages: &'static SimPages =
            Box::leak(Box::new(SimPages::new(mib, params.nr_node_ids as usize)));
        Self::over(pages, params)
    }

    /// 1 CPU, 1 node, 8-byte kmalloc minimum (every class), 64 MiB.
    pub fn small() -> Self {
        let mut p = SlubParams::new(1, 1, 0x1234_5678);
        p.kmalloc_min_size = 8;
        Self::with_params(64, p)
    }
}
