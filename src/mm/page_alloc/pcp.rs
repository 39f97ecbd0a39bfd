//! The per-CPU page lists and the allocation and free paths through them. Mirrors the
//! `rmqueue()` / `free_unref_page()` half of Linux 6.1's mm/page_alloc.c: `rmqueue_pcplist`,
//! `__rmqueue_pcplist`, `rmqueue_bulk`, `rmqueue_buddy`, `free_unref_page`,
//! `free_unref_page_commit`, `free_pcppages_bulk`, `nr_pcp_free`/`nr_pcp_high`, the drains
//! (`drain_pages_zone`, `drain_all_pages`, `drain_local_pages`) and `free_the_page`.
//!
//! ## The fast path
//! An order-0..3 (or pageblock-order) allocation that finds its CPU's list non-empty, and a
//! free that finds the list below `high`, touch only that CPU's `per_cpu_pages`: its lock
//! (Linux 6.1: `pcp_spin_trylock`, uncontended except while another CPU drains the lists or
//! reads their counts), two list links and the count. No zone lock, no counter update
//! (NR_FREE_PAGES counts the buddy's free lists only and changes under `zone.lock`, in the
//! refills and bulk frees). The caller looks up `smp_processor_id()` once per operation and
//! passes the CPU down.
//!
//! ## Where the bad-page checks run
//! As Linux without CONFIG_DEBUG_VM (Debian's 6.1 is built without it): a block is checked
//! as it is moved from the buddy to a per-CPU list (`check_pcp_refill()`, under
//! `zone.lock`) and, for order 0, as it is moved back (`bulkfree_pcp_prepare()` in
//! `free_pcppages_bulk`), not on every allocation from and free to the list:
//! `check_new_pcp()` and `free_pcp_prepare()` check only with debug_pagealloc on. The tails
//! of a block of order > 0 are checked on every free, as Linux's `free_pages_prepare()`
//! always does. A bad block is leaked, as Linux leaks it. So a page spoiled while it sits
//! on a list is reported when the list gives it back to the buddy (or, with
//! debug_pagealloc, when it is allocated), and a page freed with a flag it must not carry
//! when its list is drained.

use core::ptr;
use core::sync::atomic::Ordering;

use super::{
    order_to_pindex, pcp_allowed_order, pindex_to_order, AllocContext, PageAlloc, ALLOC_HARDER,
    ALLOC_WMARK_LOW, FPI_NONE,
};
use crate::include::mmzone::PAGE_ALLOC_COSTLY_ORDER;
use crate::include::mmzone::{
    MIGRATE_CMA, MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_PCPTYPES,
};
use crate::mm::gfp::GfpT;
use crate::mm::mmzone::{
    PcpLists, PerCpuPages, Zone, NR_FREE_CMA_PAGES, NR_FREE_PAGES, NR_PCP_LISTS, WMARK_LOW,
};
use crate::mm::page::{list_add, list_add_tail, list_del, list_empty, lru_to_page, ListHead, Page};

impl PageAlloc<'_> {
    // ----- per-CPU lists

    /// Linux: per_cpu_ptr(zone->per_cpu_pageset, cpu) (this_cpu_ptr() with this CPU's id),
    /// if the zone has pagesets yet.
    #[inline]
    pub(super) fn pcp_of<'z>(&self, zone: &'z Zone, cpu: usize) -> Option<&'z PerCpuPages> {
        let p = zone.per_cpu_pageset.load(Ordering::Acquire);
        if p.is_null() || cpu >= zone.pcp_nr_cpus.load(Ordering::Relaxed) as usize {
            return None;
        }
        // SAFETY: setup_zone_pageset() published `pcp_nr_cpus` initialised entries, in
        // memory never freed, before the pointer (Release/Acquire).
        Some(unsafe { &*p.add(cpu) })
    }

    /// Linux: rmqueue_bulk() — move up to `count` blocks from the buddy to a pcp list, in
    /// physical order (each to the list's tail). Returns how many were added.
    ///
    /// # Safety
    /// The caller holds the lock of a per-CPU pageset of `zone` and `list` points to that
    /// pageset's (initialised) list for `mt` and `order`; it does not hold `zone.lock` (taken
    /// here). `order < MAX_ORDER` and `mt < MIGRATE_TYPES`.
    unsafe fn rmqueue_bulk(
        &self,
        zone: &Zone,
        order: u32,
        count: i32,
        list: *mut ListHead,
        mt: u32,
        alloc_flags: u32,
    ) -> i32 {
        let _g = zone.lock.lock();
        let (mut i, mut added) = (0, 0);
        while i < count {
            // SAFETY: zone lock held.
            let Some(page) = (unsafe { self.__rmqueue(zone, order, mt, alloc_flags) }) else {
                break;
            };
            i += 1;
            // Linux: check_pcp_refill() — a bad block is leaked (still counted as taken
            // from the free lists).
            if self.check_new_pages(page, order) {
                continue;
            }
            // SAFETY: the page is ours; the list is the caller's, under its pcp lock.
            unsafe { list_add_tail(ptr::addr_of_mut!((*page).lru), list) };
            added += 1;
            // SAFETY: the page is ours; `index` holds the type __rmqueue_smallest() took it
            // from; zone lock held.
            if unsafe { (*page).index } == MIGRATE_CMA as u64 {
                // SAFETY: zone lock held.
                unsafe { Self::__mod_zone_page_state(zone, NR_FREE_CMA_PAGES, -(1i64 << order)) };
            }
        }
        // SAFETY: zone lock held.
        unsafe { Self::__mod_zone_page_state(zone, NR_FREE_PAGES, -((i as i64) << order)) };
        added
    }

    /// Linux: __rmqueue_pcplist() — the first block of the list, refilling it by a batch
    /// (scaled down by the order) when empty; with debug_pagealloc, a block that fails
    /// check_new_pcp() is leaked and the next one taken (without it, the blocks were checked
    /// on the refill).
    ///
    /// # Safety
    /// The caller holds the lock of the per-CPU pageset of `zone` whose lists `pcp` points to
    /// (valid for reads and writes for the call), `list` is `pcp`'s list for
    /// `order_to_pindex(mt, order)`, and the caller does not hold `zone.lock` (a refill takes
    /// it).
    unsafe fn __rmqueue_pcplist(
        &self,
        zone: &Zone,
        order: u32,
        mt: u32,
        alloc_flags: u32,
        pcp: *mut PcpLists,
        list: *mut ListHead,
    ) -> Option<*mut Page> {
        loop {
            // SAFETY: the pcp lock is held (caller); list belongs to pcp.
            let page = unsafe {
                if list_empty(list) {
                    let mut batch = (*pcp).batch;
                    if batch > 1 {
                        batch = (batch >> order).max(2);
                    }
                    let alloced = self.rmqueue_bulk(zone, order, batch, list, mt, alloc_flags);
                    (*pcp).count += alloced << order;
                    if list_empty(list) {
                        return None;
                    }
                }
                let page = lru_to_page((*list).next);
                list_del(ptr::addr_of_mut!((*page).lru));
                (*pcp).count -= 1 << order;
                page
            };
            if !self.check_new_pcp(page, order) {
                return Some(page);
            }
        }
    }

    /// Linux: check_new_pcp() without CONFIG_DEBUG_VM — a block leaving a per-CPU list is
    /// checked only with debug_pagealloc on (true: bad, reported).
    #[inline(always)]
    fn check_new_pcp(&self, page: *mut Page, order: u32) -> bool {
        self.page_debug_on() && self.debug_pagealloc_enabled() && self.check_new_pages(page, order)
    }

    /// Linux: rmqueue_pcplist() — from the lists of `cpu`, the running CPU.
    #[inline]
    fn rmqueue_pcplist(
        &self,
        zone: &Zone,
        order: u32,
        mt: u32,
        alloc_flags: u32,
        cpu: usize,
    ) -> Option<*mut Page> {
        let pcp = self.pcp_of(zone, cpu)?;
        let _g = pcp.lock.try_lock()?;
        let inner = pcp.inner.get();
        // SAFETY: the pcp lock is held.
        unsafe {
            // On allocation, halve the free batching factor (see nr_pcp_free()).
            (*inner).free_factor >>= 1;
            let list = ptr::addr_of_mut!((*inner).lists[order_to_pindex(mt, order)]);
            self.__rmqueue_pcplist(zone, order, mt, alloc_flags, inner, list)
        }
    }

    /// The fast path of `__alloc_pages()`: what get_page_from_freelist() does for the
    /// first zone `ac` allows when the zone is above its low watermark and the running
    /// CPU's list of the order and type is not empty — take its first block. None (and
    /// nothing changed) where the full path has more to do: a watermark to look into, a
    /// list to refill, a busy lock, an order without lists, a bad block with
    /// debug_pagealloc on (leaked, as check_new_pcp() leaves it).
    #[inline]
    pub(super) fn rmqueue_pcplist_fast(
        &self,
        zone: &Zone,
        order: u32,
        gfp: GfpT,
        ac: &AllocContext,
    ) -> Option<*mut Page> {
        if !pcp_allowed_order(order) {
            return None;
        }
        let mark = zone.wmark_pages(WMARK_LOW);
        let alloc_flags = Self::gfp_to_alloc_flags_cma(gfp, ALLOC_WMARK_LOW);
        if !Self::zone_watermark_fast(zone, order, mark, ac.highest_zoneidx, alloc_flags, gfp) {
            return None;
        }
        let pcp = self.pcp_of(zone, ac.cpu)?;
        let page = {
            let _g = pcp.lock.try_lock()?;
            let inner = pcp.inner.get();
            // SAFETY: the pcp lock is held; the list belongs to the pageset.
            unsafe {
                let list =
                    ptr::addr_of_mut!((*inner).lists[order_to_pindex(ac.migratetype, order)]);
                if list_empty(list) {
                    return None;
                }
                // On allocation, halve the free batching factor (see nr_pcp_free()).
                (*inner).free_factor >>= 1;
                let page = lru_to_page((*list).next);
                list_del(ptr::addr_of_mut!((*page).lru));
                (*inner).count -= 1 << order;
                page
            }
        };
        if self.check_new_pcp(page, order) {
            return None;
        }
        self.prep_new_page(page, order, gfp);
        Some(page)
    }

    /// Linux: rmqueue_buddy() — straight from the free lists (the high-atomic reserve first
    /// for atomic high-order requests).
    fn rmqueue_buddy(
        &self,
        zone: &Zone,
        order: u32,
        alloc_flags: u32,
        mt: u32,
    ) -> Option<*mut Page> {
        loop {
            let page = {
                let _g = zone.lock.lock();
                // SAFETY: zone lock held.
                unsafe {
                    let mut page = None;
                    if order > 0 && alloc_flags & ALLOC_HARDER != 0 {
                        page = Self::__rmqueue_smallest(zone, order, MIGRATE_HIGHATOMIC);
                    }
                    if page.is_none() {
                        page = self.__rmqueue(zone, order, mt, alloc_flags);
                    }
                    let page = page?;
                    Self::mod_zone_freepage_state(zone, -(1i64 << order), (*page).index as u32);
                    page
                }
            };
            if !self.check_new_pages(page, order) {
                return Some(page);
            }
        }
    }

    /// Linux: rmqueue() — `cpu` is the running CPU.
    #[inline]
    pub(super) fn rmqueue(
        &self,
        zone: &Zone,
        order: u32,
        alloc_flags: u32,
        mt: u32,
        cpu: usize,
    ) -> Option<*mut Page> {
        if pcp_allowed_order(order) {
            if let Some(p) = self.rmqueue_pcplist(zone, order, mt, alloc_flags, cpu) {
                return Some(p);
            }
        }
        self.rmqueue_buddy(zone, order, alloc_flags, mt)
    }

    /// Linux: free_pcppages_bulk() — give `count` pages of a pcp back to the buddy, taking
    /// lists round-robin starting after `pindex`, oldest (tail) entries first.
    ///
    /// # Safety
    /// The caller holds the lock of the per-CPU pageset of `zone` whose lists `pcp` points to
    /// (valid for reads and writes for the call) and does not hold `zone.lock` (taken here);
    /// `pindex < NR_PCP_LISTS`. Every page on those lists is a block of `zone` of its list's
    /// order, prepared for freeing, with its migratetype in `index` (as
    /// `free_unref_page_commit` and `rmqueue_bulk` leave them).
    #[inline(never)]
    unsafe fn free_pcppages_bulk(
        &self,
        zone: &Zone,
        count: i32,
        pcp: *mut PcpLists,
        pindex: usize,
    ) {
        // SAFETY: the pcp lock is held (caller).
        unsafe {
            let mut count = count.min((*pcp).count);
            let (mut min_pindex, mut max_pindex) = (0usize, NR_PCP_LISTS - 1);
            let mut pindex = pindex as isize - 1;
            let _g = zone.lock.lock();
            // Linux: has_isolate_pageblock() — a block may have been isolated since its pages
            // were cached; they must go to the isolated lists.
            let isolated_pageblocks = zone.nr_isolate_pageblock.load(Ordering::Relaxed) != 0;
            while count > 0 {
                let list = loop {
                    pindex += 1;
                    if pindex as usize > max_pindex {
                        pindex = min_pindex as isize;
                    }
                    let list = ptr::addr_of_mut!((*pcp).lists[pindex as usize]);
                    if !list_empty(list) {
                        break list;
                    }
                    if pindex as usize == max_pindex {
                        max_pindex -= 1;
                    }
                    if pindex as usize == min_pindex {
                        min_pindex += 1;
                    }
                };
                let order = pindex_to_order(pindex as usize);
                let nr_pages = 1 << order;
                loop {
                    let page = lru_to_page((*list).prev);
                    let mut mt = (*page).index as u32;
                    list_del(ptr::addr_of_mut!((*page).lru));
                    count -= nr_pages;
                    (*pcp).count -= nr_pages;
                    // Linux: bulkfree_pcp_prepare() — a bad page is leaked.
                    if !self.free_page_is_bad(page) {
                        let pfn = self.page_to_pfn(page).0;
                        if isolated_pageblocks {
                            mt = self.get_pfnblock_migratetype(zone, pfn);
                        }
                        self.__free_one_page(zone, page, pfn, order, mt, FPI_NONE);
                    }
                    if count <= 0 || list_empty(list) {
                        break;
                    }
                }
            }
        }
    }

    /// Linux: nr_pcp_free() — how much a full pcp gives back: a batch, doubled for each
    /// free in a row without an allocation, keeping at least a batch.
    fn nr_pcp_free(pcp: &mut PcpLists, high: i32, batch: i32, free_high: bool) -> i32 {
        if free_high {
            return pcp.count;
        }
        if high < batch {
            return 1;
        }
        let (min_nr_free, max_nr_free) = (batch, high - batch);
        let batch = batch << pcp.free_factor;
        if batch < max_nr_free {
            pcp.free_factor += 1;
        }
        // Linux's clamp(): the upper bound wins if the bounds cross.
        batch.max(min_nr_free).min(max_nr_free)
    }

    /// Linux: nr_pcp_high() (no reclaim, so never ZONE_RECLAIM_ACTIVE).
    fn nr_pcp_high(pcp: &PcpLists, free_high: bool) -> i32 {
        if pcp.high == 0 || free_high {
            0
        } else {
            pcp.high
        }
    }

    /// Linux: free_unref_page_commit().
    ///
    /// # Safety
    /// The caller holds the lock of the per-CPU pageset of `zone` whose lists `pcp` points to
    /// (valid for reads and writes for the call) and does not hold `zone.lock`; `mt <
    /// MIGRATE_PCPTYPES` and `pcp_allowed_order(order)`; `page` is a block of `order` of `zone`
    /// in this allocator's memmap, owned by the caller and prepared for freeing, with its
    /// pageblock's migratetype in `index`. The block belongs to the allocator after.
    unsafe fn free_unref_page_commit(
        &self,
        zone: &Zone,
        pcp: *mut PcpLists,
        page: *mut Page,
        mt: u32,
        order: u32,
    ) {
        let pindex = order_to_pindex(mt, order);
        // SAFETY: the pcp lock is held; the page is ours.
        unsafe {
            list_add(
                ptr::addr_of_mut!((*page).lru),
                ptr::addr_of_mut!((*pcp).lists[pindex]),
            );
            (*pcp).count += 1 << order;
            // Freeing high orders without allocating: do not hoard them.
            let free_high =
                (*pcp).free_factor != 0 && order != 0 && order <= PAGE_ALLOC_COSTLY_ORDER;
            let high = Self::nr_pcp_high(&*pcp, free_high);
            if (*pcp).count >= high {
                let batch = (*pcp).batch;
                let n = Self::nr_pcp_free(&mut *pcp, high, batch, free_high);
                self.free_pcppages_bulk(zone, n, pcp, pindex);
            }
        }
    }

    /// Linux: free_one_page().
    #[inline(never)]
    pub(super) fn free_one_page(
        &self,
        zone: &Zone,
        page: *mut Page,
        pfn: u64,
        order: u32,
        mt: u32,
        fpi: u32,
    ) {
        let _g = zone.lock.lock();
        // SAFETY: zone lock held; the page passed free_pages_prepare().
        unsafe { self.__free_one_page(zone, page, pfn, order, mt, fpi) };
    }

    /// Linux: free_unref_page() — free a block of a pcp order to this CPU's list.
    #[inline]
    fn free_unref_page(&self, page: *mut Page, order: u32) {
        // Linux: free_pcp_prepare() — check_free only with debug_pagealloc (or
        // CONFIG_DEBUG_VM); otherwise the page is checked when its list gives it back.
        let check_free = self.page_debug_on() && self.debug_pagealloc_enabled();
        if !self.free_pages_prepare(page, order, check_free) {
            return;
        }
        let pfn = self.page_to_pfn(page).0;
        let zone = self.page_zone(page);
        let mut mt = self.get_pfnblock_migratetype(zone, pfn);
        // SAFETY: the page is ours (prepared for freeing).
        unsafe { (*page).index = mt as u64 };
        // Only the pcp types have lists: isolated blocks go straight back, high-atomic
        // pages are cached as movable (the page keeps its block's type for the drain).
        let block_mt = mt;
        if mt >= MIGRATE_PCPTYPES {
            if mt == MIGRATE_ISOLATE {
                return self.free_one_page(zone, page, pfn, order, mt, FPI_NONE);
            }
            mt = MIGRATE_MOVABLE;
        }
        let Some(pcp) = self.pcp_of(zone, self.this_cpu()) else {
            // No pagesets yet: Linux's boot_pageset (high 0) drains the page at once, by its
            // own type, through free_pcppages_bulk()'s bulkfree_pcp_prepare().
            if self.free_page_is_bad(page) {
                return;
            }
            return self.free_one_page(zone, page, pfn, order, block_mt, FPI_NONE);
        };
        match pcp.lock.try_lock() {
            // SAFETY: the pcp lock is held.
            Some(_g) => unsafe {
                self.free_unref_page_commit(zone, pcp.inner.get(), page, mt, order)
            },
            // (Linux 6.1 passes the pcp type here, which files a CMA page as movable; the
            // block's own type keeps NR_FREE_CMA_PAGES and the CMA lists right.)
            None => self.free_one_page(zone, page, pfn, order, block_mt, FPI_NONE),
        }
    }

    /// Linux: __free_pages_ok() — free straight to the buddy.
    #[inline(never)]
    pub(super) fn __free_pages_ok(&self, page: *mut Page, order: u32, fpi_flags: u32) {
        if !self.free_pages_prepare(page, order, true) {
            return;
        }
        let pfn = self.page_to_pfn(page).0;
        let zone = self.page_zone(page);
        let mt = self.get_pfnblock_migratetype(zone, pfn);
        self.free_one_page(zone, page, pfn, order, mt, fpi_flags);
    }

    /// Linux: free_the_page().
    #[inline]
    pub(super) fn free_the_page(&self, page: *mut Page, order: u32) {
        if pcp_allowed_order(order) {
            self.free_unref_page(page, order);
        } else {
            self.__free_pages_ok(page, order, FPI_NONE);
        }
    }

    /// Linux: drain_pages_zone() — give back everything `cpu` caches of `zone`.
    pub fn drain_pages_zone(&self, cpu: usize, zone: &Zone) {
        let Some(pcp) = self.pcp_of(zone, cpu) else {
            return;
        };
        let _g = pcp.lock.lock();
        let inner = pcp.inner.get();
        // SAFETY: the pcp lock is held.
        unsafe {
            let count = (*inner).count;
            if count > 0 {
                self.free_pcppages_bulk(zone, count, inner, 0);
            }
        }
    }

    /// Linux: drain_all_pages() — every CPU's lists of `zone` (or of every zone), drained
    /// from here under each list's lock, as Linux 6.1's __drain_all_pages() does.
    pub fn drain_all_pages(&self, zone: Option<&Zone>) {
        let one = |z: &Zone| {
            for cpu in 0..z.pcp_nr_cpus.load(Ordering::Relaxed) as usize {
                self.drain_pages_zone(cpu, z);
            }
        };
        match zone {
            Some(z) => one(z),
            None => self.populated_zones().for_each(one),
        }
    }

    /// Linux: drain_local_pages(zone).
    pub fn drain_local_pages(&self, zone: Option<&Zone>) {
        let cpu = (self.env.smp_processor_id)();
        match zone {
            Some(z) => self.drain_pages_zone(cpu, z),
            None => self
                .populated_zones()
                .for_each(|z| self.drain_pages_zone(cpu, z)),
        }
    }

    /// Pages in per-CPU lists of `zone`: (all CPUs, this CPU) (show_free_areas()'s
    /// free_pcp and local_pcp).
    pub fn zone_pcp_counts(&self, zone: &Zone) -> (u64, u64) {
        let me = (self.env.smp_processor_id)();
        let (mut all, mut local) = (0, 0);
        for cpu in 0..zone.pcp_nr_cpus.load(Ordering::Relaxed) as usize {
            if let Some(pcp) = self.pcp_of(zone, cpu) {
                let _g = pcp.lock.lock();
                // SAFETY: the pcp lock is held.
                let c = unsafe { (*pcp.inner.get()).count } as u64;
                all += c;
                if cpu == me {
                    local = c;
                }
            }
        }
        (all, local)
    }

    /// One CPU's pageset of a zone: (count, high, batch), if it has one.
    pub fn pcp_state(&self, zone: &Zone, cpu: usize) -> Option<(i32, i32, i32)> {
        let pcp = self.pcp_of(zone, cpu)?;
        let _g = pcp.lock.lock();
        // SAFETY: the pcp lock is held.
        let i = unsafe { &*pcp.inner.get() };
        Some((i.count, i.high, i.batch))
    }
}

#[cfg(test)]
mod tests;
