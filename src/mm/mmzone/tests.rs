//! Host unit tests of `src/mm/mmzone.rs` (`cargo hosttest`).

use super::*;
use crate::include::mmzone::{ZoneType, MAX_ORDER_NR_PAGES};

#[test]
fn zone_names_and_indices_are_linuxs() {
    assert_eq!(ZONE_NAMES, ["DMA", "DMA32", "Normal", "Movable"]);
    assert_eq!(ZoneType::Movable.name(), "Movable");
    assert_eq!(ZoneType::from_index(2), Some(ZoneType::Normal));
    assert_eq!(MAX_ORDER_NR_PAGES, 1024);
}

#[test]
fn zeroed_pgdat_is_empty_and_registry_hands_it_out() {
    let layout = std::alloc::Layout::new::<PglistData>();
    // SAFETY: non-zero size.
    let p = unsafe { std::alloc::alloc(layout) }.cast::<PglistData>();
    // SAFETY: fresh allocation of the right layout.
    unsafe { PglistData::init_zeroed(p, 3) };
    let mut map = NodeDataMap::new();
    // SAFETY: valid, initialised, leaked (never freed), referenced only by the map.
    unsafe { map.set(3, NonNull::new(p).unwrap()) };
    assert!(map.get(0).is_none());
    let pg = map.get_mut(3).unwrap();
    assert_eq!(pg.node_id, 3);
    assert!(pg.node_zones.iter().all(|z| !z.populated_zone()
        && z.zone_managed_pages() == 0
        && z.pageblock_bitmap().is_empty()));
    assert_eq!(pg.node_zonelists[ZONELIST_FALLBACK].zonerefs(), &[]);
    pg.node_zones[2].zone_idx = 2;
    pg.node_zonelists[0].push(Zoneref {
        nid: 3,
        zone_idx: 2,
    });
    assert_eq!(
        map.zone(Zoneref {
            nid: 3,
            zone_idx: 2
        })
        .name(),
        "Normal"
    );
    assert_eq!(map.nids().collect::<Vec<_>>(), vec![3]);
}
