//! Linux 6.1: include/linux/page_ref.h — the atomic operations on `page->_refcount`
//! (`page_ref_add`, `page_ref_sub`, `page_ref_inc`, `page_ref_dec`, `page_ref_*_and_test`,
//! `page_ref_*_return`, `page_ref_add_unless`, `page_ref_freeze` / `page_ref_unfreeze`)
//! and include/linux/mm.h's `page_ref_zero_or_close_to_overflow()`. Each acts on the page
//! it is called on (Linux's page_ref_* do not look up the head; get_page/put_page do).

use core::sync::atomic::Ordering;

use super::Page;

impl Page {
    /// Linux: page_ref_count().
    pub fn page_ref_count(&self) -> i32 {
        self._refcount.load(Ordering::Relaxed)
    }

    /// Linux: page_ref_add().
    pub fn page_ref_add(&self, nr: i32) {
        self._refcount.fetch_add(nr, Ordering::Relaxed);
    }

    /// Linux: page_ref_sub().
    pub fn page_ref_sub(&self, nr: i32) {
        self._refcount.fetch_sub(nr, Ordering::Relaxed);
    }

    /// Linux: page_ref_inc().
    pub fn page_ref_inc(&self) {
        self.page_ref_add(1)
    }

    /// Linux: page_ref_dec().
    pub fn page_ref_dec(&self) {
        self.page_ref_sub(1)
    }

    /// Linux: page_ref_sub_return() (a full barrier, as atomic_sub_return()).
    pub fn page_ref_sub_return(&self, nr: i32) -> i32 {
        self._refcount.fetch_sub(nr, Ordering::AcqRel) - nr
    }

    /// Linux: page_ref_inc_return().
    pub fn page_ref_inc_return(&self) -> i32 {
        self._refcount.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Linux: page_ref_dec_return().
    pub fn page_ref_dec_return(&self) -> i32 {
        self.page_ref_sub_return(1)
    }

    /// Linux: page_ref_sub_and_test() — true when the count reached 0.
    pub fn page_ref_sub_and_test(&self, nr: i32) -> bool {
        self.page_ref_sub_return(nr) == 0
    }

    /// Linux: page_ref_dec_and_test().
    pub fn page_ref_dec_and_test(&self) -> bool {
        self.page_ref_sub_and_test(1)
    }

    /// Linux: page_ref_add_unless() — add `nr` unless the count is `u`; whether it added.
    pub fn page_ref_add_unless(&self, nr: i32, u: i32) -> bool {
        self._refcount
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| {
                (c != u).then_some(c.wrapping_add(nr))
            })
            .is_ok()
    }

    /// Linux: page_ref_freeze() — set the count to 0 if it is `count`.
    pub fn page_ref_freeze(&self, count: i32) -> bool {
        self._refcount
            .compare_exchange(count, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Linux: page_ref_unfreeze() — VM_BUG_ON_PAGE(page_count(page) != 0) is the caller's.
    pub fn page_ref_unfreeze(&self, count: i32) {
        self._refcount.store(count, Ordering::Release);
    }

    /// Linux: page_ref_zero_or_close_to_overflow() — 0, or within 127 of wrapping.
    pub fn page_ref_zero_or_close_to_overflow(&self) -> bool {
        (self.page_ref_count() as u32).wrapping_add(127) <= 127
    }
}
