use super::*;

#[test]
fn alignment_and_pfns() {
    assert_eq!(align_up(0x1001, 0x1000), 0x2000);
    assert_eq!(align_down(0x1fff, 0x1000), 0x1000);
    assert_eq!(PhysAddr(0x4000_0fff).pfn_down(), Pfn(0x40000));
    assert_eq!(PhysAddr(0x4000_0001).pfn_up(), Pfn(0x40001));
    assert_eq!(Pfn(0x40000).phys(), PhysAddr(0x4000_0000));
    assert_eq!(PhysAddr(0x2000) - PhysAddr(0x1000), 0x1000);
}
