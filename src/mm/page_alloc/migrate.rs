//! Page migration for non-LRU movable pages. Mirrors the part of Linux 6.1's mm/migrate.c
//! (`isolate_movable_page`, `putback_movable_pages`, `migrate_pages` → `unmap_and_move` →
//! `move_to_new_folio`) and include/linux/migrate.h (`struct movable_operations`,
//! `__SetPageMovable`, `__ClearPageMovable`, `PageMovable`) that moves a driver's movable
//! pages: what alloc_contig_range() needs to empty a CMA range.
//!
//! A page's owner makes it movable with [`__set_page_movable`], giving its
//! [`MovableOperations`]: `page->mapping` then holds the operations' address with the
//! `PAGE_MAPPING_MOVABLE` bit, as in Linux. To move it, the allocator isolates it (a reference,
//! the page lock, the owner's `isolate_page`, `PG_isolated`), allocates a new page and calls
//! the owner's `migrate_page(dst, src)`, which copies the contents, repoints its own
//! references, makes `dst` movable and drops its reference to `src`; the isolation reference
//! then frees `src`. A page that fails is handed back (`putback_page`).
//!
//! What is different from Linux: there are no LRU (anonymous or file) pages in this kernel,
//! so no `rmap` unmapping and no `migrate_folio`; only order-0 movable pages (what zsmalloc
//! and the balloon drivers have); the list of isolated pages is an array (Linux links them
//! through `page->lru`).

use core::ptr::NonNull;
use core::sync::atomic::Ordering;

use super::{PageAlloc, PagePtr};
use crate::mm::gfp::{GfpT, __GFP_MOVABLE, __GFP_RETRY_MAYFAIL, GFP_USER};
use crate::mm::page::{Page, PG_LOCKED, PG_RECLAIM};

/// Linux: PAGE_MAPPING_MOVABLE — `page->mapping` points to movable_operations.
pub const PAGE_MAPPING_MOVABLE: u64 = 0x2;
/// Linux: PAGE_MAPPING_FLAGS.
pub const PAGE_MAPPING_FLAGS: u64 = 0x3;
/// Linux: PG_isolated — a movable page taken for migration (it shares PG_reclaim's bit).
pub const PG_ISOLATED: u32 = PG_RECLAIM;
/// Linux: MIGRATEPAGE_SUCCESS.
pub const MIGRATEPAGE_SUCCESS: i32 = 0;
/// Linux: COMPACT_CLUSTER_MAX — pages isolated for migration at a time.
pub const COMPACT_CLUSTER_MAX: usize = 32;
/// Linux: errno EAGAIN.
pub const EAGAIN: i32 = 11;
/// Linux: errno ENOMEM.
pub const ENOMEM: i32 = 12;

/// Linux: enum migrate_mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateMode {
    /// MIGRATE_ASYNC — never block.
    Async,
    /// MIGRATE_SYNC_LIGHT.
    SyncLight,
    /// MIGRATE_SYNC — alloc_contig_range()'s mode.
    Sync,
}

/// Linux: struct movable_operations — how the allocator moves an owner's pages. Each gets
/// the allocator the page belongs to.
pub struct MovableOperations {
    /// Take `page` out of the owner's use for migration; false: not now.
    pub isolate_page: fn(&PageAlloc, PagePtr, MigrateMode) -> bool,
    /// Move `src`'s contents and the owner's references to `dst`; MIGRATEPAGE_SUCCESS or
    /// a negative errno (`-EAGAIN`: try again). On success the owner has made `dst` movable
    /// (and holds a reference to it) and dropped its reference to `src`, cleared movable.
    pub migrate_page: fn(&PageAlloc, PagePtr, PagePtr, MigrateMode) -> i32,
    /// Give an isolated page back to its owner, unmoved.
    pub putback_page: fn(&PageAlloc, PagePtr),
}

/// Linux: __SetPageMovable() — `page` (order 0, owned by the caller) becomes movable.
pub fn __set_page_movable(page: PagePtr, mops: &'static MovableOperations) {
    let addr = mops as *const MovableOperations as u64;
    debug_assert!(addr & PAGE_MAPPING_FLAGS == 0);
    // SAFETY: the caller owns the page; `mapping` is written by its owner.
    unsafe { (*page.as_ptr()).mapping = addr | PAGE_MAPPING_MOVABLE };
}

/// Linux: __ClearPageMovable() — no longer movable; the flag bit stays, as Linux keeps it
/// (free_pages_prepare() clears the mapping).
pub fn __clear_page_movable(page: PagePtr) {
    // SAFETY: the caller owns the page.
    unsafe { (*page.as_ptr()).mapping = PAGE_MAPPING_MOVABLE };
}

/// Linux: __PageMovable() — the mapping says movable (the operations may be gone).
pub fn __page_movable(page: &Page) -> bool {
    page.mapping & PAGE_MAPPING_FLAGS == PAGE_MAPPING_MOVABLE
}

/// Linux: page_movable_ops() — the owner's operations, if the page is still movable
/// (Linux's PageMovable()).
pub fn page_movable_ops(page: &Page) -> Option<&'static MovableOperations> {
    if !__page_movable(page) {
        return None;
    }
    let addr = page.mapping & !PAGE_MAPPING_FLAGS;
    // SAFETY: __set_page_movable() stored the address of a `&'static MovableOperations`.
    NonNull::new(addr as *mut MovableOperations).map(|p| unsafe { &*p.as_ptr() })
}

/// Linux: PageIsolated().
pub fn page_isolated(page: &Page) -> bool {
    page.test_flag(PG_ISOLATED)
}

/// Linux: trylock_page().
fn trylock_page(page: &Page) -> bool {
    page.flags.fetch_or(1 << PG_LOCKED, Ordering::Acquire) & (1 << PG_LOCKED) == 0
}

/// Linux: unlock_page().
fn unlock_page(page: &Page) {
    page.flags.fetch_and(!(1 << PG_LOCKED), Ordering::Release);
}

/// Linux: struct migration_target_control's gfp for alloc_contig_range():
/// `GFP_USER | __GFP_MOVABLE | __GFP_RETRY_MAYFAIL`.
pub const MIGRATION_TARGET_GFP: GfpT = GFP_USER | __GFP_MOVABLE | __GFP_RETRY_MAYFAIL;

impl PageAlloc<'_> {
    /// Linux: isolate_movable_page() — take a movable page for migration: a reference, the
    /// page lock while the owner's `isolate_page` runs, then PG_isolated. False: it is free,
    /// not movable, busy or already isolated (nothing held).
    pub fn isolate_movable_page(&self, page: PagePtr, mode: MigrateMode) -> bool {
        if !self.get_page_unless_zero(page) {
            return false;
        }
        // SAFETY: we hold a reference; flags are atomic, mapping is read as Linux reads it
        // (the owner writes it under the page lock or before publishing the page).
        let p = unsafe { page.as_ref() };
        let ok = __page_movable(p) && trylock_page(p) && {
            let taken = match page_movable_ops(p) {
                Some(ops) if !page_isolated(p) => (ops.isolate_page)(self, page, mode),
                _ => false,
            };
            if taken {
                p.set_flag(PG_ISOLATED);
            }
            unlock_page(p);
            taken
        };
        if !ok {
            self.put_page(page);
        }
        ok
    }

    /// Linux: putback_movable_pages() — give isolated pages back to their owners.
    pub fn putback_movable_pages(&self, pages: &[PagePtr]) {
        for &page in pages {
            // SAFETY: isolated by us: we hold a reference.
            let p = unsafe { page.as_ref() };
            while !trylock_page(p) {
                core::hint::spin_loop();
            }
            // (None: the owner let go of it while isolated; nothing to give back.)
            if let Some(ops) = page_movable_ops(p) {
                (ops.putback_page)(self, page);
            }
            p.clear_flag(PG_ISOLATED);
            unlock_page(p);
            self.put_page(page);
        }
    }

    /// Linux: alloc_migration_target() — a new page on `nid` for a page being moved.
    fn alloc_migration_target(&self, nid: i32) -> Option<PagePtr> {
        self.alloc_pages_node(nid, MIGRATION_TARGET_GFP, 0)
    }

    /// Linux: unmap_and_move() → __unmap_and_move() → move_to_new_folio() for one isolated
    /// non-LRU movable page. MIGRATEPAGE_SUCCESS (the page is gone: freed or let go of by its
    /// owner) or a negative errno; on failure the page stays isolated.
    fn unmap_and_move(&self, src: PagePtr, nid: i32, mode: MigrateMode) -> i32 {
        // SAFETY: isolated by us: we hold a reference.
        let s = unsafe { src.as_ref() };
        // The owner freed it while it was isolated: done.
        if s.page_ref_count() == 1 {
            s.clear_flag(PG_ISOLATED);
            self.put_page(src);
            return MIGRATEPAGE_SUCCESS;
        }
        let Some(dst) = self.alloc_migration_target(nid) else {
            return -ENOMEM;
        };
        if !trylock_page(s) {
            if mode == MigrateMode::Async {
                self.put_page(dst);
                return -EAGAIN;
            }
            while !trylock_page(s) {
                core::hint::spin_loop();
            }
        }
        // SAFETY: a page we just allocated.
        let d = unsafe { dst.as_ref() };
        let locked_dst = trylock_page(d);
        debug_assert!(locked_dst, "a new page is unlocked");
        let rc = match page_movable_ops(s) {
            // Released by its owner after isolation: nothing to move.
            None => MIGRATEPAGE_SUCCESS,
            Some(ops) => (ops.migrate_page)(self, dst, src, mode),
        };
        if rc == MIGRATEPAGE_SUCCESS {
            s.clear_flag(PG_ISOLATED);
        }
        unlock_page(d);
        unlock_page(s);
        if rc == MIGRATEPAGE_SUCCESS {
            // The isolation reference: the last one, the owner dropped its own.
            self.put_page(src);
        }
        // The allocation's reference: the owner holds its own on success; on failure the
        // new page goes back.
        self.put_page(dst);
        rc
    }

    /// Linux: migrate_pages() for isolated non-LRU movable pages — move each (a few passes
    /// while owners say -EAGAIN). The pages moved are removed from `pages`, those left stay
    /// isolated for the caller to retry or put back. Ok(number not moved) or Err(-ENOMEM)
    /// when no new page could be had.
    pub fn migrate_pages(
        &self,
        pages: &mut [Option<PagePtr>],
        nid: i32,
        mode: MigrateMode,
    ) -> Result<usize, i32> {
        for _pass in 0..10 {
            let mut retry = 0;
            for slot in pages.iter_mut() {
                let Some(page) = *slot else { continue };
                match self.unmap_and_move(page, nid, mode) {
                    MIGRATEPAGE_SUCCESS => *slot = None,
                    rc if rc == -EAGAIN => retry += 1,
                    rc if rc == -ENOMEM => return Err(rc),
                    _ => {}
                }
            }
            if retry == 0 {
                break;
            }
        }
        Ok(pages.iter().filter(|p| p.is_some()).count())
    }
}
