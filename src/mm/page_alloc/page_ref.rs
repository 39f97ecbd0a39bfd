//! Linux 6.1: the reference-counted page API of include/linux/mm.h — `get_page()`,
//! `get_page_unless_zero()`, `put_page()` with `put_page_testzero()` — and mm/swap.c's
//! `__folio_put()` (`__folio_put_small`, `__folio_put_large` → `free_compound_page()`): the
//! last reference frees the page, a compound page as a whole. Both act on the head of a
//! tail page (`page_folio()`).
//!
//! Linux checks the counts with VM_BUG_ON_FOLIO / VM_BUG_ON_PAGE (CONFIG_DEBUG_VM; a BUG
//! there). Here they are always checked, reported with Linux's `page dumped because:` line
//! (as __free_pages() reports a double free), and the call does nothing.

use super::{PageAlloc, PagePtr};
use crate::mm::page::Page;

impl PageAlloc<'_> {
    /// Linux: page_folio() — the head page of `page`'s compound page, or the page.
    fn page_folio(page: PagePtr) -> *mut Page {
        // SAFETY: a page of the memmap (the caller's reference); compound_head reads it.
        unsafe { page.as_ref().compound_head() as *mut Page }
    }

    /// Linux: get_page() → folio_get() — one more reference to the compound page (or page).
    pub fn get_page(&self, page: PagePtr) {
        let head = Self::page_folio(page);
        // SAFETY: a page of the memmap; _refcount is atomic.
        let h = unsafe { &*head };
        if h.page_ref_zero_or_close_to_overflow() {
            return self.report_bad_page(
                head,
                "VM_BUG_ON_FOLIO(folio_ref_zero_or_close_to_overflow(folio))",
            );
        }
        h.page_ref_inc();
    }

    /// Linux: get_page_unless_zero() — a reference unless the page is free (count 0).
    pub fn get_page_unless_zero(&self, page: PagePtr) -> bool {
        // SAFETY: a page of the memmap; _refcount is atomic.
        unsafe { page.as_ref() }.page_ref_add_unless(1, 0)
    }

    /// Linux: put_page() → folio_put() — drop a reference to the compound page (or page);
    /// the last one frees it: a compound page with its compound order
    /// (free_compound_page()), any other page as order 0 (__folio_put_small()).
    pub fn put_page(&self, page: PagePtr) {
        let head = Self::page_folio(page);
        // SAFETY: a page of the memmap; refcount and flags are atomic.
        let h = unsafe { &*head };
        // Linux: put_page_testzero().
        if h.page_ref_count() == 0 {
            return self.report_bad_page(head, "VM_BUG_ON_PAGE(page_ref_count(page) == 0)");
        }
        if h.page_ref_dec_and_test() {
            let order = if h.page_head() {
                Self::compound_order(head)
            } else {
                0
            };
            self.free_the_page(head, order);
        }
    }
}

#[cfg(test)]
mod tests;
