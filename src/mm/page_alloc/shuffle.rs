//! Free-list shuffling (Linux: mm/shuffle.c, CONFIG_SHUFFLE_PAGE_ALLOCATOR, which Debian's
//! 6.1 builds in, off unless `page_alloc.shuffle=1`).
//!
//! With it on, the order in which the buddy hands out its largest blocks is randomised, so
//! physical addresses are harder to predict (and, Linux's first reason, a memory-side cache
//! sees a spread of addresses): once all memory is free (`page_alloc_init_late`),
//! `__shuffle_zone` swaps each free MAX_ORDER - 1 block with a randomly chosen one of the
//! same zone, order and migratetype (a Fisher-Yates pass over the zone); and afterwards
//! every free of a block of that order goes to the head or the tail of its list by a coin
//! flip (`shuffle_pick_tail`) instead of by `buddy_merge_likely`.

use super::PageAlloc;
use crate::include::mmzone::MAX_ORDER;
use crate::kernel::params::{kstrtobool, SetupResult};
use crate::kernel::random::{get_random_long, get_random_u64};
use crate::mm::mmzone::Zone;
use crate::mm::page::{ListHead, Page};
use crate::mm::Pfn;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Linux: SHUFFLE_ORDER — the order whose free lists are shuffled (MAX_ORDER - 1).
pub const SHUFFLE_ORDER: u32 = MAX_ORDER as u32 - 1;

/// Linux: SHUFFLE_RETRY — random picks tried for a swap partner before giving up.
const SHUFFLE_RETRY: u32 = 10;

/// Linux: page_alloc_shuffle_key.
static SHUFFLE: AtomicBool = AtomicBool::new(false);

/// Linux: shuffle_param_set() — `page_alloc.shuffle=` (a module parameter of the built-in
/// page allocator).
fn shuffle_param_set(val: Option<&str>) -> SetupResult {
    SHUFFLE.store(parse_shuffle(val)?, Ordering::Relaxed);
    Ok(())
}

/// The value of `page_alloc.shuffle=` (Linux: kstrtobool; a bare `page_alloc.shuffle` is
/// an error, as Linux's param_set_bool says for a missing value).
fn parse_shuffle(val: Option<&str>) -> Result<bool, &'static str> {
    kstrtobool(val.unwrap_or("")).ok_or("page_alloc.shuffle wants a boolean")
}
crate::setup_param!("page_alloc.shuffle", shuffle_param_set);

/// Linux: page_alloc_shuffle_key's state.
pub fn shuffle_enabled() -> bool {
    SHUFFLE.load(Ordering::Relaxed)
}

/// Linux: is_shuffle_order().
#[inline]
pub fn is_shuffle_order(order: u32) -> bool {
    order >= SHUFFLE_ORDER && shuffle_enabled()
}

/// Linux: shuffle_pick_tail()'s `rand` and `rand_bits`, in one word: the low 57 bits are
/// random bits not yet used, the top 7 bits how many remain.
static RAND: AtomicU64 = AtomicU64::new(0);

/// Linux: shuffle_pick_tail() — one random bit per call, 64 per get_random_u64(). Like
/// Linux's, unlocked: two CPUs racing may use a bit twice, which does no harm.
pub fn shuffle_pick_tail() -> bool {
    let mut r = RAND.load(Ordering::Relaxed);
    if r >> 57 == 0 {
        r = (56 << 57) | (get_random_u64() & ((1 << 57) - 1));
    }
    let bit = r & 1 != 0;
    let bits = (r >> 57) - 1;
    RAND.store(
        (bits << 57) | ((r & ((1 << 57) - 1)) >> 1),
        Ordering::Relaxed,
    );
    bit
}

/// Linux: list_swap() — exchange the places of two entries (of the same or different lists).
///
/// # Safety
/// Both entries are on initialised lists the caller may write, and are distinct.
unsafe fn list_swap(a: *mut ListHead, b: *mut ListHead) {
    // SAFETY: the caller guarantees both lists. As Linux: b takes a's place, then a goes
    // where b was (or right after b, when b directly followed a).
    unsafe {
        let mut pos = (*b).prev;
        // list_del(b) without poisoning.
        (*(*b).next).prev = (*b).prev;
        (*(*b).prev).next = (*b).next;
        // list_replace(a, b).
        (*b).next = (*a).next;
        (*(*b).next).prev = b;
        (*b).prev = (*a).prev;
        (*(*b).prev).next = b;
        if pos == a {
            pos = b;
        }
        // list_add(a, pos).
        let next = (*pos).next;
        (*next).prev = a;
        (*a).next = next;
        (*a).prev = pos;
        (*pos).next = a;
    }
}

impl<'a> PageAlloc<'a> {
    /// Linux: shuffle_valid_page() — the free block of exactly `order` at `pfn` in `zone`,
    /// if there is one. `pfn_valid` says which pfns have a struct page.
    fn shuffle_valid_page(
        &self,
        zone: &Zone,
        pfn: u64,
        order: u32,
        pfn_valid: &dyn Fn(Pfn) -> bool,
    ) -> Option<*mut Page> {
        if !pfn_valid(Pfn(pfn)) || !zone.zone_spans_pfn(Pfn(pfn)) {
            return None;
        }
        let page = self.pfn_to_page(Pfn(pfn));
        // SAFETY: a valid pfn has an initialised struct page; the zone lock is held, so
        // the buddy state does not change under us.
        let p = unsafe { &*page };
        let same_zone = core::ptr::eq(self.page_zone(page), zone);
        (same_zone && p.page_buddy() && p.buddy_order() == order).then_some(page)
    }

    /// Linux: __shuffle_zone() — swap every free SHUFFLE_ORDER block of `zone` with a
    /// random one of the same migratetype. Returns the swaps made.
    pub fn __shuffle_zone(&self, zone: &Zone, pfn_valid: &dyn Fn(Pfn) -> bool) -> u64 {
        let order = SHUFFLE_ORDER;
        let order_pages = 1u64 << order;
        let spanned = zone.spanned_pages;
        if spanned == 0 {
            return 0;
        }
        let (zone_start, end) = (zone.zone_start_pfn.0, zone.zone_end_pfn().0);
        let mut swaps = 0;
        let mut guard = zone.lock.lock();
        let mut i = zone_start.next_multiple_of(order_pages);
        while i < end {
            if let Some(page_i) = self.shuffle_valid_page(zone, i, order, pfn_valid) {
                let page_j = (0..SHUFFLE_RETRY).find_map(|_| {
                    let j = zone_start + (get_random_long() % spanned) / order_pages * order_pages;
                    self.shuffle_valid_page(zone, j, order, pfn_valid)
                        .filter(|&p| p != page_i)
                });
                if let Some(page_j) = page_j {
                    let (mi, mj) = (
                        zone.get_pageblock_migratetype(Pfn(i)),
                        zone.get_pageblock_migratetype(self.page_to_pfn(page_j)),
                    );
                    if mi == mj {
                        // SAFETY: both are free blocks on this zone's lists (PageBuddy of
                        // the same order), distinct, and the zone lock is held.
                        unsafe {
                            list_swap(
                                core::ptr::addr_of_mut!((*page_i).lru),
                                core::ptr::addr_of_mut!((*page_j).lru),
                            )
                        };
                        swaps += 1;
                    }
                }
            }
            // Linux: take it easy on the zone lock.
            if i % (100 * order_pages) == 0 {
                drop(guard);
                core::hint::spin_loop();
                guard = zone.lock.lock();
            }
            i += order_pages;
        }
        drop(guard);
        swaps
    }

    /// Linux: shuffle_free_memory() — every zone of node `nid`, when shuffling is on.
    /// Returns the swaps made.
    pub fn shuffle_free_memory(&self, nid: i32, pfn_valid: &dyn Fn(Pfn) -> bool) -> u64 {
        if !shuffle_enabled() {
            return 0;
        }
        let Some(pgdat) = self.nodes.get(nid) else {
            return 0;
        };
        pgdat
            .node_zones
            .iter()
            .filter(|z| z.populated_zone())
            .map(|z| self.__shuffle_zone(z, pfn_valid))
            .sum()
    }
}

#[cfg(test)]
mod tests;
