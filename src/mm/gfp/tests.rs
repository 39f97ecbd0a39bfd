//! Host unit tests of `src/mm/gfp.rs` (`cargo hosttest`).

use super::*;
use crate::include::mmzone::{MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE};

#[test]
fn gfp_values_names_and_zones_are_linuxs() {
    assert_eq!(GFP_KERNEL, 0xcc0);
    assert_eq!(GFP_ATOMIC, 0xa20);
    assert_eq!(GFP_HIGHUSER_MOVABLE, 0x100cca);
    assert_eq!(GFP_USER, 0x100cc0);
    assert_eq!(GfpNames(GFP_KERNEL).to_string(), "GFP_KERNEL");
    assert_eq!(GfpNames(GFP_ATOMIC).to_string(), "GFP_ATOMIC");
    assert_eq!(
        GfpNames(GFP_HIGHUSER_MOVABLE).to_string(),
        "GFP_HIGHUSER_MOVABLE"
    );
    assert_eq!(
        GfpNames(GFP_KERNEL | __GFP_ZERO | __GFP_NOWARN | __GFP_COMP).to_string(),
        "GFP_KERNEL|__GFP_NOWARN|__GFP_COMP|__GFP_ZERO"
    );
    assert_eq!(
        GfpNames(GFP_KERNEL | GFP_DMA).to_string(),
        "GFP_KERNEL|GFP_DMA"
    );
    assert_eq!(
        GfpNames(GFP_ATOMIC | __GFP_NOWARN).to_string(),
        "GFP_ATOMIC|__GFP_NOWARN"
    );
    assert_eq!(GfpNames(0).to_string(), "none");
    assert_eq!(GfpNames(0x1000_0000).to_string(), "0x10000000");
    assert_eq!(gfp_zone(GFP_KERNEL), ZONE_NORMAL);
    assert_eq!(gfp_zone(GFP_DMA), ZONE_DMA);
    assert_eq!(gfp_zone(GFP_DMA32), ZONE_DMA32);
    assert_eq!(gfp_zone(GFP_HIGHUSER_MOVABLE), ZONE_MOVABLE);
    assert_eq!(gfp_zone(GFP_KERNEL | __GFP_MOVABLE), ZONE_NORMAL);
    assert_eq!(gfp_zone(GFP_DMA | __GFP_MOVABLE), ZONE_DMA);
    assert_eq!(gfp_migratetype(GFP_KERNEL), MIGRATE_UNMOVABLE);
    assert_eq!(gfp_migratetype(GFP_HIGHUSER_MOVABLE), MIGRATE_MOVABLE);
    assert_eq!(
        gfp_migratetype(GFP_KERNEL | __GFP_RECLAIMABLE),
        MIGRATE_RECLAIMABLE
    );
}
