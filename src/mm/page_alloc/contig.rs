//! Contiguous ranges out of the buddy, for CMA. Mirrors Linux 6.1's
//! `init_cma_reserved_pageblock()`, `alloc_contig_range()` with
//! `__alloc_contig_migrate_range()`, and `free_contig_range()` (mm/page_alloc.c), the page
//! isolation of mm/page_isolation.c (`set_migratetype_isolate`,
//! `unset_migratetype_isolate`, `start_isolate_page_range`, `undo_isolate_page_range`,
//! `test_pages_isolated`) and the strict free-page isolation of mm/compaction.c
//! (`isolate_freepages_range`, `isolate_migratepages_range` for non-LRU movable pages).
//!
//! alloc_contig_range(start, end): set the pageblocks of the range MIGRATE_ISOLATE (their
//! free pages move to the isolated lists and stop counting as free; nothing allocates from
//! them), drain the per-CPU lists (pages cached there go back to the isolated lists), move
//! what movable pages the range holds elsewhere (migrate.rs), check that every page of the
//! range is now free, take the free blocks off the lists and split them into order-0 pages,
//! give back what the blocks held beyond the range, and restore the pageblocks' type.
//!
//! What is different from Linux: no LRU pages exist here, so there is no reclaim of clean
//! page-cache pages, and an allocated page that crosses the range's edge (6.1 migrates a
//! whole compound page there) is not looked for: CMA's pageblocks hold order-0 movable pages.

use core::ptr::NonNull;
use core::sync::atomic::Ordering;

use super::migrate::{__page_movable, page_isolated, MigrateMode, COMPACT_CLUSTER_MAX};
use super::{PageAlloc, PagePtr, FPI_NONE};
use crate::include::mmzone::{MAX_ORDER, MIGRATE_CMA, MIGRATE_ISOLATE};
use crate::include::pageblock_flags::{PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER};
use crate::mm::addr::Pfn;
use crate::mm::gfp::{GfpT, __GFP_MOVABLE};
use crate::mm::mmzone::Zone;
use crate::mm::page::{Page, PG_LRU};

/// Linux: errno EBUSY.
pub const EBUSY: i32 = 16;
/// Linux: errno EINVAL.
pub const EINVAL: i32 = 22;

impl PageAlloc<'_> {
    /// Linux: init_cma_reserved_pageblock() — free a whole pageblock of a CMA area (reserved
    /// at boot) into the buddy as MIGRATE_CMA, and count it as managed.
    pub fn init_cma_reserved_pageblock(&self, page: PagePtr) {
        let first = page.as_ptr();
        for i in 0..PAGEBLOCK_NR_PAGES as usize {
            // SAFETY: a reserved pageblock of the memmap, handed over by the caller.
            unsafe {
                let p = &mut *first.add(i);
                p.__clear_page_reserved();
                p.set_page_count(0);
            }
        }
        let zone = self.page_zone(first);
        zone.set_pageblock_migratetype(self.page_to_pfn(first), MIGRATE_CMA);
        // SAFETY: as above.
        unsafe { (*first).set_page_count(1) };
        self.__free_pages(page, PAGEBLOCK_ORDER);
        self.adjust_managed_page_count(page, PAGEBLOCK_NR_PAGES as i64);
        zone.cma_pages
            .fetch_add(PAGEBLOCK_NR_PAGES, Ordering::Relaxed);
    }

    /// Linux: has_unmovable_pages() — the first page of the pageblock at `pfn` that
    /// migration cannot move, for isolating it as `migratetype`.
    fn has_unmovable_pages(&self, zone: &Zone, pfn: u64, migratetype: u32) -> Option<u64> {
        let block_mt = zone.get_pageblock_migratetype(Pfn(pfn));
        if block_mt == MIGRATE_CMA {
            // CMA blocks hold only movable pages; only CMA itself may isolate them.
            return if migratetype == MIGRATE_CMA {
                None
            } else {
                Some(pfn)
            };
        }
        let end = pfn + PAGEBLOCK_NR_PAGES;
        let mut p = pfn;
        while p < end {
            // SAFETY: a pfn of the zone's pageblock: it has a struct page.
            let page = unsafe { &*self.pfn_to_page(Pfn(p)) };
            if page.page_reserved() {
                return Some(p);
            }
            if page.page_buddy() {
                p += 1 << page.buddy_order();
                continue;
            }
            if page.page_count() == 0 || page.test_flag(PG_LRU) || __page_movable(page) {
                p += 1;
                continue;
            }
            return Some(p);
        }
        None
    }

    /// Linux: set_migratetype_isolate() — make the pageblock at `pfn` MIGRATE_ISOLATE: its
    /// free pages move to the isolated lists and stop counting as free.
    fn set_migratetype_isolate(&self, zone: &Zone, pfn: u64, migratetype: u32) -> Result<(), i32> {
        let _g = zone.lock.lock();
        let mt = zone.get_pageblock_migratetype(Pfn(pfn));
        if mt == MIGRATE_ISOLATE {
            return Err(-EBUSY);
        }
        if self.has_unmovable_pages(zone, pfn, migratetype).is_some() {
            return Err(-EBUSY);
        }
        zone.set_pageblock_migratetype(Pfn(pfn), MIGRATE_ISOLATE);
        zone.nr_isolate_pageblock.fetch_add(1, Ordering::Relaxed);
        let mut movable = 0;
        // SAFETY: zone lock held; the pageblock lies in the zone.
        unsafe {
            let n = self.move_freepages_block(
                zone,
                self.pfn_to_page(Pfn(pfn)),
                MIGRATE_ISOLATE,
                &mut movable,
            );
            Self::mod_zone_freepage_state(zone, -n, mt);
        }
        Ok(())
    }

    /// Linux: unset_migratetype_isolate() — give the pageblock at `pfn` back its type; a
    /// free block of a pageblock or more is freed again so that it merges with its buddy
    /// (isolated blocks do not merge).
    fn unset_migratetype_isolate(&self, zone: &Zone, pfn: u64, migratetype: u32) {
        let _g = zone.lock.lock();
        if zone.get_pageblock_migratetype(Pfn(pfn)) != MIGRATE_ISOLATE {
            return;
        }
        let page = self.pfn_to_page(Pfn(pfn));
        let mut isolated_order = None;
        // SAFETY: zone lock held; a struct page of the zone.
        unsafe {
            if (*page).page_buddy() {
                let order = (*page).buddy_order();
                if order >= PAGEBLOCK_ORDER && (order as usize) < MAX_ORDER - 1 {
                    let buddy_pfn = pfn ^ (1 << order);
                    if zone.zone_spans_pfn(Pfn(buddy_pfn))
                        && zone.get_pageblock_migratetype(Pfn(buddy_pfn)) != MIGRATE_ISOLATE
                    {
                        // Linux: __isolate_free_page() of an isolated block: off the list,
                        // no counter to change.
                        Self::del_page_from_free_list(zone, page, order);
                        isolated_order = Some(order);
                    }
                }
            }
            if isolated_order.is_none() {
                let mut movable = 0;
                let n = self.move_freepages_block(zone, page, migratetype, &mut movable);
                Self::mod_zone_freepage_state(zone, n, migratetype);
            }
        }
        zone.set_pageblock_migratetype(Pfn(pfn), migratetype);
        if let Some(order) = isolated_order {
            // Linux: __putback_isolated_page() — freed again, merging, counted.
            // SAFETY: zone lock held; the block was just taken off the isolated list.
            unsafe { self.__free_one_page(zone, page, pfn, order, migratetype, FPI_NONE) };
        }
        zone.nr_isolate_pageblock.fetch_sub(1, Ordering::Relaxed);
    }

    /// Linux: start_isolate_page_range() — isolate every pageblock of `[start, end)`
    /// (pageblock-aligned), or none (-EBUSY); then split any free block that crosses either
    /// edge of the range (Linux: isolate_single_pageblock()), so that no free block is
    /// partly isolated.
    pub fn start_isolate_page_range(
        &self,
        zone: &Zone,
        start: u64,
        end: u64,
        migratetype: u32,
    ) -> Result<(), i32> {
        let mut pfn = start;
        while pfn < end {
            if let Err(e) = self.set_migratetype_isolate(zone, pfn, migratetype) {
                self.undo_isolate_page_range(zone, start, pfn, migratetype);
                return Err(e);
            }
            pfn += PAGEBLOCK_NR_PAGES;
        }
        self.split_free_block_at(zone, start);
        self.split_free_block_at(zone, end);
        Ok(())
    }

    /// Linux: isolate_single_pageblock()'s split_free_page() — a free block larger than a
    /// pageblock that holds pfn `edge` (a pageblock boundary) but does not start there is
    /// freed again pageblock by pageblock, each with its own pageblock's type; blocks of
    /// different types do not merge at pageblock size, so the edge splits it.
    fn split_free_block_at(&self, zone: &Zone, edge: u64) {
        let _g = zone.lock.lock();
        for order in PAGEBLOCK_ORDER + 1..MAX_ORDER as u32 {
            let head = edge & !((1u64 << order) - 1);
            if head == edge || !zone.zone_spans_pfn(Pfn(head)) {
                continue;
            }
            let page = self.pfn_to_page(Pfn(head));
            // SAFETY: zone lock held; a struct page of the zone.
            unsafe {
                if !(*page).page_buddy() || (*page).buddy_order() < order {
                    continue;
                }
                let o = (*page).buddy_order();
                let mt = zone.get_pageblock_migratetype(Pfn(head));
                Self::del_page_from_free_list(zone, page, o);
                if mt != MIGRATE_ISOLATE {
                    Self::mod_zone_freepage_state(zone, -(1i64 << o), mt);
                }
                let mut p = head;
                while p < head + (1 << o) {
                    let pmt = zone.get_pageblock_migratetype(Pfn(p));
                    self.__free_one_page(
                        zone,
                        self.pfn_to_page(Pfn(p)),
                        p,
                        PAGEBLOCK_ORDER,
                        pmt,
                        FPI_NONE,
                    );
                    p += PAGEBLOCK_NR_PAGES;
                }
            }
            return;
        }
    }

    /// Linux: undo_isolate_page_range().
    pub fn undo_isolate_page_range(&self, zone: &Zone, start: u64, end: u64, migratetype: u32) {
        let mut pfn = start;
        while pfn < end {
            self.unset_migratetype_isolate(zone, pfn, migratetype);
            pfn += PAGEBLOCK_NR_PAGES;
        }
    }

    /// Linux: test_pages_isolated() — is every pageblock of `[start, end)` isolated and
    /// every page in it free? Err(the first pfn that is not) otherwise (Linux: -EBUSY).
    pub fn test_pages_isolated(&self, zone: &Zone, start: u64, end: u64) -> Result<(), u64> {
        let mut pfn = start & !(PAGEBLOCK_NR_PAGES - 1);
        while pfn < end {
            if zone.get_pageblock_migratetype(Pfn(pfn)) != MIGRATE_ISOLATE {
                return Err(pfn.max(start));
            }
            pfn += PAGEBLOCK_NR_PAGES;
        }
        let _g = zone.lock.lock();
        let mut pfn = start;
        while pfn < end {
            // SAFETY: zone lock held; a pfn of the zone.
            let page = unsafe { &*self.pfn_to_page(Pfn(pfn)) };
            if !page.page_buddy() {
                return Err(pfn);
            }
            pfn += 1 << page.buddy_order();
        }
        Ok(())
    }

    /// Linux: isolate_freepages_range() (strict) — take every free block of `[start, end)`
    /// off the (isolated) free lists, each page becoming an allocated order-0 page. Returns
    /// the end of the last block taken (it may pass `end`), or None with nothing taken if a
    /// page of the range is not free. One hold of the zone lock checks, then takes.
    fn isolate_freepages_range(&self, zone: &Zone, start: u64, end: u64) -> Option<u64> {
        let outer_end = {
            let _g = zone.lock.lock();
            let mut pfn = start;
            while pfn < end {
                // SAFETY: zone lock held; a struct page of the zone.
                let page = unsafe { &*self.pfn_to_page(Pfn(pfn)) };
                if !page.page_buddy() {
                    return None;
                }
                pfn += 1 << page.buddy_order();
            }
            let mut pfn = start;
            while pfn < end {
                let page = self.pfn_to_page(Pfn(pfn));
                // SAFETY: zone lock held; checked free just above, under the same hold.
                unsafe {
                    let order = (*page).buddy_order();
                    Self::del_page_from_free_list(zone, page, order);
                    // The order, for the split below (the page is ours now).
                    (*page).set_page_private(order as u64);
                    pfn += 1 << order;
                }
            }
            pfn
        };
        // Linux: split_map_pages() — post_alloc_hook() and split_page() on each block.
        let mut pfn = start;
        while pfn < outer_end {
            let page = self.pfn_to_page(Pfn(pfn));
            // SAFETY: a block taken above, ours.
            let order = unsafe { (*page).page_private() } as u32;
            self.prep_new_page(page, order, __GFP_MOVABLE);
            self.split_page(NonNull::new(page).expect("memmap page"), order);
            pfn += 1 << order;
        }
        Some(outer_end)
    }

    /// Linux: isolate_migratepages_range() for non-LRU movable pages — isolate up to
    /// COMPACT_CLUSTER_MAX movable pages from `*pfn` on, advancing `*pfn` past them.
    fn isolate_migratepages_range(
        &self,
        pfn: &mut u64,
        end: u64,
        out: &mut [Option<PagePtr>; COMPACT_CLUSTER_MAX],
    ) -> usize {
        let mut n = 0;
        while *pfn < end && n < COMPACT_CLUSTER_MAX {
            let page = self.pfn_to_page(Pfn(*pfn));
            // SAFETY: a struct page of the range; read racily as Linux does (the checks are
            // repeated under the page's reference and lock in isolate_movable_page()).
            let p = unsafe { &*page };
            if p.page_buddy() {
                let order = p.buddy_order();
                if (order as usize) < MAX_ORDER {
                    *pfn += 1 << order;
                    continue;
                }
            }
            if __page_movable(p) && !page_isolated(p) {
                let page = NonNull::new(page).expect("memmap page");
                if self.isolate_movable_page(page, MigrateMode::Sync) {
                    out[n] = Some(page);
                    n += 1;
                }
            }
            *pfn += 1;
        }
        n
    }

    /// Linux: __alloc_contig_migrate_range() — move every movable page of `[start, end)`
    /// out; -EBUSY if some would not move after five tries, -ENOMEM if no new page could
    /// be had. (The new pages are `GFP_USER | __GFP_MOVABLE | __GFP_RETRY_MAYFAIL`, as
    /// Linux's migration target control asks, whatever the caller's gfp.)
    fn __alloc_contig_migrate_range(&self, zone: &Zone, start: u64, end: u64) -> Result<(), i32> {
        let mut list: [Option<PagePtr>; COMPACT_CLUSTER_MAX] = [None; COMPACT_CLUSTER_MAX];
        let mut pfn = start;
        let mut tries = 0;
        let mut ret = Ok(());
        while pfn < end || list.iter().any(Option::is_some) {
            if list.iter().all(Option::is_none) {
                self.isolate_migratepages_range(&mut pfn, end, &mut list);
                tries = 0;
            } else {
                tries += 1;
                if tries == 5 {
                    ret = Err(-EBUSY);
                    break;
                }
            }
            match self.migrate_pages(&mut list, zone.node, MigrateMode::Sync) {
                Ok(_) => {}
                Err(e) => {
                    ret = Err(e);
                    break;
                }
            }
        }
        if let Err(e) = ret {
            // (Linux: alloc_contig_dump_pages(), which prints only when dynamic debug turns
            // its "migrate failure" site on.)
            let mut back = [NonNull::<Page>::dangling(); COMPACT_CLUSTER_MAX];
            let mut k = 0;
            for page in list.iter().flatten() {
                back[k] = *page;
                k += 1;
            }
            self.putback_movable_pages(&back[..k]);
            return Err(e);
        }
        Ok(())
    }

    /// Linux: alloc_contig_range() — the pages `[start, end)` of one zone, each an allocated
    /// order-0 page (free them with [`free_contig_range`](Self::free_contig_range)), moving
    /// what movable pages they held elsewhere. `migratetype` is the pageblocks' type
    /// (MIGRATE_CMA for CMA, MIGRATE_MOVABLE otherwise). Err(-EBUSY) if a page would not
    /// move or free, Err(-ENOMEM) if migration found no new page, Err(-EINVAL) for a range
    /// that is empty or not in one zone. `gfp` is Linux's (compaction's mask): its only
    /// effect there without reclaim is `__GFP_NOWARN` on a dump that dynamic debug gates.
    pub fn alloc_contig_range(
        &self,
        start: u64,
        end: u64,
        migratetype: u32,
        _gfp: GfpT,
    ) -> Result<(), i32> {
        if start >= end {
            return Err(-EINVAL);
        }
        let zone = self.page_zone(self.pfn_to_page(Pfn(start)));
        let iso_start = start & !(PAGEBLOCK_NR_PAGES - 1);
        let iso_end = end.next_multiple_of(PAGEBLOCK_NR_PAGES);
        if !zone.zone_spans_pfn(Pfn(iso_start)) || !zone.zone_spans_pfn(Pfn(iso_end - 1)) {
            return Err(-EINVAL);
        }
        self.start_isolate_page_range(zone, iso_start, iso_end, migratetype)?;
        self.drain_all_pages(Some(zone));

        let mut ret = match self.__alloc_contig_migrate_range(zone, start, end) {
            Err(e) if e != -EBUSY => Err(e),
            _ => Ok(()),
        };
        if ret.is_ok() {
            ret = self.alloc_contig_take(zone, start, end);
        }
        self.undo_isolate_page_range(zone, iso_start, iso_end, migratetype);
        ret
    }

    /// alloc_contig_range()'s second half: the free blocks that hold `[start, end)` off the
    /// isolated lists, the parts outside the range freed again.
    fn alloc_contig_take(&self, zone: &Zone, start: u64, end: u64) -> Result<(), i32> {
        // The block that holds `start` may begin before it.
        let mut order = 0;
        let mut outer_start = start;
        // SAFETY (both blocks below): struct pages of the isolated range; their buddy state
        // does not change while isolated (only this caller frees or takes there).
        while !unsafe { (*self.pfn_to_page(Pfn(outer_start))).page_buddy() } {
            order += 1;
            if order >= MAX_ORDER {
                outer_start = start;
                break;
            }
            outer_start &= !0u64 << order;
        }
        if outer_start != start {
            let o = unsafe { (*self.pfn_to_page(Pfn(outer_start))).buddy_order() };
            if outer_start + (1 << o) <= start {
                outer_start = start;
            }
        }
        if self.test_pages_isolated(zone, outer_start, end).is_err() {
            return Err(-EBUSY);
        }
        let Some(outer_end) = self.isolate_freepages_range(zone, outer_start, end) else {
            return Err(-EBUSY);
        };
        if start != outer_start {
            self.free_contig_range(outer_start, start - outer_start);
        }
        if end != outer_end {
            self.free_contig_range(end, outer_end - end);
        }
        Ok(())
    }

    /// Linux: free_contig_range() — free `nr_pages` order-0 pages from `pfn` on, warning
    /// about any still referenced elsewhere.
    pub fn free_contig_range(&self, pfn: u64, nr_pages: u64) {
        let mut count = 0;
        for p in pfn..pfn + nr_pages {
            let page = NonNull::new(self.pfn_to_page(Pfn(p))).expect("memmap page");
            // SAFETY: a page of the range the caller owns; the refcount is atomic.
            if unsafe { page.as_ref() }.page_count() != 1 {
                count += 1;
            }
            self.__free_page(page);
        }
        if count != 0 {
            // Linux: WARN(count != 0, ...).
            pr_warn!("{} pages are still in use!", count);
        }
    }
}
