//! `struct page`: the 64 bytes of metadata the kernel keeps for every page frame, its flag
//! word, and the per-pageblock migratetype bitmap. Mirrors Linux 6.1's
//! include/linux/mm_types.h (`struct page`), include/linux/page-flags.h (`PG_*`),
//! include/linux/page-flags-layout.h (where node and zone live in `page->flags`),
//! include/linux/mm.h (`set_page_links`, `page_zonenum`, `page_to_nid`),
//! the pageblock bitmap accessors (whose constants, with the `MIGRATE_*` types, are in
//! `crate::include::{pageblock_flags, mmzone}`), the `__init_single_page()` /
//! `set_pfnblock_flags_mask()` parts of mm/page_alloc.c, and the `%pGp` flag names.
//!
//! The `flags` word, for arm64 with SPARSEMEM_VMEMMAP (no section number is stored: the
//! vmemmap position of a page *is* its pfn), `NODES_SHIFT` = 4 and `ZONES_SHIFT` = 2:
//!
//! ```text
//!  63    60 59 58 57                                   24 23                     0
//! +--------+-----+---------------------------------------+------------------------+
//! |  node  |zone |   (unused here: Linux keeps LAST_CPUPID|   PG_* flag bits       |
//! |  4 bits|2 bit|    and LRU-generation bits here)      |   (NR_PAGEFLAGS = 24)  |
//! +--------+-----+---------------------------------------+------------------------+
//! ```
//!
//! The pageblock bitmap: every `pageblock_nr_pages` (512 pages, 2 MiB) share
//! `NR_PAGEBLOCK_BITS` (4) bits, the low three of which are the block's migratetype. Linux
//! keeps that bitmap per memory section under SPARSEMEM; we keep it per zone (the
//! `!SPARSEMEM` layout of `zone->pageblock_flags`, indexed from the zone's first pageblock),
//! so the zone code owns it and sparse.rs need not. The bit arithmetic is Linux's.

use core::fmt;
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use super::addr::Pfn;
use crate::include::mmzone::MAX_NR_ZONES;
use crate::include::numa::NODES_SHIFT;
use crate::include::pageblock_flags::{NR_PAGEBLOCK_BITS, PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER};

/// Linux: struct list_head — an intrusive doubly linked list node. Null links mean "not yet
/// initialised"; `init_list_head` points both at the node itself, as INIT_LIST_HEAD() does.
#[repr(C)]
#[derive(Debug)]
pub struct ListHead {
    pub next: *mut ListHead,
    pub prev: *mut ListHead,
}

impl ListHead {
    /// Both links null (what zeroed memory holds before INIT_LIST_HEAD()).
    pub const fn new() -> Self {
        Self {
            next: core::ptr::null_mut(),
            prev: core::ptr::null_mut(),
        }
    }

    /// Linux: INIT_LIST_HEAD() — an empty list points at itself. The node must not move
    /// afterwards (it lives in the memmap or in a pg_data_t, neither of which moves).
    pub fn init_list_head(&mut self) {
        let me: *mut ListHead = self;
        self.next = me;
        self.prev = me;
    }

    /// Linux: list_empty().
    pub fn list_empty(&self) -> bool {
        core::ptr::eq(self.next, self)
    }
}

/// Linux: LIST_POISON1 (with arm64's POISON_POINTER_DELTA) — what list_del() leaves in `next`.
pub const LIST_POISON1: u64 = 0xdead_0000_0000_0100;
/// Linux: LIST_POISON2 — what list_del() leaves in `prev`.
pub const LIST_POISON2: u64 = 0xdead_0000_0000_0122;

/// Linux: __list_add() — link `new` between two neighbours.
///
/// # Safety
/// All three must be valid list nodes the caller may write (under the list's lock); `prev`
/// and `next` must be adjacent.
pub unsafe fn __list_add(new: *mut ListHead, prev: *mut ListHead, next: *mut ListHead) {
    // SAFETY: the caller guarantees the nodes.
    unsafe {
        (*next).prev = new;
        (*new).next = next;
        (*new).prev = prev;
        (*prev).next = new;
    }
}

/// Linux: list_add() — insert `new` right after `head` (stack order).
///
/// # Safety
/// As [`__list_add`]; `head` is an initialised list.
pub unsafe fn list_add(new: *mut ListHead, head: *mut ListHead) {
    // SAFETY: the caller guarantees the list.
    unsafe { __list_add(new, head, (*head).next) }
}

/// Linux: list_add_tail() — insert `new` right before `head` (queue order).
///
/// # Safety
/// As [`list_add`].
pub unsafe fn list_add_tail(new: *mut ListHead, head: *mut ListHead) {
    // SAFETY: the caller guarantees the list.
    unsafe { __list_add(new, (*head).prev, head) }
}

/// Linux: list_del() — unlink `entry` and poison its links.
///
/// # Safety
/// `entry` must be on a list the caller may write.
pub unsafe fn list_del(entry: *mut ListHead) {
    // SAFETY: the caller guarantees the list.
    unsafe {
        let (prev, next) = ((*entry).prev, (*entry).next);
        (*next).prev = prev;
        (*prev).next = next;
        (*entry).next = LIST_POISON1 as *mut ListHead;
        (*entry).prev = LIST_POISON2 as *mut ListHead;
    }
}

/// Linux: list_move() — unlink `entry` and add it after `head`.
///
/// # Safety
/// As [`list_del`] and [`list_add`].
pub unsafe fn list_move(entry: *mut ListHead, head: *mut ListHead) {
    // SAFETY: the caller guarantees both lists.
    unsafe {
        let (prev, next) = ((*entry).prev, (*entry).next);
        (*next).prev = prev;
        (*prev).next = next;
        list_add(entry, head);
    }
}

/// Linux: list_move_tail() — unlink `entry` and add it before `head`.
///
/// # Safety
/// As [`list_move`].
pub unsafe fn list_move_tail(entry: *mut ListHead, head: *mut ListHead) {
    // SAFETY: the caller guarantees both lists.
    unsafe {
        let (prev, next) = ((*entry).prev, (*entry).next);
        (*next).prev = prev;
        (*prev).next = next;
        list_add_tail(entry, head);
    }
}

/// Linux: list_empty() through a pointer.
///
/// # Safety
/// `head` must be an initialised list the caller may read.
pub unsafe fn list_empty(head: *const ListHead) -> bool {
    // SAFETY: the caller guarantees the list.
    unsafe { core::ptr::eq((*head).next, head) }
}

/// Linux: list_entry(ptr, struct page, lru) — the page whose `lru` this is.
pub fn lru_to_page(lru: *mut ListHead) -> *mut Page {
    lru.cast::<u8>()
        .wrapping_sub(core::mem::offset_of!(Page, lru))
        .cast()
}

impl Default for ListHead {
    fn default() -> Self {
        Self::new()
    }
}

/// Linux: struct page (6.1, 64-bit, no WANT_PAGE_VIRTUAL, LAST_CPUPID in `flags`): 64 bytes.
///
/// Linux overlays several layouts in the 40 bytes after `flags` (page cache, slab, buddy,
/// compound tail, ...). We keep the first one, the one the buddy and the page cache use:
/// `lru`, `mapping`, `index`, `private`. Other users will read the same words under their
/// own names when they arrive.
///
/// Lock: a page's fields belong to whoever owns the page (during boot, the boot CPU writing
/// the memmap; later the buddy under its zone's lock while the page is free). `_refcount`
/// and `flags` are atomic because Linux touches them without that ownership (get_page(),
/// SetPageXxx()).
#[repr(C)]
#[derive(Debug)]
pub struct Page {
    /// Linux: page->flags — PG_* bits low, node and zone high (see the module doc).
    pub flags: AtomicU64,
    /// Linux: page->lru — the buddy's free-list link while the page is free.
    pub lru: ListHead,
    /// Linux: page->mapping (a `struct address_space *`; opaque here).
    pub mapping: u64,
    /// Linux: page->index — offset in the mapping; the buddy keeps a pcp migratetype here.
    pub index: u64,
    /// Linux: page->private — the buddy keeps a free page's order here.
    pub private: u64,
    /// Linux: page->_mapcount (shared with page_type: -1 = no type, no mappings).
    pub _mapcount: AtomicI32,
    /// Linux: page->_refcount.
    pub _refcount: AtomicI32,
    /// Linux: page->memcg_data (no memcg here; kept for the size).
    pub memcg_data: u64,
}

// Linux's size for this configuration; every vmemmap computation depends on it.
const _: () = assert!(core::mem::size_of::<Page>() == 64);
const _: () = assert!(core::mem::align_of::<Page>() == 8);

/// Linux: sizeof(struct page).
pub const STRUCT_PAGE_SIZE: u64 = core::mem::size_of::<Page>() as u64;

impl Page {
    /// A page as zeroed memory holds it (Linux: mm_zero_struct_page()).
    pub const fn zeroed() -> Self {
        Self {
            flags: AtomicU64::new(0),
            lru: ListHead::new(),
            mapping: 0,
            index: 0,
            private: 0,
            _mapcount: AtomicI32::new(0),
            _refcount: AtomicI32::new(0),
            memcg_data: 0,
        }
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::zeroed()
    }
}

// ---------------------------------------------------------------------------------------------
// Page flags (include/linux/page-flags.h, 6.1; config: MMU, MEMORY_FAILURE, 64BIT, no
// PAGE_IDLE_FLAG, no KASAN_HW_TAGS).

/// Linux: PG_locked.
pub const PG_LOCKED: u32 = 0;
/// Linux: PG_referenced.
pub const PG_REFERENCED: u32 = 1;
/// Linux: PG_uptodate.
pub const PG_UPTODATE: u32 = 2;
/// Linux: PG_dirty.
pub const PG_DIRTY: u32 = 3;
/// Linux: PG_lru.
pub const PG_LRU: u32 = 4;
/// Linux: PG_active.
pub const PG_ACTIVE: u32 = 5;
/// Linux: PG_workingset.
pub const PG_WORKINGSET: u32 = 6;
/// Linux: PG_waiters.
pub const PG_WAITERS: u32 = 7;
/// Linux: PG_error.
pub const PG_ERROR: u32 = 8;
/// Linux: PG_slab.
pub const PG_SLAB: u32 = 9;
/// Linux: PG_owner_priv_1.
pub const PG_OWNER_PRIV_1: u32 = 10;
/// Linux: PG_arch_1.
pub const PG_ARCH_1: u32 = 11;
/// Linux: PG_reserved — not managed by the buddy (holes, memblock reservations, the kernel).
pub const PG_RESERVED: u32 = 12;
/// Linux: PG_private.
pub const PG_PRIVATE: u32 = 13;
/// Linux: PG_private_2.
pub const PG_PRIVATE_2: u32 = 14;
/// Linux: PG_writeback.
pub const PG_WRITEBACK: u32 = 15;
/// Linux: PG_head — first page of a compound page.
pub const PG_HEAD: u32 = 16;
/// Linux: PG_mappedtodisk.
pub const PG_MAPPEDTODISK: u32 = 17;
/// Linux: PG_reclaim.
pub const PG_RECLAIM: u32 = 18;
/// Linux: PG_swapbacked.
pub const PG_SWAPBACKED: u32 = 19;
/// Linux: PG_unevictable.
pub const PG_UNEVICTABLE: u32 = 20;
/// Linux: PG_mlocked.
pub const PG_MLOCKED: u32 = 21;
/// Linux: PG_hwpoison.
pub const PG_HWPOISON: u32 = 22;
/// Linux: PG_arch_2.
pub const PG_ARCH_2: u32 = 23;
/// Linux: __NR_PAGEFLAGS.
pub const NR_PAGEFLAGS: u32 = 24;

/// Linux: PAGE_FLAGS_CHECK_AT_FREE — flags a page must not carry when it is freed.
pub const PAGE_FLAGS_CHECK_AT_FREE: u64 = 1 << PG_LRU
    | 1 << PG_LOCKED
    | 1 << PG_PRIVATE
    | 1 << PG_PRIVATE_2
    | 1 << PG_WRITEBACK
    | 1 << PG_RESERVED
    | 1 << PG_SLAB
    | 1 << PG_ACTIVE
    | 1 << PG_UNEVICTABLE
    | 1 << PG_MLOCKED;
/// Linux: PAGEFLAGS_MASK.
pub const PAGEFLAGS_MASK: u64 = (1 << NR_PAGEFLAGS) - 1;
/// Linux: PAGE_FLAGS_CHECK_AT_PREP — every flag bit but hwpoison: a page leaving the buddy
/// carries none.
pub const PAGE_FLAGS_CHECK_AT_PREP: u64 = PAGEFLAGS_MASK & !(1 << PG_HWPOISON);

/// Linux: __def_pageflag_names (6.1, this configuration), in the order `%pGp` prints them.
pub const PAGEFLAG_NAMES: [(u32, &str); 24] = [
    (PG_LOCKED, "locked"),
    (PG_WAITERS, "waiters"),
    (PG_ERROR, "error"),
    (PG_REFERENCED, "referenced"),
    (PG_UPTODATE, "uptodate"),
    (PG_DIRTY, "dirty"),
    (PG_LRU, "lru"),
    (PG_ACTIVE, "active"),
    (PG_WORKINGSET, "workingset"),
    (PG_SLAB, "slab"),
    (PG_OWNER_PRIV_1, "owner_priv_1"),
    (PG_ARCH_1, "arch_1"),
    (PG_RESERVED, "reserved"),
    (PG_PRIVATE, "private"),
    (PG_PRIVATE_2, "private_2"),
    (PG_WRITEBACK, "writeback"),
    (PG_HEAD, "head"),
    (PG_MAPPEDTODISK, "mappedtodisk"),
    (PG_RECLAIM, "reclaim"),
    (PG_SWAPBACKED, "swapbacked"),
    (PG_UNEVICTABLE, "unevictable"),
    (PG_MLOCKED, "mlocked"),
    (PG_HWPOISON, "hwpoison"),
    (PG_ARCH_2, "arch_2"),
];

/// Linux: TAIL_MAPPING (0x400 + POISON_POINTER_DELTA) — `mapping` of a compound tail page.
pub const TAIL_MAPPING: u64 = 0xdead_0000_0000_0400;
/// Linux: COMPOUND_PAGE_DTOR — the destructor index of a plain compound page.
pub const COMPOUND_PAGE_DTOR: u8 = 1;

/// Linux: PAGE_TYPE_BASE — page types live in `_mapcount`, inverted: a type is set by
/// clearing its bit in a value that starts as -1.
pub const PAGE_TYPE_BASE: u32 = 0xf000_0000;
/// Linux: PG_buddy — the page heads a free block on a buddy free list.
pub const PG_BUDDY: u32 = 0x0000_0080;

/// Linux: `%pGp` — a page's flag word: its set flags by name, then node and zone.
pub struct PageFlagNames(pub u64);

impl fmt::Display for PageFlagNames {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let flags = self.0;
        write!(f, "{:#x}(", flags)?;
        for &(bit, name) in PAGEFLAG_NAMES.iter() {
            if flags & (1 << bit) != 0 {
                write!(f, "{}|", name)?;
            }
        }
        write!(
            f,
            "node={}|zone={})",
            (flags >> NODES_PGSHIFT) & NODES_MASK,
            (flags >> ZONES_PGSHIFT) & ZONES_MASK
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Node and zone in page->flags (include/linux/page-flags-layout.h).

/// Linux: SECTIONS_WIDTH — 0 with SPARSEMEM_VMEMMAP.
pub const SECTIONS_WIDTH: u32 = 0;
/// Linux: ZONES_SHIFT (4 zones: DMA, DMA32, Normal, Movable).
pub const ZONES_SHIFT: u32 = 2;
/// Linux: NODES_WIDTH.
pub const NODES_WIDTH: u32 = NODES_SHIFT;
/// Linux: ZONES_WIDTH.
pub const ZONES_WIDTH: u32 = ZONES_SHIFT;
/// Linux: SECTIONS_PGOFF.
pub const SECTIONS_PGOFF: u32 = 64 - SECTIONS_WIDTH;
/// Linux: NODES_PGOFF.
pub const NODES_PGOFF: u32 = SECTIONS_PGOFF - NODES_WIDTH;
/// Linux: ZONES_PGOFF.
pub const ZONES_PGOFF: u32 = NODES_PGOFF - ZONES_WIDTH;
/// Linux: NODES_PGSHIFT.
pub const NODES_PGSHIFT: u32 = NODES_PGOFF;
/// Linux: ZONES_PGSHIFT.
pub const ZONES_PGSHIFT: u32 = ZONES_PGOFF;
/// Linux: NODES_MASK.
pub const NODES_MASK: u64 = (1 << NODES_WIDTH) - 1;
/// Linux: ZONES_MASK.
pub const ZONES_MASK: u64 = (1 << ZONES_WIDTH) - 1;
/// Linux: ZONEID_SHIFT (node and zone together: a zone's id across the machine).
pub const ZONEID_SHIFT: u32 = NODES_SHIFT + ZONES_SHIFT;
/// Linux: ZONEID_PGOFF.
pub const ZONEID_PGOFF: u32 = ZONES_PGOFF;
/// Linux: ZONEID_MASK.
pub const ZONEID_MASK: u64 = (1 << ZONEID_SHIFT) - 1;

// Linux's mminit_verify_pageflags_layout(), at compile time: the fields neither overlap each
// other nor the flag bits.
const _: () = assert!(ZONES_PGSHIFT >= NR_PAGEFLAGS);
const _: () = assert!(
    ((ZONES_MASK << ZONES_PGSHIFT) | (NODES_MASK << NODES_PGSHIFT))
        == ((ZONES_MASK << ZONES_PGSHIFT) + (NODES_MASK << NODES_PGSHIFT))
);
const _: () = assert!(MAX_NR_ZONES as u64 <= ZONES_MASK + 1);

impl Page {
    /// Linux: set_page_zone().
    pub fn set_page_zone(&self, zone: usize) {
        let f = self.flags.load(Ordering::Relaxed);
        let f =
            (f & !(ZONES_MASK << ZONES_PGSHIFT)) | ((zone as u64 & ZONES_MASK) << ZONES_PGSHIFT);
        self.flags.store(f, Ordering::Relaxed);
    }

    /// Linux: set_page_node().
    pub fn set_page_node(&self, node: i32) {
        let f = self.flags.load(Ordering::Relaxed);
        let f =
            (f & !(NODES_MASK << NODES_PGSHIFT)) | ((node as u64 & NODES_MASK) << NODES_PGSHIFT);
        self.flags.store(f, Ordering::Relaxed);
    }

    /// Linux: set_page_links() (no section in the flags with VMEMMAP).
    pub fn set_page_links(&self, zone: usize, node: i32) {
        self.set_page_zone(zone);
        self.set_page_node(node);
    }

    /// Linux: page_zonenum().
    pub fn page_zonenum(&self) -> usize {
        ((self.flags.load(Ordering::Relaxed) >> ZONES_PGSHIFT) & ZONES_MASK) as usize
    }

    /// Linux: page_to_nid().
    pub fn page_to_nid(&self) -> i32 {
        ((self.flags.load(Ordering::Relaxed) >> NODES_PGSHIFT) & NODES_MASK) as i32
    }

    /// Linux: page_zone_id() — node and zone as one number.
    pub fn page_zone_id(&self) -> u64 {
        (self.flags.load(Ordering::Relaxed) >> ZONEID_PGOFF) & ZONEID_MASK
    }

    /// Linux: test_bit(bit, &page->flags).
    pub fn test_flag(&self, bit: u32) -> bool {
        self.flags.load(Ordering::Relaxed) & (1 << bit) != 0
    }

    /// Linux: set_bit(bit, &page->flags) — atomic.
    pub fn set_flag(&self, bit: u32) {
        self.flags.fetch_or(1 << bit, Ordering::Relaxed);
    }

    /// Linux: clear_bit(bit, &page->flags) — atomic.
    pub fn clear_flag(&self, bit: u32) {
        self.flags.fetch_and(!(1 << bit), Ordering::Relaxed);
    }

    /// Linux: __set_bit() — non-atomic: the caller owns the page exclusively.
    pub fn __set_flag(&mut self, bit: u32) {
        *self.flags.get_mut() |= 1 << bit;
    }

    /// Linux: __clear_bit() — non-atomic.
    pub fn __clear_flag(&mut self, bit: u32) {
        *self.flags.get_mut() &= !(1 << bit);
    }

    /// Linux: `page->flags &= ~mask` — a plain read and write of the word, no atomic
    /// read-modify-write: for the page's owner (a page being freed or just allocated), the
    /// only writer of its flags. Others may still read the word (a concurrent free of the
    /// neighbouring block reads its node and zone bits, which this leaves alone).
    #[inline]
    pub fn __clear_flags(&self, mask: u64) {
        self.flags.store(
            self.flags.load(Ordering::Relaxed) & !mask,
            Ordering::Relaxed,
        );
    }

    /// Linux: PageReserved().
    pub fn page_reserved(&self) -> bool {
        self.test_flag(PG_RESERVED)
    }

    /// Linux: SetPageReserved().
    pub fn set_page_reserved(&self) {
        self.set_flag(PG_RESERVED)
    }

    /// Linux: ClearPageReserved().
    pub fn clear_page_reserved(&self) {
        self.clear_flag(PG_RESERVED)
    }

    /// Linux: __SetPageReserved().
    pub fn __set_page_reserved(&mut self) {
        self.__set_flag(PG_RESERVED)
    }

    /// Linux: __ClearPageReserved().
    pub fn __clear_page_reserved(&mut self) {
        self.__clear_flag(PG_RESERVED)
    }

    /// Linux: page_count() (of a non-compound page).
    pub fn page_count(&self) -> i32 {
        self._refcount.load(Ordering::Relaxed)
    }

    /// Linux: set_page_count().
    pub fn set_page_count(&self, v: i32) {
        self._refcount.store(v, Ordering::Relaxed);
    }

    /// Linux: init_page_count() — a new page has one reference.
    pub fn init_page_count(&self) {
        self.set_page_count(1);
    }

    /// Linux: page_mapcount_reset() — -1: no mappings, no page type.
    pub fn page_mapcount_reset(&self) {
        self._mapcount.store(-1, Ordering::Relaxed);
    }

    /// Linux: page_type_has_type() / PageType(page, PG_buddy) for buddy — PageBuddy().
    pub fn page_buddy(&self) -> bool {
        let t = self._mapcount.load(Ordering::Relaxed) as u32;
        (t & (PAGE_TYPE_BASE | PG_BUDDY)) == PAGE_TYPE_BASE
    }

    /// Linux: __SetPageBuddy().
    pub fn __set_page_buddy(&mut self) {
        *self._mapcount.get_mut() &= !(PG_BUDDY as i32);
    }

    /// Linux: __ClearPageBuddy().
    pub fn __clear_page_buddy(&mut self) {
        *self._mapcount.get_mut() |= PG_BUDDY as i32;
    }

    /// Linux: set_page_private().
    pub fn set_page_private(&mut self, v: u64) {
        self.private = v;
    }

    /// Linux: page_private().
    pub fn page_private(&self) -> u64 {
        self.private
    }

    /// Linux: buddy_order() — a free block's order (meaningful only while PageBuddy).
    pub fn buddy_order(&self) -> u32 {
        self.private as u32
    }

    /// Linux: set_buddy_order() — record the order and mark the page PageBuddy.
    pub fn set_buddy_order(&mut self, order: u32) {
        self.set_page_private(order as u64);
        self.__set_page_buddy();
    }

    /// Linux: page_mapcount() of a non-compound page, as page_bad_reason() reads it.
    pub fn page_mapcount_raw(&self) -> i32 {
        self._mapcount.load(Ordering::Relaxed)
    }

    /// Linux: PageHead().
    pub fn page_head(&self) -> bool {
        self.test_flag(PG_HEAD)
    }

    /// Linux: PageTail() — bit 0 of `compound_head` (the word of `lru.next`).
    pub fn page_tail(&self) -> bool {
        self.lru.next as u64 & 1 != 0
    }

    /// Linux: PageCompound().
    pub fn page_compound(&self) -> bool {
        self.page_head() || self.page_tail()
    }

    /// Linux: compound_head() — the head page of a tail page, or the page itself.
    pub fn compound_head(&self) -> *const Page {
        let h = self.lru.next as u64;
        if h & 1 != 0 {
            (h - 1) as *const Page
        } else {
            self
        }
    }

    /// Linux: set_compound_head() — make this a tail page of `head`.
    pub fn set_compound_head(&mut self, head: *const Page) {
        self.lru.next = (head as u64 | 1) as *mut ListHead;
    }

    /// Linux: clear_compound_head().
    pub fn clear_compound_head(&mut self) {
        self.lru.next = core::ptr::null_mut();
    }

    /// The first tail page's `compound_dtor`, `compound_order` and `compound_mapcount`,
    /// which Linux 6.1 overlays on the word of `lru.prev` (byte 0, byte 1, bytes 4-7).
    fn compound_word(&self) -> u64 {
        self.lru.prev as u64
    }

    /// Linux: set_compound_page_dtor(), set_compound_order() and compound_mapcount = -1,
    /// on the first tail page (prep_compound_head()).
    pub fn set_compound_head_info(&mut self, dtor: u8, order: u32) {
        let w = dtor as u64 | ((order as u64 & 0xff) << 8) | ((u32::MAX as u64) << 32);
        self.lru.prev = w as *mut ListHead;
    }

    /// Linux: compound_order() read from the first tail page.
    pub fn first_tail_compound_order(&self) -> u32 {
        ((self.compound_word() >> 8) & 0xff) as u32
    }

    /// Linux: compound_mapcount() read from the first tail page (the stored value plus one).
    pub fn first_tail_compound_mapcount(&self) -> i32 {
        ((self.compound_word() >> 32) as u32 as i32).wrapping_add(1)
    }
}

/// Linux: __init_single_page() — zero the page, then link it to its zone and node, give it
/// one reference and no mappings, and make its list link empty. (Linux also resets the
/// last-cpupid and KASAN tag bits of `flags`, which this kernel does not keep.)
pub fn init_single_page(page: &mut Page, zone: usize, nid: i32) {
    // SAFETY: one page, borrowed exclusively.
    unsafe { init_page_range(page, 1, page_links(zone, nid), 1) }
}

/// Linux: set_page_links() as a value: the node and zone bits of a page's flags.
pub const fn page_links(zone: usize, nid: i32) -> u64 {
    ((zone as u64 & ZONES_MASK) << ZONES_PGSHIFT) | ((nid as u64 & NODES_MASK) << NODES_PGSHIFT)
}

/// Linux: __init_single_page() over `nr` consecutive struct pages, each left exactly as
/// [`init_single_page`] leaves it but with `flags` as its whole flag word (the node and zone
/// links of [`page_links`], plus any PG_* bits, e.g. PG_reserved for a hole) and `refcount`
/// references (1 as Linux; 0 for a page going straight to the buddy, which is what
/// __free_pages_core() would make of it). Each page is
/// written once, whole (eight words, stored in pairs), with nothing read: the memmap's
/// inner loop. Linux writes the zeroes first (mm_zero_struct_page) and the fields after.
///
/// # Safety
/// `first..first + nr` must be writable struct pages nobody else accesses meanwhile.
/// Kept out of line: inlined into the memmap walk, the loop ran out of registers.
#[inline(never)]
pub unsafe fn init_page_range(first: *mut Page, nr: usize, flags: u64, refcount: i32) {
    // The page as eight words (the layout of `Page`, asserted below): flags, lru.next,
    // lru.prev, mapping, index, private, _mapcount | _refcount << 32, memcg_data.
    let counts = (-1i32 as u32 as u64) | (refcount as u32 as u64) << 32;
    let mut p = first.cast::<[u64; 8]>();
    // SAFETY: the caller guarantees the range; `end` is its one-past-the-end.
    let end = unsafe { p.add(nr) };
    while p != end {
        let lru = p as u64 + core::mem::offset_of!(Page, lru) as u64;
        // SAFETY: `p` is a struct page of the caller's range; every field is an integer (or
        // an atomic, or a pointer, of that size) at the offset written; nothing is read.
        unsafe {
            p.write([flags, lru, lru, 0, 0, 0, counts, 0]);
            p = p.add(1);
        }
    }
}

// init_page_range()'s word layout.
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(Page, flags) == 0 && offset_of!(Page, lru) == 8);
    assert!(offset_of!(Page, mapping) == 24 && offset_of!(Page, index) == 32);
    assert!(offset_of!(Page, private) == 40 && offset_of!(Page, _mapcount) == 48);
    assert!(offset_of!(Page, _refcount) == 52 && offset_of!(Page, memcg_data) == 56);
    assert!(cfg!(target_endian = "little"));
};

/// Linux: usemap_size() — bytes of pageblock bitmap for a zone, whole `unsigned long`s.
pub const fn usemap_size(zone_start_pfn: Pfn, zonesize: u64) -> u64 {
    let zonesize = zonesize + (zone_start_pfn.0 & (PAGEBLOCK_NR_PAGES - 1));
    let blocks = zonesize.div_ceil(PAGEBLOCK_NR_PAGES);
    let bits = (blocks * NR_PAGEBLOCK_BITS).div_ceil(64) * 64;
    bits / 8
}

/// Linux: pfn_to_bitidx() (the `!SPARSEMEM` form: from the zone's first pageblock).
const fn pfn_to_bitidx(zone_start_pfn: Pfn, pfn: Pfn) -> u64 {
    let pfn = pfn.0 - (zone_start_pfn.0 & !(PAGEBLOCK_NR_PAGES - 1));
    (pfn >> PAGEBLOCK_ORDER) * NR_PAGEBLOCK_BITS
}

/// Linux: get_pfnblock_flags_mask() — the bits of `pfn`'s pageblock under `mask`.
/// `bitmap` is the zone's pageblock bitmap, `zone_start_pfn` the zone's first pfn.
pub fn get_pfnblock_flags_mask(
    bitmap: &[AtomicU64],
    zone_start_pfn: Pfn,
    pfn: Pfn,
    mask: u64,
) -> u64 {
    let bitidx = pfn_to_bitidx(zone_start_pfn, pfn);
    let word = bitmap[(bitidx / 64) as usize].load(Ordering::Relaxed);
    (word >> (bitidx % 64)) & mask
}

/// Linux: set_pfnblock_flags_mask() — the compare-and-swap loop becomes fetch_update.
pub fn set_pfnblock_flags_mask(
    bitmap: &[AtomicU64],
    zone_start_pfn: Pfn,
    pfn: Pfn,
    flags: u64,
    mask: u64,
) {
    let bitidx = pfn_to_bitidx(zone_start_pfn, pfn);
    let shift = bitidx % 64;
    let (mask, flags) = (mask << shift, flags << shift);
    let _ =
        bitmap[(bitidx / 64) as usize].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
            Some((w & !mask) | flags)
        });
}

mod page_ref;

#[cfg(test)]
mod tests;
