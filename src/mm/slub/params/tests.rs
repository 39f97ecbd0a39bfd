//! Host unit tests of `src/mm/slub/params.rs` (`cargo hosttest`), on the shared scaffold
//! `mm::testing` (simulated RAM and a machine builder).

use super::*;
use crate::kernel::printk::take_captured;
use crate::mm::slab::{
    SLAB_CONSISTENCY_CHECKS, SLAB_NO_USER_FLAGS, SLAB_POISON, SLAB_RED_ZONE, SLAB_STORE_USER,
};
use crate::mm::slub::{DEBUG_DEFAULT_FLAGS, DEBUG_METADATA_FLAGS};
use crate::mm::testing::SlubMachine;

/// slub_debug= parsing and per-cache matching (Linux's setup_slub_debug()).
#[test]
fn slub_debug_option() {
    let p = SlubParams::new(1, 1, 0).with_slub_debug(Some("FZ,kmalloc-64,kmalloc-1*"));
    assert_eq!(p.slub_debug, 0, "a slab list leaves the global flags alone");
    assert_eq!(
        kmem_cache_flags(&p, 0, "kmalloc-64"),
        SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE
    );
    assert_eq!(
        kmem_cache_flags(&p, 0, "kmalloc-128"),
        SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE
    );
    assert_eq!(kmem_cache_flags(&p, 0, "kmalloc-32"), 0);
    let p = SlubParams::new(1, 1, 0).with_slub_debug(Some("P;U,dentry"));
    assert_eq!(p.slub_debug, SLAB_POISON);
    assert_eq!(kmem_cache_flags(&p, 0, "dentry"), SLAB_STORE_USER);
    assert_eq!(kmem_cache_flags(&p, 0, "inode"), SLAB_POISON);
    assert_eq!(
        kmem_cache_flags(&p, SLAB_NO_USER_FLAGS, "inode"),
        SLAB_NO_USER_FLAGS
    );
    let p = SlubParams::new(1, 1, 0).with_slub_debug(Some("-"));
    assert_eq!(p.slub_debug, 0);
    let p = SlubParams::new(1, 1, 0).with_slub_debug(Some(",kmalloc-8"));
    assert_eq!(kmem_cache_flags(&p, 0, "kmalloc-8"), DEBUG_DEFAULT_FLAGS);
    let p = SlubParams::new(1, 1, 0).with_slub_debug(Some("FZPUO"));
    assert!(p.disable_higher_order_debug);
    take_captured();
    let _ = SlubParams::new(1, 1, 0).with_slub_debug(Some("Q"));
    assert!(take_captured().contains("slub_debug option 'Q' unknown. skipped"));
    // `O`: a cache whose debug metadata would raise its minimum order gets none.
    let mut p = SlubParams::new(1, 1, 0).with_slub_debug(Some("FZPUO"));
    p.kmalloc_min_size = 8;
    let m = SlubMachine::with_params(32, p);
    assert_eq!(
        m.slub.find_cache("kmalloc-4k").unwrap().flags & DEBUG_METADATA_FLAGS,
        0
    );
    assert_ne!(
        m.slub.find_cache("kmalloc-64").unwrap().flags & DEBUG_METADATA_FLAGS,
        0
    );
}
