//! Host unit tests of `src/mm/addr.rs` (`cargo hosttest`).

use super::*;

#[test]
fn alignment_and_pfns() {
    assert_eq!(align_up(0x1001, 0x1000), 0x2000);
    assert_eq!(align_down(0x1fff, 0x1000), 0x1000);
    assert_eq!(PhysAddr(0x4000_0fff).pfn_down(), Pfn(0x40000));
    assert_eq!(PhysAddr(0x4000_0001).pfn_up(), Pfn(0x40001));
    assert_eq!(Pfn(0x40000).phys(), PhysAddr(0x4000_0000));
    assert_eq!(Pfn::from_phys(PhysAddr(0x4000_1fff)), Pfn(0x40001));
    assert_eq!(Pfn(0x40000) + 3 - 1, Pfn(0x40002));
    assert_eq!(Pfn(0x40400) - Pfn(0x40000), 0x400);
    assert_eq!(
        (Pfn(0x40001).align_up(0x400), Pfn(0x403ff).align_down(0x400)),
        (Pfn(0x40400), Pfn(0x40000))
    );
    assert_eq!(format!("{:#x}", Pfn(0x40000)), "0x40000");
    assert_eq!(PhysAddr(0x2000) - PhysAddr(0x1000), 0x1000);
}
