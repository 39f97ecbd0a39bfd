//! Host unit tests of `src/mm/slub/report.rs` (`cargo hosttest`), on the shared scaffold
//! `mm::testing` (simulated RAM and a machine builder).

use super::*;
use crate::kernel::printk::take_captured;
use crate::mm::gfp::GFP_KERNEL;
use crate::mm::slab::SLAB_NO_MERGE;
use crate::mm::testing::SlubMachine;
use core::sync::atomic::Ordering;

/// The `SLUB:` line for each machine of the Linux fixtures.
#[test]
fn slub_line_matches_linux_fixtures() {
    let fixtures = [
        include_str!("../../../../tests/fixtures/linux-6.1/a_128M_smp1.log"),
        include_str!("../../../../tests/fixtures/linux-6.1/c_4G_smp2.log"),
        include_str!("../../../../tests/fixtures/linux-6.1/f_4G_numa2.log"),
        include_str!("../../../../tests/fixtures/linux-6.1/m_2G_numa2.log"),
        include_str!("../../../../tests/fixtures/linux-6.1/o_4G_numa4.log"),
        include_str!("../../../../tests/fixtures/linux-6.1/q_4G_numa2_numaoff.log"),
    ];
    let machines = [(1, 1), (2, 1), (2, 2), (2, 2), (4, 4), (2, 1)];
    for (log, (cpus, nodes)) in fixtures.iter().zip(machines) {
        let linux = log
            .lines()
            .find_map(|l| l.find("SLUB: ").map(|i| &l[i..]))
            .expect("a SLUB: line");
        let m = SlubMachine::with_params(16 * nodes as usize, SlubParams::new(cpus, nodes, 7));
        let mine = take_captured();
        let line = mine
            .lines()
            .find_map(|l| l.find("SLUB: ").map(|i| &l[i..]))
            .unwrap();
        assert_eq!(line, linux);
        assert_eq!(SlubInfoLine(&m.slub.params).to_string(), linux);
    }
}

/// Out of memory: NULL and Linux's report.
#[test]
fn out_of_memory_report() {
    let m = SlubMachine::small();
    let s = m
        .slub
        .kmem_cache_create("oom", 2000, 0, SLAB_NO_MERGE, None)
        .unwrap();
    m.pages.fail.store(true, Ordering::Relaxed);
    take_captured();
    assert!(m.slub.kmem_cache_alloc(s, GFP_KERNEL).is_null());
    let log = take_captured();
    assert!(
        log.contains("SLUB: Unable to allocate memory on node -1, gfp=0xcc0(GFP_KERNEL)"),
        "{log}"
    );
    assert!(
        log.contains(
            "  cache: oom, object size: 2000, buffer size: 2000, default order: 2, min order: 0"
        ),
        "{log}"
    );
    assert!(m
        .slub
        .kmem_cache_alloc(s, GFP_KERNEL | __GFP_NOWARN)
        .is_null());
    assert!(take_captured().is_empty());
    m.pages.fail.store(false, Ordering::Relaxed);
}
