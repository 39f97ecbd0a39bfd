//! Host unit tests of `src/drivers/of/reserved_mem.rs` (`cargo hosttest`).

use super::*;
use crate::drivers::of::test_builder::{cells, FdtBuilder};
use crate::kernel::printk::take_captured;

/// A root with 2/2 cells, /memreserve/ entries and a /reserved-memory node.
fn sample(rsv_addr_cells: u32) -> Vec<u8> {
    let mut b = FdtBuilder::new();
    b.memreserve(0x4800_0000, 0x1000)
        .memreserve(0x4900_0000, 0x2000);
    b.begin("").addr_size_cells(2, 2);
    b.begin("memory@40000000")
        .prop_str("device_type", "memory")
        .prop_u32s("reg", &[0, 0x4000_0000, 0, 0x4000_0000])
        .end();
    b.begin("reserved-memory")
        .addr_size_cells(rsv_addr_cells, 2)
        .prop("ranges", &[]);
    b.begin("secmon@41000000")
        .prop_u32s(
            "reg",
            &[0, 0x4100_0000, 0, 0x10_0000, 0, 0x4200_0000, 0, 0x1000],
        )
        .prop("no-map", &[])
        .end();
    b.begin("linux,cma")
        .prop_str("compatible", "shared-dma-pool")
        .prop("reusable", &[])
        .prop_u32s("size", &[0, 0x400_0000])
        .prop_u32s("alignment", &[0, 0x40_0000])
        .prop_u32s("alloc-ranges", &[0, 0x4000_0000, 0, 0x2000_0000])
        .end();
    b.begin("off@0")
        .prop_str("status", "disabled")
        .prop_u32s("reg", &[0, 0, 0, 0x1000])
        .end();
    b.begin("bad-size").prop_u32s("size", &[0x1000]).end();
    b.begin("bad-reg")
        .prop_u32s("reg", &[0, 0x4300_0000, 0])
        .end();
    b.begin("empty").end();
    b.end(); // reserved-memory
    b.end(); // root
    b.finish()
}

#[test]
fn static_and_dynamic_regions() {
    let blob = sample(2);
    let fdt = Fdt::new(&blob).unwrap();
    let items: Vec<_> = fdt.reserved_memory().collect();
    let regions: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            ReservedMemItem::Region(r) => Some(*r),
            _ => None,
        })
        .collect();
    assert_eq!(regions.len(), 2);
    let secmon = &regions[0];
    assert_eq!(secmon.name(), "secmon@41000000");
    assert!(secmon.no_map && !secmon.reusable);
    let ReservedMemKind::Static(regs) = secmon.kind else {
        panic!("static expected")
    };
    let v: Vec<_> = regs.map(|e| (e.base, e.size)).collect();
    assert_eq!(v, [(0x4100_0000, 0x10_0000), (0x4200_0000, 0x1000)]);

    let cma = &regions[1];
    assert_eq!(cma.name(), "linux,cma");
    assert!(cma.reusable && !cma.no_map);
    assert_eq!(cma.compatible().collect::<Vec<_>>(), ["shared-dma-pool"]);
    let ReservedMemKind::Dynamic {
        size,
        alignment,
        alloc_ranges,
    } = cma.kind
    else {
        panic!("dynamic expected")
    };
    assert_eq!(size, 0x400_0000);
    assert_eq!(alignment, Some(0x40_0000));
    let ranges: Vec<_> = alloc_ranges.unwrap().map(|e| (e.base, e.size)).collect();
    assert_eq!(ranges, [(0x4000_0000, 0x2000_0000)]);

    // Disabled child skipped silently; malformed ones reported with node and property.
    let diags: Vec<String> = items
        .iter()
        .filter_map(|i| match i {
            ReservedMemItem::Diag(d) => Some(d.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(diags.len(), 3, "{diags:?}");
    assert_eq!(
        diags[0],
        "/reserved-memory/bad-size: size: invalid size property (length 4, expected 8)"
    );
    assert!(diags[1].starts_with(
        "/reserved-memory/bad-reg: reg: Reserved memory: invalid reg property (length 12"
    ));
    assert_eq!(
        diags[2],
        "/reserved-memory/empty: neither reg nor size: node ignored"
    );

    take_captured();
    let mut n = 0;
    assert!(fdt_scan_reserved_mem(&fdt, |_| n += 1));
    assert_eq!(n, 2);
    let log = take_captured();
    assert!(
        log.contains("OF: reserved mem: invalid size property in 'bad-size' node.\n"),
        "{log}"
    );
    assert!(
        log.contains(
            "OF: fdt: Reserved memory: invalid reg property in 'bad-reg', skipping node.\n"
        ),
        "{log}"
    );
}

#[test]
fn mismatched_cells_root_is_rejected_with_linux_message() {
    let blob = sample(1);
    let fdt = Fdt::new(&blob).unwrap();
    let items: Vec<_> = fdt.reserved_memory().collect();
    assert_eq!(items.len(), 1);
    let ReservedMemItem::Diag(d) = items[0] else {
        panic!("diag expected")
    };
    assert_eq!(
        d.problem,
        Problem::RsvCellsMismatch {
            which: "#address-cells",
            value: Some(1),
            root: 2
        }
    );
    assert_eq!(d.property, "#address-cells");
    take_captured();
    assert!(!fdt_scan_reserved_mem(&fdt, |_| panic!(
        "no region expected"
    )));
    let log = take_captured();
    assert!(
        log.contains("] OF: fdt: Reserved memory: unsupported node format, ignoring\n"),
        "{log}"
    );
    assert!(log.contains("/reserved-memory: #address-cells:"), "{log}");
}

#[test]
fn root_without_ranges_is_rejected() {
    let mut b = FdtBuilder::new();
    b.begin("").addr_size_cells(1, 1);
    b.begin("reserved-memory").addr_size_cells(1, 1);
    b.begin("r@0").prop_u32s("reg", &[0x1000, 0x1000]).end();
    b.end().end();
    let blob = b.finish();
    let fdt = Fdt::new(&blob).unwrap();
    let items: Vec<_> = fdt.reserved_memory().collect();
    assert!(matches!(
        items[..],
        [ReservedMemItem::Diag(Diagnostic {
            problem: Problem::RsvNoRanges,
            ..
        })]
    ));
}

#[test]
fn zero_size_static_entry_is_reported_like_linux() {
    let mut b = FdtBuilder::new();
    b.begin("").addr_size_cells(1, 1);
    b.begin("reserved-memory")
        .addr_size_cells(1, 1)
        .prop("ranges", &[]);
    b.begin("r@1000").prop("reg", &cells(&[0x1000, 0])).end();
    b.end().end();
    let blob = b.finish();
    let fdt = Fdt::new(&blob).unwrap();
    take_captured();
    assert!(fdt_scan_reserved_mem(&fdt, |_| {}));
    let log = take_captured();
    assert!(
        log.contains("OF: fdt: Reserved memory: failed to reserve memory for node 'r@1000': base 0x0000000000001000, size 0 MiB"),
        "{log}"
    );
}

#[test]
fn dtc_fixture_with_memreserve_and_reserved_memory() {
    let blob = include_bytes!("../../../../tests/fixtures/dtb/g_reserved_mem.dtb");
    let fdt = Fdt::new(blob).unwrap();
    let rsv: Vec<_> = fdt.mem_rsv().map(|r| (r.base.0, r.size)).collect();
    assert_eq!(rsv, [(0x4800_0000, 0x10_0000), (0x5000_0000, 0x1000)]);
    let names: Vec<_> = fdt
        .reserved_memory()
        .map(|i| match i {
            ReservedMemItem::Region(r) => (
                r.name(),
                r.no_map,
                matches!(r.kind, ReservedMemKind::Static(_)),
            ),
            ReservedMemItem::Diag(d) => panic!("unexpected {d}"),
        })
        .collect();
    assert_eq!(
        names,
        [("tfa@41000000", true, true), ("linux,cma", false, false)]
    );
}
