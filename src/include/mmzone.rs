//! Zone and migrate-type constants. Mirrors the constant part of Linux 6.1's
//! include/linux/mmzone.h (the structures are in `mm::mmzone`), plus the
//! `page_group_by_mobility_disabled` flag that header declares.

use core::sync::atomic::{AtomicBool, Ordering};

/// Linux: enum zone_type (arm64 6.1 without ZONE_DEVICE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum ZoneType {
    /// Linux: ZONE_DMA — memory every device can reach (below `zone_dma_bits`).
    Dma = 0,
    /// Linux: ZONE_DMA32 — below 4 GiB (empty when ZONE_DMA already covers it).
    Dma32 = 1,
    /// Linux: ZONE_NORMAL.
    Normal = 2,
    /// Linux: ZONE_MOVABLE — only movable allocations (sized by `kernelcore=`/`movablecore=`).
    Movable = 3,
}

/// Linux: ZONE_DMA.
pub const ZONE_DMA: usize = ZoneType::Dma as usize;
/// Linux: ZONE_DMA32.
pub const ZONE_DMA32: usize = ZoneType::Dma32 as usize;
/// Linux: ZONE_NORMAL.
pub const ZONE_NORMAL: usize = ZoneType::Normal as usize;
/// Linux: ZONE_MOVABLE.
pub const ZONE_MOVABLE: usize = ZoneType::Movable as usize;
/// Linux: MAX_NR_ZONES.
pub const MAX_NR_ZONES: usize = 4;

/// Linux: zone_names[].
pub const ZONE_NAMES: [&str; MAX_NR_ZONES] = ["DMA", "DMA32", "Normal", "Movable"];

impl ZoneType {
    /// All zone types, lowest first.
    pub const ALL: [ZoneType; MAX_NR_ZONES] = [Self::Dma, Self::Dma32, Self::Normal, Self::Movable];

    /// Linux: zone_names[idx].
    pub const fn name(self) -> &'static str {
        ZONE_NAMES[self as usize]
    }

    pub const fn from_index(i: usize) -> Option<Self> {
        match i {
            0 => Some(Self::Dma),
            1 => Some(Self::Dma32),
            2 => Some(Self::Normal),
            3 => Some(Self::Movable),
            _ => None,
        }
    }
}

/// Linux: MAX_ORDER (6.1: exclusive — orders 0..=10, blocks up to 4 MiB).
pub const MAX_ORDER: usize = 11;
/// Linux: MAX_ORDER_NR_PAGES.
pub const MAX_ORDER_NR_PAGES: u64 = 1 << (MAX_ORDER - 1);

/// Linux: PAGE_ALLOC_COSTLY_ORDER — above it, allocations are "costly" and not cached per CPU.
pub const PAGE_ALLOC_COSTLY_ORDER: u32 = 3;

// Migrate types (include/linux/mmzone.h; CONFIG_CMA and CONFIG_MEMORY_ISOLATION on, as in
// Debian's 6.1 arm64 kernel, which is what makes MIGRATE_TYPES 6).

/// Linux: MIGRATE_UNMOVABLE.
pub const MIGRATE_UNMOVABLE: u32 = 0;
/// Linux: MIGRATE_MOVABLE.
pub const MIGRATE_MOVABLE: u32 = 1;
/// Linux: MIGRATE_RECLAIMABLE.
pub const MIGRATE_RECLAIMABLE: u32 = 2;
/// Linux: MIGRATE_PCPTYPES — the types that have per-cpu lists.
pub const MIGRATE_PCPTYPES: u32 = 3;
/// Linux: MIGRATE_HIGHATOMIC.
pub const MIGRATE_HIGHATOMIC: u32 = MIGRATE_PCPTYPES;
/// Linux: MIGRATE_CMA.
pub const MIGRATE_CMA: u32 = 4;
/// Linux: MIGRATE_ISOLATE.
pub const MIGRATE_ISOLATE: u32 = 5;
/// Linux: MIGRATE_TYPES.
pub const MIGRATE_TYPES: usize = 6;

/// Linux: migratetype_names[].
pub const MIGRATETYPE_NAMES: [&str; MIGRATE_TYPES] = [
    "Unmovable",
    "Movable",
    "Reclaimable",
    "HighAtomic",
    "CMA",
    "Isolate",
];

// Linux: page_group_by_mobility_disabled. Host tests run in parallel threads, each with its
// own machine, so there it is per thread.
#[cfg(not(test))]
static PAGE_GROUP_BY_MOBILITY_DISABLED: AtomicBool = AtomicBool::new(false);
#[cfg(test)]
std::thread_local! {
    static PAGE_GROUP_BY_MOBILITY_DISABLED: AtomicBool = const { AtomicBool::new(false) };
}

/// Linux: page_group_by_mobility_disabled.
pub fn page_group_by_mobility_disabled() -> bool {
    #[cfg(not(test))]
    return PAGE_GROUP_BY_MOBILITY_DISABLED.load(Ordering::Relaxed);
    #[cfg(test)]
    return PAGE_GROUP_BY_MOBILITY_DISABLED.with(|d| d.load(Ordering::Relaxed));
}

/// Sets [`page_group_by_mobility_disabled`] (build_all_zonelists(), when memory is too small
/// to group pages by mobility).
pub fn set_page_group_by_mobility_disabled(v: bool) {
    #[cfg(not(test))]
    PAGE_GROUP_BY_MOBILITY_DISABLED.store(v, Ordering::Relaxed);
    #[cfg(test)]
    PAGE_GROUP_BY_MOBILITY_DISABLED.with(|d| d.store(v, Ordering::Relaxed));
}
