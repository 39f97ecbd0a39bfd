//! Boot memory into the buddy allocator, and the `Memory:` line. Mirrors Linux 6.1's
//! memblock_free_all() with free_low_memory_core_early(), memmap_init_reserved_pages(),
//! __free_memory_core() and __free_pages_memory() (mm/memblock.c), and reserve_bootmem_region(),
//! __free_pages_core(), memblock_free_pages(), free_reserved_area() and
//! mem_init_print_info() (mm/page_alloc.c; Linux 6.3 moved most of them to mm/mm_init.c).
//!
//! Memblock only lists its ranges (memory, reserved, free). The walk over them lives on the
//! page allocator's side so that the dependency points one way, page allocator -> memblock.
//!
//! With deferred struct-page init, the free ranges past a node's `first_deferred_pfn` are
//! recorded for deferred.rs instead of freed (Linux: memblock_free_pages() returns early for
//! them), and reserved pages there are initialised first (init_reserved_page()); they still
//! count in totalram_pages, as Linux's. __free_pages_core() touches each page once with
//! plain stores and frees the block without free_pages_prepare()'s per-page check (the pages
//! were just initialised; the check at allocation still runs).

use core::cell::Cell;
use core::fmt;
use core::ptr::{self, NonNull};
use core::sync::atomic::Ordering;

use super::{page_alloc, PageAlloc, PagePtr, FPI_TO_TAIL};
use crate::include::mmzone::MAX_ORDER;
use crate::include::numa::NUMA_NO_NODE;
use crate::mm::addr::{Pfn, PhysAddr, PAGE_SHIFT, PAGE_SIZE};
use crate::mm::free_area_init::{early_pfn_valid, PFN_SECTION_SHIFT};
use crate::mm::memblock::{Memblock, MemblockFlags, MEMBLOCK};
use crate::mm::page::{init_page_range, page_links, Page, PG_RESERVED};

/// The kernel image's layout as mem_init_print_info() reads it: the linker symbols.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelSymbols {
    pub _stext: u64,
    pub _etext: u64,
    pub __start_rodata: u64,
    pub __end_rodata: u64,
    pub __init_begin: u64,
    pub __init_end: u64,
    pub _sinittext: u64,
    pub _einittext: u64,
    pub _sdata: u64,
    pub _edata: u64,
    pub __bss_start: u64,
    pub __bss_stop: u64,
}

/// The numbers of Linux's `Memory:` line (mem_init_print_info()), in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemInitInfo {
    pub available: u64,
    pub physpages: u64,
    pub codesize: u64,
    pub datasize: u64,
    pub rosize: u64,
    pub init: u64,
    pub bss: u64,
    pub reserved: u64,
    pub cma_reserved: u64,
}

impl fmt::Display for MemInitInfo {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "Memory: {}K/{}K available ({}K kernel code, {}K rwdata, {}K rodata, {}K init, {}K bss, {}K reserved, {}K cma-reserved)",
            self.available,
            self.physpages,
            self.codesize,
            self.datasize,
            self.rosize,
            self.init,
            self.bss,
            self.reserved,
            self.cma_reserved
        )
    }
}

impl PageAlloc<'_> {
    /// Linux: reset_all_zones_managed_pages() — once: managed pages become what is freed.
    pub fn reset_all_zones_managed_pages(&self) {
        if self.reset_managed_pages_done.swap(true, Ordering::Relaxed) {
            return;
        }
        for z in self.zones() {
            z.managed_pages.store(0, Ordering::Relaxed);
        }
    }

    /// Linux: reserve_bootmem_region() — PG_reserved on the pages of `[start, end)` whose
    /// struct pages exist (`pfn_valid`, asked once per section), initialising first those
    /// memmap_init() deferred (init_reserved_page()).
    pub fn reserve_bootmem_region(
        &self,
        start: PhysAddr,
        end: PhysAddr,
        pfn_valid: impl Fn(Pfn) -> bool,
    ) {
        let (mut pfn, end) = (start.pfn_down().0, end.pfn_up().0);
        while pfn < end {
            let sec_end = (((pfn >> PFN_SECTION_SHIFT) + 1) << PFN_SECTION_SHIFT).min(end);
            if pfn_valid(Pfn(pfn)) {
                self.init_reserved_pages(pfn, sec_end);
                let first = self.pfn_to_page(Pfn(pfn));
                for i in 0..(sec_end - pfn) as usize {
                    // SAFETY: a valid pfn's struct page; boot, nothing else runs. Linux: "no
                    // need for atomic set_bit because the struct page is not visible yet".
                    unsafe {
                        let p = &mut *first.add(i);
                        // Avoid a false PageTail().
                        p.lru.init_list_head();
                        p.__set_page_reserved();
                    }
                }
            }
            pfn = sec_end;
        }
    }

    /// Linux: init_reserved_page() over `[start, end)` — the pages memmap_init() left to
    /// deferred init (at or past their node's `first_deferred_pfn`) are initialised now, in
    /// the zone that spans them, since deferred init only visits free memory.
    fn init_reserved_pages(&self, start: u64, end: u64) {
        for pgdat in self.nodes.pgdats() {
            let fdp = pgdat.first_deferred_pfn.load(Ordering::Relaxed);
            let (s, e) = (start.max(fdp), end.min(pgdat.pgdat_end_pfn().0));
            if fdp == u64::MAX || s >= e {
                continue;
            }
            for (zid, z) in pgdat.node_zones.iter().enumerate() {
                let (zs, ze) = (s.max(z.zone_start_pfn.0), e.min(z.zone_end_pfn().0));
                if z.spanned_pages != 0 && zs < ze {
                    // SAFETY: memory pfns of this node (valid sections); boot, ours.
                    unsafe {
                        init_page_range(
                            self.pfn_to_page(Pfn(zs)),
                            (ze - zs) as usize,
                            page_links(zid, pgdat.node_id),
                            1,
                        )
                    };
                }
            }
        }
    }

    /// Linux: __free_pages_core() — hand a block memblock never used to the buddy: clear
    /// PG_reserved and the boot reference of each page, count it managed, free it to the
    /// tail (past the per-CPU lists). Each page is touched once, with plain stores: nobody
    /// else sees the block yet (Linux: __ClearPageReserved(), set_page_count()).
    pub fn __free_pages_core(&self, page: PagePtr, order: u32) {
        let page = page.as_ptr();
        let (mut p, end) = (page, page.wrapping_add(1 << order));
        while p != end {
            // SAFETY: boot: the block's struct pages are initialised and nobody else's.
            unsafe {
                let f = (*p).flags.load(Ordering::Relaxed);
                (*p).flags.store(f & !(1 << PG_RESERVED), Ordering::Relaxed);
                (*p)._refcount.store(0, Ordering::Relaxed);
                p = p.add(1);
            }
        }
        self.free_boot_block(page, order);
    }

    /// __free_pages_core()'s end: count the block managed and put it at the tail of its
    /// free list. Linux goes through __free_pages_ok(), whose free_pages_prepare() checks
    /// every page; these pages were just written by the memmap's init (and PG_reserved
    /// cleared), so the block goes to free_one_page() directly. A page that is not clean
    /// would still be reported when the buddy hands it out (check_new_pages()).
    pub(super) fn free_boot_block(&self, page: *mut Page, order: u32) {
        let zone = self.page_zone(page);
        zone.managed_pages
            .fetch_add(1u64 << order, Ordering::Relaxed);
        // Linux: __free_pages_ok()'s free_pages_prepare() zeroes it under init_on_free.
        self.free_init(page, order);
        if self.page_debug_on() {
            self.debug_pagealloc_unmap_pages(page, order);
        }
        let pfn = self.page_to_pfn(page).0;
        let mt = self.get_pfnblock_migratetype(zone, pfn);
        self.free_one_page(zone, page, pfn, order, mt, FPI_TO_TAIL);
    }

    /// Linux: memblock_free_pages() — the caller (free_low_memory_core_early()) gives only
    /// initialised pages; the deferred ones are recorded for deferred init instead.
    pub fn memblock_free_pages(&self, pfn: Pfn, order: u32) {
        let page = NonNull::new(self.pfn_to_page(pfn)).expect("null struct page");
        self.__free_pages_core(page, order);
    }

    /// Linux: adjust_managed_page_count().
    pub fn adjust_managed_page_count(&self, page: PagePtr, count: i64) {
        self.page_zone(page.as_ptr())
            .managed_pages
            .fetch_add(count as u64, Ordering::Relaxed);
        self.totalram_pages_add(count);
    }

    /// Linux: free_reserved_page().
    pub fn free_reserved_page(&self, page: PagePtr) {
        // SAFETY: a reserved page of the memmap, handed over by the caller.
        unsafe {
            let p = page.as_ref();
            p.clear_page_reserved();
            p.init_page_count();
        }
        self.__free_page(page);
        self.adjust_managed_page_count(page, 1);
    }

    /// Linux: free_reserved_area() — give the whole pages of `[start, end)` (memory the
    /// kernel reserved and no longer needs) to the buddy, filled with `poison` if it is a
    /// byte value, and print `Freeing <s> memory: NK`. Linux takes linear-map addresses;
    /// this takes the physical ones (typed addresses). Returns the pages freed.
    pub fn free_reserved_area(
        &self,
        start: PhysAddr,
        end: PhysAddr,
        poison: i32,
        s: Option<&str>,
    ) -> u64 {
        let (start, end) = (start.pfn_up().0, end.pfn_down().0);
        let mut pages = 0;
        for pfn in start..end {
            let pfn = Pfn(pfn);
            if (0..=0xff).contains(&poison) {
                let f = self
                    .env
                    .phys_to_virt
                    .expect("free_reserved_area: no phys_to_virt hook");
                // SAFETY: the caller hands the page over; the hook maps it writable.
                unsafe { ptr::write_bytes(f(pfn.phys()), poison as u8, PAGE_SIZE as usize) };
            }
            let page = NonNull::new(self.pfn_to_page(pfn)).expect("null struct page");
            self.free_reserved_page(page);
            pages += 1;
        }
        if pages != 0 {
            if let Some(s) = s {
                pr_info!("Freeing {} memory: {}K", s, pages << (PAGE_SHIFT - 10));
            }
        }
        pages
    }

    /// Linux: mem_init_print_info()'s numbers: free and present memory, the kernel's
    /// sections (with Linux's adj_init_size() for sections nested in others), and what is
    /// reserved (present minus managed).
    pub fn mem_init_info(&self, s: &KernelSymbols) -> MemInitInfo {
        let physpages = self.get_num_physpages();
        let mut codesize = s._etext - s._stext;
        let mut datasize = s._edata - s._sdata;
        let rosize = s.__end_rodata - s.__start_rodata;
        let bss_size = s.__bss_stop - s.__bss_start;
        let mut init_data_size = s.__init_end - s.__init_begin;
        let init_code_size = s._einittext - s._sinittext;
        let adj = |start: u64, end: u64, size: &mut u64, pos: u64, adj: u64| {
            if start <= pos && pos < end && *size > adj {
                *size -= adj;
            }
        };
        adj(
            s.__init_begin,
            s.__init_end,
            &mut init_data_size,
            s._sinittext,
            init_code_size,
        );
        adj(
            s._stext,
            s._etext,
            &mut codesize,
            s._sinittext,
            init_code_size,
        );
        adj(
            s._sdata,
            s._edata,
            &mut datasize,
            s.__init_begin,
            init_data_size,
        );
        adj(s._stext, s._etext, &mut codesize, s.__start_rodata, rosize);
        adj(s._sdata, s._edata, &mut datasize, s.__start_rodata, rosize);
        let k = |pages: u64| pages << (PAGE_SHIFT - 10);
        let totalcma_pages = self.totalcma_pages();
        MemInitInfo {
            available: k(self.nr_free_pages()),
            physpages: k(physpages),
            codesize: codesize >> 10,
            datasize: datasize >> 10,
            rosize: rosize >> 10,
            init: (init_data_size + init_code_size) >> 10,
            bss: bss_size >> 10,
            reserved: k(physpages - self.totalram_pages() - totalcma_pages),
            cma_reserved: k(totalcma_pages),
        }
    }

    /// Linux: mem_init_print_info().
    pub fn mem_init_print_info(&self, s: &KernelSymbols) {
        pr_info!("{}", self.mem_init_info(s));
    }

    // ----- memblock_free_all(): memblock's free memory to the buddy

    /// Linux: __free_pages_memory() — free the pfns `[start, end)` in the largest naturally
    /// aligned blocks, at most MAX_ORDER - 1.
    pub(super) fn __free_pages_memory(&self, mut start: u64, end: u64) {
        let max = MAX_ORDER as u32 - 1;
        while start < end {
            let mut order = max.min(start.trailing_zeros());
            while start + (1 << order) > end {
                order -= 1;
            }
            self.memblock_free_pages(Pfn(start), order);
            start += 1 << order;
        }
    }

    /// Linux: __free_memory_core() — the whole pages of `[start, end)` below `max_low_pfn`.
    fn __free_memory_core(&self, start: PhysAddr, end: PhysAddr, max_low_pfn: u64) -> u64 {
        let start_pfn = start.pfn_up().0;
        let end_pfn = end.pfn_down().0.min(max_low_pfn);
        if start_pfn >= end_pfn {
            return 0;
        }
        // Linux: memblock_free_pages() returns early for a page past its node's
        // first_deferred_pfn (early_page_uninitialised()); here the range is cut there and
        // the deferred part recorded for deferred_init_memmap() and deferred_grow_zone().
        let mut pfn = start_pfn;
        for pgdat in self.nodes.pgdats() {
            let fdp = pgdat.first_deferred_pfn.load(Ordering::Relaxed);
            let (ds, de) = (fdp.max(pfn), end_pfn.min(pgdat.pgdat_end_pfn().0));
            if fdp == u64::MAX || ds >= de {
                continue;
            }
            self.__free_pages_memory(pfn, ds);
            if !self.deferred.record(ds, de) {
                // More ranges than deferred init keeps: these are done now.
                self.deferred_init_range(pgdat, ds, de);
            }
            pfn = de;
        }
        self.__free_pages_memory(pfn, end_pfn);
        end_pfn - start_pfn
    }

    /// Linux: memmap_init_reserved_pages() — PG_reserved on every reserved range and on
    /// NOMAP memory, where struct pages exist.
    fn memmap_init_reserved_pages(&self, mb: &Memblock) {
        // early_pfn_valid() depends only on the pfn's section (it walks memblock's regions):
        // ask once per section rather than once per pfn.
        let last = Cell::new((u64::MAX, false));
        let valid = |pfn: Pfn| {
            let section = pfn.0 >> PFN_SECTION_SHIFT;
            match last.get() {
                (s, v) if s == section => v,
                _ => {
                    let v = early_pfn_valid(mb, pfn);
                    last.set((section, v));
                    v
                }
            }
        };
        for (start, end, _) in mb.reserved_mem_ranges() {
            self.reserve_bootmem_region(start, end, valid);
        }
        for r in mb.memory().regions().iter().filter(|r| r.is_nomap()) {
            self.reserve_bootmem_region(r.base, r.end(), valid);
        }
    }

    /// Linux: free_low_memory_core_early() — every free range of `mb` to the buddy. Returns
    /// the pages freed.
    fn free_low_memory_core_early(&self, mb: &mut Memblock) -> u64 {
        let _ = mb.clear_hotplug(PhysAddr(0), u64::MAX);
        self.memmap_init_reserved_pages(mb);
        // arm64: max_low_pfn is max_pfn, the end of DRAM.
        let max_low_pfn = mb.end_of_dram().pfn_down().0;
        let mut count = 0;
        for (start, end, _) in mb.free_mem_ranges(NUMA_NO_NODE, MemblockFlags::NONE) {
            count += self.__free_memory_core(start, end, max_low_pfn);
        }
        count
    }

    /// Linux: memblock_free_all() — the end of memblock as an allocator: reserved pages get
    /// PG_reserved, every free page goes to the buddy, managed_pages and totalram_pages
    /// become what was freed. (free_unused_memmap() does nothing with SPARSEMEM_VMEMMAP.)
    /// Returns the pages freed.
    pub fn memblock_free_all(&self, mb: &mut Memblock) -> u64 {
        self.reset_all_zones_managed_pages();
        let pages = self.free_low_memory_core_early(mb);
        // Deferred pages count too (Linux counts them in free_low_memory_core_early()'s
        // total): the zones' managed pages catch up as deferred init frees them.
        self.totalram_pages_add(pages as i64);
        self.deferred.enable();
        pages
    }
}

/// Linux: memblock_free_all() — the kernel's memblock into the kernel's page allocator
/// (mem_init() calls it; page_alloc_init() must have run).
pub fn memblock_free_all() -> u64 {
    let pa = page_alloc().expect("memblock_free_all before page_alloc_init");
    pa.memblock_free_all(&mut MEMBLOCK.lock())
}

#[cfg(test)]
mod tests;
