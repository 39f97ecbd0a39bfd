//! The bad-page report: `BUG: Bad page state` and dump_page(). Mirrors Linux 6.1's
//! bad_page() (mm/page_alloc.c) and __dump_page() (mm/debug.c).

use core::ptr;
use core::sync::atomic::Ordering;

use super::{PageAlloc, COMM};
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
    }

    /// The report half of bad_page(): Linux's `BUG: Bad page state` lines (Linux then
    /// prints the modules and a stack, and taints the kernel). Never inlined: the stack it
    /// prints names it, as Linux's names bad_page().
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
