//! Pageblock constants. Mirrors Linux 6.1's include/linux/pageblock-flags.h (and
//! MIGRATETYPE_MASK from include/linux/mmzone.h).

use super::mmzone::MIGRATE_TYPES;

/// Linux: pageblock_order — arm64 with 4 KiB pages: HUGETLB_PAGE_ORDER (PMD_SHIFT - PAGE_SHIFT).
pub const PAGEBLOCK_ORDER: u32 = 9;
/// Linux: pageblock_nr_pages.
pub const PAGEBLOCK_NR_PAGES: u64 = 1 << PAGEBLOCK_ORDER;
/// Linux: PB_migratetype_bits.
pub const PB_MIGRATETYPE_BITS: u32 = 3;
/// Linux: PB_migrate.
pub const PB_MIGRATE: u32 = 0;
/// Linux: PB_migrate_end.
pub const PB_MIGRATE_END: u32 = PB_MIGRATE + PB_MIGRATETYPE_BITS - 1;
/// Linux: PB_migrate_skip (compaction's hint).
pub const PB_MIGRATE_SKIP: u32 = PB_MIGRATE_END + 1;
/// Linux: NR_PAGEBLOCK_BITS.
pub const NR_PAGEBLOCK_BITS: u64 = 4;
/// Linux: MIGRATETYPE_MASK.
pub const MIGRATETYPE_MASK: u64 = (1 << PB_MIGRATETYPE_BITS) - 1;

const _: () = assert!(NR_PAGEBLOCK_BITS == PB_MIGRATE_SKIP as u64 + 1);
const _: () = assert!(MIGRATE_TYPES as u64 <= 1 << PB_MIGRATETYPE_BITS);

/// Linux: pageblock_aligned().
pub const fn pageblock_aligned(pfn: u64) -> bool {
    pfn & (PAGEBLOCK_NR_PAGES - 1) == 0
}
