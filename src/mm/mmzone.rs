//! Zones and nodes: `struct zone`, `pg_data_t` (`struct pglist_data`), zonelists and the
//! `NODE_DATA()` registry. Mirrors Linux 6.1's include/linux/mmzone.h.
//!
//! Each NUMA node has one `PglistData`, allocated by `setup_node_data()` (numa.rs) from
//! memblock memory on that node and never freed. It holds the node's zones (DMA, DMA32,
//! Normal, Movable — every node has all four, most of them empty) and its two zonelists.
//!
//! Ownership follows the boot phases ("locks that match the phase"):
//! - **Early boot** (numa_init -> free_area_init -> build_all_zonelists, one CPU): a
//!   [`NodeDataMap`] is an ordinary owned value; writing a node needs `&mut NodeDataMap`, so
//!   the borrow checker is the lock. The kernel keeps its map in [`NODE_DATA_EARLY`].
//! - **After** [`node_data_publish`]: the map is moved into a once-cell and only shared
//!   references exist ([`node_data`]). What changes from then on is atomic
//!   (`managed_pages`, the watermarks, `lowmem_reserve`, the free-page counter, the pageblock
//!   bitmap) or is behind a lock: `zone.lock` (Linux's `zone->lock`) over `free_area` and the
//!   page structs on its lists, and each per-CPU pageset's own lock over its lists
//!   (Linux 6.1's `pcp->lock`). Lock order, as Linux's: a pcp lock, then the zone lock.
//!   Neither is IRQ-safe yet: nothing allocates pages from interrupt context here.
//!
//! Zonelist entries name a zone by (node, zone index) rather than by pointer, so a zonelist
//! is plain data and following it goes through the map.

use core::cell::UnsafeCell;
use core::ptr::NonNull;
use core::sync::atomic::{
    AtomicBool, AtomicI32, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering,
};

use super::addr::Pfn;
use super::page::ListHead;
use crate::include::mmzone::{
    page_group_by_mobility_disabled, MAX_NR_ZONES, MIGRATE_TYPES, MIGRATE_UNMOVABLE, ZONE_NAMES,
};
use crate::include::numa::MAX_NUMNODES;
use crate::include::pageblock_flags::MIGRATETYPE_MASK;

// Temporary re-exports: these constants moved to `crate::include::mmzone`; modules that still
// import them from here keep compiling until they import the leaf directly.
use crate::include::mmzone::{MAX_ORDER, PAGE_ALLOC_COSTLY_ORDER};

/// Linux: enum zone_watermarks.
pub const WMARK_MIN: usize = 0;
/// Linux: WMARK_LOW.
pub const WMARK_LOW: usize = 1;
/// Linux: WMARK_HIGH.
pub const WMARK_HIGH: usize = 2;
/// Linux: WMARK_PROMO.
pub const WMARK_PROMO: usize = 3;
/// Linux: NR_WMARK.
pub const NR_WMARK: usize = 4;

/// Linux: struct free_area — one buddy order's free lists, one per migratetype.
/// Plain data; the buddy allocator owns it under the zone's lock (see [`FreeAreas`]).
#[repr(C)]
#[derive(Debug)]
pub struct FreeArea {
    pub free_list: [ListHead; MIGRATE_TYPES],
    pub nr_free: u64,
}

/// Linux: spinlock_t (without the IRQ-disabling variants, which nothing needs yet). All-zero
/// bytes are the unlocked state, so a zeroed `pg_data_t` holds unlocked zones.
#[repr(C)]
#[derive(Debug, Default)]
pub struct RawSpinlock {
    locked: AtomicBool,
}

impl RawSpinlock {
    pub const fn new() -> Self {
        Self {
            locked: AtomicBool::new(false),
        }
    }

    /// Linux: spin_lock().
    pub fn lock(&self) -> RawSpinGuard<'_> {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            while self.locked.load(Ordering::Relaxed) {
                crate::include::processor::cpu_relax();
            }
        }
        RawSpinGuard { lock: self }
    }

    /// Linux: spin_trylock().
    pub fn try_lock(&self) -> Option<RawSpinGuard<'_>> {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| RawSpinGuard { lock: self })
    }

    /// Linux: spin_is_locked().
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }
}

/// A held [`RawSpinlock`]; dropping it unlocks.
pub struct RawSpinGuard<'a> {
    lock: &'a RawSpinlock,
}

impl Drop for RawSpinGuard<'_> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

/// Linux: zone->free_area[MAX_ORDER], with the interior mutability the published (shared)
/// zone needs. Lock: `zone.lock`. Boot code that owns the zone (`&mut Zone`) reaches the
/// areas directly ([`FreeAreas::iter_mut`]); everyone else goes through [`FreeAreas::get`]
/// with the zone lock held.
#[repr(transparent)]
#[derive(Debug)]
pub struct FreeAreas(UnsafeCell<[FreeArea; MAX_ORDER]>);

impl FreeAreas {
    /// The areas, lowest order first, for the zone's owner (free_area_init's
    /// zone_init_free_lists()).
    pub fn iter_mut(&mut self) -> core::slice::IterMut<'_, FreeArea> {
        self.0.get_mut().iter_mut()
    }

    /// The areas for the zone's owner.
    pub fn get_mut(&mut self) -> &mut [FreeArea; MAX_ORDER] {
        self.0.get_mut()
    }

    /// A pointer to the areas. Reading or writing through it needs the zone's lock held
    /// (or the zone owned exclusively); free lists link `struct page`s, which are reached
    /// through the same pointers.
    pub fn get(&self) -> *mut FreeArea {
        self.0.get().cast()
    }
}

/// Linux: NR_PCP_THP — one more per-CPU list for pageblock_order (THP-sized) pages.
pub const NR_PCP_THP: usize = 1;
/// Linux: NR_LOWORDER_PCP_LISTS — a list per pcp migratetype per order 0..=COSTLY.
pub const NR_LOWORDER_PCP_LISTS: usize =
    crate::include::mmzone::MIGRATE_PCPTYPES as usize * (PAGE_ALLOC_COSTLY_ORDER as usize + 1);
/// Linux: NR_PCP_LISTS (6.1 with CONFIG_TRANSPARENT_HUGEPAGE: 13).
pub const NR_PCP_LISTS: usize = NR_LOWORDER_PCP_LISTS + NR_PCP_THP;

/// The lists and counters of one CPU's cache of one zone's pages (Linux: the fields of
/// struct per_cpu_pages behind its lock).
#[repr(C)]
#[derive(Debug)]
pub struct PcpLists {
    /// Linux: count — pages on the lists (an order-n entry counts 2^n).
    pub count: i32,
    /// Linux: high — above this, frees go back to the buddy in batches.
    pub high: i32,
    /// Linux: batch — pages moved to or from the buddy at a time.
    pub batch: i32,
    /// Linux: free_factor — doubles the free batch while a CPU only frees.
    pub free_factor: i16,
    /// Linux: lists[NR_PCP_LISTS], indexed by order_to_pindex(); linked through page->lru.
    pub lists: [ListHead; NR_PCP_LISTS],
}

/// Linux: struct per_cpu_pages — one CPU's cache of a zone's free pages.
/// Lock: `lock` (Linux 6.1's pcp->lock) over `inner` and the pages on its lists; taken by
/// its CPU, and by a drain from another CPU. Taken before the zone's lock, never after.
#[repr(C)]
#[derive(Debug)]
pub struct PerCpuPages {
    pub lock: RawSpinlock,
    pub inner: UnsafeCell<PcpLists>,
}

/// Linux: enum zone_stat_item, the items this kernel keeps.
/// Linux: NR_FREE_PAGES — pages on the buddy free lists (not those in per-CPU lists).
pub const NR_FREE_PAGES: usize = 0;
/// Linux: NR_FREE_CMA_PAGES — free pages in MIGRATE_CMA pageblocks (part of NR_FREE_PAGES).
pub const NR_FREE_CMA_PAGES: usize = 1;
/// Linux: NR_VM_ZONE_STAT_ITEMS.
pub const NR_VM_ZONE_STAT_ITEMS: usize = 2;

/// Linux: struct zone (the fields this kernel uses).
///
/// Every field is an integer, an atomic, a raw pointer, an `UnsafeCell` or an array of them
/// (the lock is an atomic bool, unlocked at zero), so all-zero
/// bytes are a valid (empty) zone — as Linux relies on by memset()ing pg_data_t.
#[repr(C)]
#[derive(Debug)]
pub struct Zone {
    /// Linux: zone->_watermark[] (0 until setup_per_zone_wmarks()).
    pub _watermark: [AtomicU64; NR_WMARK],
    /// Linux: zone->watermark_boost.
    pub watermark_boost: AtomicU64,
    /// Linux: zone->nr_reserved_highatomic — pages in MIGRATE_HIGHATOMIC pageblocks.
    /// Written under `lock`, read without it (as Linux does).
    pub nr_reserved_highatomic: AtomicU64,
    /// Linux: zone->lowmem_reserve[] — pages this zone keeps back from allocations that could
    /// have used a higher zone (setup_per_zone_lowmem_reserve()).
    pub lowmem_reserve: [AtomicI64; MAX_NR_ZONES],
    /// Linux: zone->per_cpu_pageset — `pcp_nr_cpus` PerCpuPages, one per possible CPU, or
    /// null before setup_per_cpu_pageset() (Linux's boot_pageset, whose high of 0 sends every
    /// page straight to the buddy: the allocator does exactly that while this is null).
    pub per_cpu_pageset: AtomicPtr<PerCpuPages>,
    pub pcp_nr_cpus: AtomicU32,
    /// Linux: zone->pageset_high.
    pub pageset_high: AtomicI32,
    /// Linux: zone->pageset_batch.
    pub pageset_batch: AtomicI32,
    /// Linux: zone->vm_stat[] (the items above; NR_FREE_PAGES changes under `lock`).
    pub vm_stat: [AtomicI64; NR_VM_ZONE_STAT_ITEMS],
    /// Linux: zone->lock — protects `free_area` and the pages on its lists.
    pub lock: RawSpinlock,
    /// Linux: zone->node.
    pub node: i32,
    /// Which zone of its node this is (Linux computes zone_idx() from the address).
    pub zone_idx: u32,
    /// Linux: zone->zone_pgdat, as a node id (look it up with [`NodeDataMap::get`]).
    pub zone_pgdat: i32,
    /// Linux: zone->pageblock_flags — `pageblock_words` u64s from memblock, or null.
    pub pageblock_flags: *const AtomicU64,
    pub pageblock_words: u64,
    /// Linux: zone->zone_start_pfn.
    pub zone_start_pfn: Pfn,
    /// Linux: zone->spanned_pages — the zone's pfn range, holes included.
    pub spanned_pages: u64,
    /// Linux: zone->present_pages — spanned minus holes.
    pub present_pages: u64,
    /// Linux: zone->present_early_pages.
    pub present_early_pages: u64,
    /// Linux: zone->managed_pages — present minus reserved; until memblock hands its memory
    /// to the buddy, free_area_init_core()'s estimate (present minus the memmap).
    pub managed_pages: AtomicU64,
    /// Linux: zone->cma_pages — pages of CMA areas in this zone (init_cma_reserved_pageblock()).
    pub cma_pages: AtomicU64,
    /// Linux: zone->nr_isolate_pageblock — pageblocks set MIGRATE_ISOLATE (alloc_contig_range()
    /// isolates them); while non-zero, freeing looks up each block's type again. Lock: `lock`.
    pub nr_isolate_pageblock: AtomicU64,
    /// Linux: zone->initialized.
    pub initialized: u32,
    /// Linux: zone->free_area[MAX_ORDER] — the buddy allocator's free lists. Lock: `lock`.
    pub free_area: FreeAreas,
}

// SAFETY: the raw pointers are the free-list links (only followed by the buddy under the
// zone's lock, or through `&mut Zone` during boot), the per-CPU pagesets (each behind its own
// lock) and the pageblock bitmap, whose words are atomics in memory that is never freed.
// Everything else is plain or atomic data.
unsafe impl Send for Zone {}
// SAFETY: as above: shared access reads plain data written before publication, atomics, or
// `free_area`/pcp lists under their locks.
unsafe impl Sync for Zone {}

impl Zone {
    /// Linux: zone->name.
    pub fn name(&self) -> &'static str {
        ZONE_NAMES[self.zone_idx as usize]
    }

    /// Linux: zone_idx().
    pub fn zone_idx(&self) -> usize {
        self.zone_idx as usize
    }

    /// Linux: zone_end_pfn().
    #[inline]
    pub fn zone_end_pfn(&self) -> Pfn {
        self.zone_start_pfn + self.spanned_pages
    }

    /// Linux: zone_spans_pfn().
    #[inline]
    pub fn zone_spans_pfn(&self, pfn: Pfn) -> bool {
        self.zone_start_pfn <= pfn && pfn < self.zone_end_pfn()
    }

    /// Linux: populated_zone().
    pub fn populated_zone(&self) -> bool {
        self.present_pages != 0
    }

    /// Linux: zone_is_empty().
    pub fn zone_is_empty(&self) -> bool {
        self.spanned_pages == 0
    }

    /// Linux: zone_managed_pages().
    pub fn zone_managed_pages(&self) -> u64 {
        self.managed_pages.load(Ordering::Relaxed)
    }

    /// Linux: high_wmark_pages().
    pub fn high_wmark_pages(&self) -> u64 {
        self.wmark_pages(WMARK_HIGH)
    }

    /// Linux: low_wmark_pages().
    pub fn low_wmark_pages(&self) -> u64 {
        self.wmark_pages(WMARK_LOW)
    }

    /// Linux: min_wmark_pages().
    pub fn min_wmark_pages(&self) -> u64 {
        self.wmark_pages(WMARK_MIN)
    }

    /// Linux: wmark_pages(zone, i) — the watermark plus any boost.
    pub fn wmark_pages(&self, i: usize) -> u64 {
        self._watermark[i].load(Ordering::Relaxed) + self.watermark_boost.load(Ordering::Relaxed)
    }

    /// Linux: zone_page_state() (clamped at 0, as Linux's is).
    pub fn zone_page_state(&self, item: usize) -> u64 {
        self.vm_stat[item].load(Ordering::Relaxed).max(0) as u64
    }

    /// Linux: zone->lowmem_reserve[idx].
    pub fn lowmem_reserve(&self, idx: usize) -> i64 {
        self.lowmem_reserve[idx].load(Ordering::Relaxed)
    }

    /// Linux: zone_is_initialized().
    pub fn zone_is_initialized(&self) -> bool {
        self.initialized != 0
    }

    /// The zone's pageblock bitmap (Linux: zone->pageblock_flags), empty before setup_usemap().
    pub fn pageblock_bitmap(&self) -> &[AtomicU64] {
        if self.pageblock_flags.is_null() {
            return &[];
        }
        // SAFETY: setup_usemap() points `pageblock_flags` at `pageblock_words` zeroed u64s of
        // memblock memory that is never freed; AtomicU64 has u64's layout.
        unsafe { core::slice::from_raw_parts(self.pageblock_flags, self.pageblock_words as usize) }
    }

    /// Linux: set_pageblock_migratetype() — mark `pfn`'s pageblock (the pfn must be in this
    /// zone). While mobility grouping is off every pcp type collapses to MIGRATE_UNMOVABLE.
    pub fn set_pageblock_migratetype(&self, pfn: Pfn, migratetype: u32) {
        let mt = if page_group_by_mobility_disabled()
            && migratetype < crate::include::mmzone::MIGRATE_PCPTYPES
        {
            MIGRATE_UNMOVABLE
        } else {
            migratetype
        };
        super::page::set_pfnblock_flags_mask(
            self.pageblock_bitmap(),
            self.zone_start_pfn,
            pfn,
            mt as u64,
            MIGRATETYPE_MASK,
        );
    }

    /// Linux: get_pageblock_migratetype().
    pub fn get_pageblock_migratetype(&self, pfn: Pfn) -> u32 {
        super::page::get_pfnblock_flags_mask(
            self.pageblock_bitmap(),
            self.zone_start_pfn,
            pfn,
            MIGRATETYPE_MASK,
        ) as u32
    }
}

/// Linux: MAX_ZONES_PER_ZONELIST.
pub const MAX_ZONES_PER_ZONELIST: usize = MAX_NUMNODES as usize * MAX_NR_ZONES;
/// Linux: ZONELIST_FALLBACK — all nodes, nearest first.
pub const ZONELIST_FALLBACK: usize = 0;
/// Linux: ZONELIST_NOFALLBACK — this node only (__GFP_THISNODE).
pub const ZONELIST_NOFALLBACK: usize = 1;
/// Linux: MAX_ZONELISTS.
pub const MAX_ZONELISTS: usize = 2;

/// Linux: struct zoneref — a zone named by node and index (Linux stores the pointer too).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Zoneref {
    pub nid: u16,
    pub zone_idx: u16,
}

/// Linux: struct zonelist — `nr` entries, in allocation preference order (Linux ends the
/// array with a NULL zone instead of counting).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Zonelist {
    pub _zonerefs: [Zoneref; MAX_ZONES_PER_ZONELIST],
    pub nr: u32,
}

impl Zonelist {
    pub const EMPTY: Self = Self {
        _zonerefs: [Zoneref {
            nid: 0,
            zone_idx: 0,
        }; MAX_ZONES_PER_ZONELIST],
        nr: 0,
    };

    /// The entries in order.
    pub fn zonerefs(&self) -> &[Zoneref] {
        &self._zonerefs[..self.nr as usize]
    }

    /// Appends one entry.
    pub fn push(&mut self, z: Zoneref) {
        self._zonerefs[self.nr as usize] = z;
        self.nr += 1;
    }
}

/// Linux: pg_data_t / struct pglist_data (the fields this kernel uses).
///
/// All-zero bytes are a valid value (see [`Zone`]): setup_node_data() zeroes the memblock
/// memory and fills in the node id, as Linux's memset() does.
#[repr(C)]
#[derive(Debug)]
pub struct PglistData {
    /// Linux: node_zones[MAX_NR_ZONES].
    pub node_zones: [Zone; MAX_NR_ZONES],
    /// Linux: node_zonelists[MAX_ZONELISTS].
    pub node_zonelists: [Zonelist; MAX_ZONELISTS],
    /// Linux: nr_zones — index of the highest zone with pages, plus one.
    pub nr_zones: u32,
    /// Linux: node_id.
    pub node_id: i32,
    /// Linux: node_start_pfn.
    pub node_start_pfn: Pfn,
    /// Linux: node_present_pages.
    pub node_present_pages: u64,
    /// Linux: node_spanned_pages.
    pub node_spanned_pages: u64,
    /// Linux: pgdat->totalreserve_pages (calculate_totalreserve_pages()).
    pub totalreserve_pages: AtomicU64,
    /// Linux: first_deferred_pfn (CONFIG_DEFERRED_STRUCT_PAGE_INIT) — where the node's
    /// struct pages not yet initialised start; u64::MAX when none are left.
    pub first_deferred_pfn: AtomicU64,
    /// Linux: node_size_lock (pgdat_resize_lock()) — serialises growing the initialised
    /// part of the node (deferred_grow_zone()) against page_alloc_init_late() claiming it.
    pub node_size_lock: RawSpinlock,
}

impl PglistData {
    /// Linux: pgdat_end_pfn().
    #[inline]
    pub fn pgdat_end_pfn(&self) -> Pfn {
        self.node_start_pfn + self.node_spanned_pages
    }

    /// Linux: node_zonelist(nid, flags) for a GFP without __GFP_THISNODE / with it.
    pub fn zonelist(&self, which: usize) -> &Zonelist {
        &self.node_zonelists[which]
    }

    /// Initialises a zeroed pg_data_t in place.
    ///
    /// # Safety
    /// `p` must be valid for writes of `size_of::<PglistData>()` bytes and aligned.
    pub unsafe fn init_zeroed(p: *mut PglistData, nid: i32) {
        // SAFETY: the caller guarantees the memory; zero bytes are a valid PglistData (every
        // field is an integer, atomic, raw pointer, UnsafeCell or array of them).
        unsafe {
            core::ptr::write_bytes(p.cast::<u8>(), 0, core::mem::size_of::<PglistData>());
            (*p).node_id = nid;
        }
    }
}

/// Linux: the `node_data[]` array behind NODE_DATA(): one pg_data_t per node that has one.
/// Owning a `&mut NodeDataMap` is the right to change every node (early boot only).
pub struct NodeDataMap {
    node_data: [Option<NonNull<PglistData>>; MAX_NUMNODES as usize],
}

// SAFETY: the pointers are to pg_data_t in memblock memory that is never freed; the map
// hands out `&PglistData` only for `&self` and `&mut` only for `&mut self`, so Rust's rules
// on the map are the rules on the nodes. PglistData itself is Sync.
unsafe impl Send for NodeDataMap {}
// SAFETY: as above.
unsafe impl Sync for NodeDataMap {}

impl Default for NodeDataMap {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeDataMap {
    pub const fn new() -> Self {
        Self {
            node_data: [None; MAX_NUMNODES as usize],
        }
    }

    /// Linux: `node_data[nid] = nd` (setup_node_data()).
    ///
    /// # Safety
    /// `pgdat` must point to a valid, initialised PglistData that lives for the rest of the
    /// kernel's life and that nothing else references.
    pub unsafe fn set(&mut self, nid: i32, pgdat: NonNull<PglistData>) {
        self.node_data[nid as usize] = Some(pgdat);
    }

    /// Linux: NODE_DATA(nid).
    pub fn get(&self, nid: i32) -> Option<&PglistData> {
        let p = self.node_data.get(usize::try_from(nid).ok()?).copied()??;
        // SAFETY: `set`'s contract: valid, never freed, only reachable through this map,
        // which is borrowed shared for the reference's lifetime.
        Some(unsafe { p.as_ref() })
    }

    /// NODE_DATA(nid) for writing (early boot).
    pub fn get_mut(&mut self, nid: i32) -> Option<&mut PglistData> {
        let mut p = self.node_data.get(usize::try_from(nid).ok()?).copied()??;
        // SAFETY: as in `get`, and the map is borrowed exclusively.
        Some(unsafe { p.as_mut() })
    }

    /// The zone a zoneref names.
    pub fn zone(&self, z: Zoneref) -> &Zone {
        &self
            .get(z.nid as i32)
            .expect("zoneref to a node without pg_data_t")
            .node_zones[z.zone_idx as usize]
    }

    /// The nodes that have a pg_data_t, lowest first.
    pub fn nids(&self) -> impl Iterator<Item = i32> + '_ {
        (0..MAX_NUMNODES).filter(|&n| self.node_data[n as usize].is_some())
    }

    /// Linux: for_each_online_pgdat().
    pub fn pgdats(&self) -> impl Iterator<Item = &PglistData> + '_ {
        self.nids().filter_map(|n| self.get(n))
    }
}

/// The kernel's map while it is being built (numa_init, free_area_init,
/// build_all_zonelists). Lock: the boot CPU holds it for each stage; nothing else runs.
pub static NODE_DATA_EARLY: spin::Mutex<NodeDataMap> = spin::Mutex::new(NodeDataMap::new());

/// The published map: read-only from here on (atomics and zone locks aside).
static NODE_DATA: spin::Once<NodeDataMap> = spin::Once::new();

/// Ends the early phase: moves [`NODE_DATA_EARLY`] into the read-only registry. Call once,
/// after build_all_zonelists(); later calls return the first map.
pub fn node_data_publish() -> &'static NodeDataMap {
    NODE_DATA.call_once(|| core::mem::take(&mut *NODE_DATA_EARLY.lock()))
}

/// Linux: NODE_DATA(nid), once published.
pub fn node_data(nid: i32) -> Option<&'static PglistData> {
    NODE_DATA.get()?.get(nid)
}

/// The published map (Linux: for_each_online_pgdat() and friends).
pub fn node_data_map() -> Option<&'static NodeDataMap> {
    NODE_DATA.get()
}

#[cfg(test)]
mod tests;
