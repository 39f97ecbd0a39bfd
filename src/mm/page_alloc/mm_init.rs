//! Boot memory into the buddy allocator, and the `Memory:` line. Mirrors Linux 6.1's
//! memblock_free_all() with free_low_memory_core_early(), memmap_init_reserved_pages(),
//! __free_memory_core() and __free_pages_memory() (mm/memblock.c), and reserve_bootmem_region(),
//! __free_pages_core(), memblock_free_pages(), free_reserved_area() and
//! mem_init_print_info() (mm/page_alloc.c; Linux 6.3 moved most of them to mm/mm_init.c).
//!
//! Memblock only lists its ranges (memory, reserved, free). The walk over them lives on the
//! page allocator's side so that the dependency points one way, page allocator -> memblock.

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
    /// struct pages exist (`pfn_valid`).
    pub fn reserve_bootmem_region(
        &self,
        start: PhysAddr,
        end: PhysAddr,
        pfn_valid: impl Fn(Pfn) -> bool,
    ) {
        for pfn in start.pfn_down().0..end.pfn_up().0 {
            let pfn = Pfn(pfn);
            if pfn_valid(pfn) {
                let page = self.pfn_to_page(pfn);
                // SAFETY: a valid pfn's struct page; boot, nothing else runs.
                unsafe {
                    // Avoid a false PageTail().
                    (*page).lru.init_list_head();
                    (*page).set_page_reserved();
                }
            }
        }
    }

    /// Linux: __free_pages_core() — hand a block memblock never used to the buddy: clear
    /// PG_reserved and the boot reference of each page, count it managed, free it to the
    /// tail (past the per-CPU lists).
    pub fn __free_pages_core(&self, page: PagePtr, order: u32) {
        let page = page.as_ptr();
        let nr_pages = 1u64 << order;
        for i in 0..nr_pages as usize {
            // SAFETY: boot: the block's struct pages are initialised and nobody else's.
            unsafe {
                let p = &*page.add(i);
                p.clear_page_reserved();
                p.set_page_count(0);
            }
        }
        self.page_zone(page)
            .managed_pages
            .fetch_add(nr_pages, Ordering::Relaxed);
        self.__free_pages_ok(page, order, FPI_TO_TAIL);
    }

    /// Linux: memblock_free_pages() (no deferred struct-page init here).
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
        let totalcma_pages = 0;
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
    fn __free_pages_memory(&self, mut start: u64, end: u64) {
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
        self.__free_pages_memory(start_pfn, end_pfn);
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
        self.totalram_pages_add(pages as i64);
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
