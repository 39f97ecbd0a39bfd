//! Host unit tests of `src/mm/page.rs` (`cargo hosttest`).

use super::*;
use crate::include::mmzone::{MIGRATE_CMA, MIGRATE_MOVABLE};
use crate::include::pageblock_flags::{pageblock_aligned, MIGRATETYPE_MASK, PB_MIGRATE_SKIP};

#[test]
fn struct_page_is_64_bytes_with_linux_offsets() {
    assert_eq!(core::mem::size_of::<Page>(), 64);
    assert_eq!(core::mem::offset_of!(Page, flags), 0);
    assert_eq!(core::mem::offset_of!(Page, lru), 8);
    assert_eq!(core::mem::offset_of!(Page, mapping), 24);
    assert_eq!(core::mem::offset_of!(Page, index), 32);
    assert_eq!(core::mem::offset_of!(Page, private), 40);
    assert_eq!(core::mem::offset_of!(Page, _mapcount), 48);
    assert_eq!(core::mem::offset_of!(Page, _refcount), 52);
    assert_eq!(core::mem::offset_of!(Page, memcg_data), 56);
}

#[test]
fn node_and_zone_sit_at_the_top_of_flags() {
    assert_eq!((NODES_PGSHIFT, ZONES_PGSHIFT), (60, 58));
    let mut p = Page::zeroed();
    init_single_page(&mut p, 3, 15);
    assert_eq!(p.page_zonenum(), 3);
    assert_eq!(p.page_to_nid(), 15);
    assert_eq!(p.flags.load(Ordering::Relaxed), (15 << 60) | (3 << 58));
    assert_eq!(p.page_zone_id(), (15 << 2) | 3);
    p.set_page_links(1, 2);
    assert_eq!((p.page_zonenum(), p.page_to_nid()), (1, 2));
    assert_eq!(p.page_count(), 1);
    assert_eq!(p._mapcount.load(Ordering::Relaxed), -1);
    assert!(p.lru.list_empty());
}

#[test]
fn reserved_and_buddy_bits() {
    let mut p = Page::zeroed();
    init_single_page(&mut p, 0, 1);
    assert!(!p.page_reserved());
    p.__set_page_reserved();
    assert!(p.page_reserved());
    assert_eq!(p.page_to_nid(), 1, "flag bits leave the node alone");
    p.clear_page_reserved();
    assert!(!p.page_reserved());
    p.set_page_reserved();
    assert_eq!(p.flags.load(Ordering::Relaxed) & 0xffffff, 1 << PG_RESERVED);
    assert!(!p.page_buddy());
    p.__set_page_buddy();
    assert!(p.page_buddy());
    p.__clear_page_buddy();
    assert!(!p.page_buddy());
    assert_eq!(p._mapcount.load(Ordering::Relaxed), -1);
}

#[test]
fn pageblock_bitmap_matches_linux_arithmetic() {
    // A zone starting mid-pageblock: the bitmap is indexed from the block's start.
    let start = Pfn(0x40100);
    let size = 3 * PAGEBLOCK_NR_PAGES;
    // 3 pages' worth + 256 pages of offset = 4 blocks = 16 bits -> one long.
    assert_eq!(usemap_size(start, size), 8);
    assert_eq!(usemap_size(Pfn(0x40000), 0x100000), 2048 * 4 / 8);
    let map: Vec<AtomicU64> = (0..1).map(|_| AtomicU64::new(0)).collect();
    set_pfnblock_flags_mask(
        &map,
        start,
        Pfn(0x40300),
        MIGRATE_MOVABLE as u64,
        MIGRATETYPE_MASK,
    );
    set_pfnblock_flags_mask(
        &map,
        start,
        Pfn(0x40600),
        MIGRATE_CMA as u64,
        MIGRATETYPE_MASK,
    );
    // pfn 0x40300 is in block 1, 0x40600 in block 3.
    assert_eq!(map[0].load(Ordering::Relaxed), (1 << 4) | (4 << 12));
    assert_eq!(
        get_pfnblock_flags_mask(&map, start, Pfn(0x403ff), MIGRATETYPE_MASK),
        1
    );
    assert_eq!(
        get_pfnblock_flags_mask(&map, start, Pfn(0x40100), MIGRATETYPE_MASK),
        0
    );
    // The skip bit is next to the migratetype and independent of it.
    set_pfnblock_flags_mask(
        &map,
        start,
        Pfn(0x40300),
        1 << PB_MIGRATE_SKIP,
        1 << PB_MIGRATE_SKIP,
    );
    assert_eq!(
        get_pfnblock_flags_mask(&map, start, Pfn(0x40300), MIGRATETYPE_MASK),
        1
    );
    assert!(pageblock_aligned(0x40200) && !pageblock_aligned(0x40201));
}
