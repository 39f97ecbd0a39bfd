//! The bad-page report: `BUG: Bad page state` and dump_page(). Mirrors Linux 6.1's
//! bad_page() (mm/page_alloc.c) and dump_page() (mm/debug.c, with page_owner's
//! dump_page_owner()); and the allocator's side of the debugging facilities: the
//! debug_pagealloc and page_owner calls of post_alloc_hook() and free_pages_prepare(), off
//! the hot paths (each path tests one flag, [`PageAlloc::page_debug_on`]), and the report of
//! a fault on a free page.

use core::ptr;
use core::sync::atomic::Ordering;

use super::{PageAlloc, __GFP_COMP, COMM};
use crate::mm::addr::Pfn;
use crate::mm::debug_page_alloc::PageDebugHooks;
use crate::mm::gfp::GfpT;
use crate::mm::page::{Page, PageFlagNames};

impl PageAlloc<'_> {
    /// Linux: dump_page() — the page's fields, its raw words and why.
    pub(super) fn dump_page(&self, page: *const Page, reason: &str) {
        // SAFETY: a page of the memmap; reading its words for a report.
        let p = unsafe { &*page };
        let head = p.compound_head();
        pr_warn!(
            "page:{:016x} refcount:{} mapcount:{} mapping:{:016x} index:{:#x} pfn:{:#x}",
            page as u64,
            p.page_count(),
            p.page_mapcount_raw().wrapping_add(1),
            p.mapping,
            p.index,
            self.page_to_pfn(page).0
        );
        if !ptr::eq(head, page) || p.page_head() {
            // SAFETY: a tail's head is a page of the same block.
            let h = unsafe { &*head };
            let order = if h.page_head() {
                // SAFETY: a head's first tail is in the same block.
                unsafe { (*head.add(1)).first_tail_compound_order() }
            } else {
                0
            };
            pr_warn!(
                "head:{:016x} order:{} compound_mapcount:0 compound_pincount:0",
                head as u64,
                order
            );
        }
        pr_warn!("flags: {}", PageFlagNames(p.flags.load(Ordering::Relaxed)));
        // SAFETY: struct page is 8 u64 words.
        let words: &[u64; 8] = unsafe { &*page.cast() };
        pr_warn!(
            "raw: {:016x} {:016x} {:016x} {:016x}",
            words[0],
            words[1],
            words[2],
            words[3]
        );
        pr_warn!(
            "raw: {:016x} {:016x} {:016x} {:016x}",
            words[4],
            words[5],
            words[6],
            words[7]
        );
        pr_warn!("page dumped because: {}", reason);
        // Linux: dump_page()'s dump_page_owner().
        if let Some(f) = self.debug_hooks.get().and_then(|h| h.dump_page_owner) {
            f(self.page_to_pfn(page));
        }
    }

    /// The report half of bad_page(): Linux's `BUG: Bad page state` lines (Linux then
    /// prints the modules and a stack, and taints the kernel). Cold and never inlined: the
    /// stack it prints names it, as Linux's names bad_page(), and inlined into a free path
    /// it would give that path a stack frame it otherwise needs not.
    #[cold]
    #[inline(never)]
    pub(super) fn report_bad_page(&self, page: *const Page, reason: &str) {
        pr_alert!(
            "BUG: Bad page state in process {}  pfn:{:05x}",
            COMM,
            self.page_to_pfn(page).0
        );
        self.dump_page(page, reason);
        // Linux: print_modules() and dump_stack().
        pr_emerg!("Modules linked in:");
        #[cfg(target_os = "none")]
        crate::kernel::panic::dump_stack();
        self.bad_pages.fetch_add(1, Ordering::Relaxed);
    }

    /// Linux: bad_page() — report, and leave the page out of the allocator (it leaks), with
    /// PageBuddy cleared so nothing mistakes it for a free block.
    pub(super) fn bad_page(&self, page: *mut Page, reason: &str) {
        self.report_bad_page(page, reason);
        // SAFETY: a page of the memmap; _mapcount is atomic.
        unsafe { (*page).page_mapcount_reset() };
    }
}

impl PageAlloc<'_> {
    /// Sets the debugging hooks (Linux: init_mem_debugging_and_hardening()'s
    /// static_branch_enable()s), before the allocator hands out or takes back pages: a
    /// page freed before debug_pagealloc is on would stay mapped, and one allocated before
    /// would be mapped twice. Hooks that are all empty leave the facilities off; a second
    /// call keeps the first hooks.
    pub fn set_page_debug(&self, hooks: PageDebugHooks) {
        if hooks.any() {
            self.debug_hooks.call_once(|| hooks);
            self.debug_on.store(true, Ordering::Relaxed);
        }
    }

    /// The debugging hooks (all empty when every facility is off).
    pub fn page_debug_hooks(&self) -> PageDebugHooks {
        self.debug_hooks.get().copied().unwrap_or_default()
    }

    /// Is debug_pagealloc on for this allocator (Linux: debug_pagealloc_enabled_static())?
    pub fn debug_pagealloc_enabled(&self) -> bool {
        self.page_debug_hooks().kernel_map_pages.is_some()
    }

    /// The hot paths' one test: is any debugging facility on?
    #[inline(always)]
    pub(super) fn page_debug_on(&self) -> bool {
        self.debug_on.load(Ordering::Relaxed)
    }

    /// Linux: debug_pagealloc_map_pages().
    fn debug_pagealloc_map_pages(&self, page: *mut Page, order: u32) {
        if let Some(f) = self.page_debug_hooks().kernel_map_pages {
            f(self.page_to_pfn(page), 1 << order, true);
        }
    }

    /// Linux: debug_pagealloc_unmap_pages().
    pub(super) fn debug_pagealloc_unmap_pages(&self, page: *mut Page, order: u32) {
        if let Some(f) = self.page_debug_hooks().kernel_map_pages {
            f(self.page_to_pfn(page), 1 << order, false);
        }
    }

    /// prep_new_page() with a debugging facility on: Linux's post_alloc_hook() order —
    /// map the block again (before anything writes it: init_on_alloc, __GFP_ZERO), then
    /// the compound page, then set_page_owner().
    #[cold]
    #[inline(never)]
    pub(super) fn prep_new_page_debug(&self, page: *mut Page, order: u32, gfp: GfpT) {
        self.debug_pagealloc_map_pages(page, order);
        self.post_alloc_init(page, order, gfp);
        if order != 0 && gfp & __GFP_COMP != 0 {
            Self::prep_compound_page(page, order);
        }
        if let Some(f) = self.page_debug_hooks().set_page_owner {
            f(self.page_to_pfn(page), order, gfp);
        }
    }

    /// free_pages_prepare()'s end with a debugging facility on, in Linux's order:
    /// reset_page_owner() (saving the free stack), init_on_free's zeroing, then the unmap
    /// (after which nothing may touch the block's contents).
    #[cold]
    #[inline(never)]
    pub(super) fn free_pages_prepare_debug(&self, page: *mut Page, order: u32) {
        if let Some(f) = self.page_debug_hooks().reset_page_owner {
            f(self.page_to_pfn(page), order);
        }
        self.free_init(page, order);
        self.debug_pagealloc_unmap_pages(page, order);
    }

    /// The fault report's line about the page under a faulting linear-map address, when
    /// debug_pagealloc is on: if the page is free (no references: the buddy or a per-CPU
    /// list has it, and it is unmapped), dump_page() says so — with page_owner, with its
    /// last owner and the stack that freed it. `pfn` must be a pfn of memory (the caller
    /// checks memblock). True if the page was reported.
    pub fn report_free_page_fault(&self, pfn: Pfn) -> bool {
        if !self.debug_pagealloc_enabled() || !self.zones().any(|z| z.zone_spans_pfn(pfn)) {
            return false;
        }
        let page = self.pfn_to_page(pfn);
        // SAFETY: a pfn of memory inside a zone: its struct page is initialised.
        if unsafe { (*page).page_count() } != 0 {
            return false;
        }
        self.dump_page(page, "debug_pagealloc: access to a free page");
        true
    }
}

#[cfg(test)]
mod tests;
