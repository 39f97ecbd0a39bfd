//! Host tests of the early scans: QEMU's own trees and crafted ones through the memory scan,
//! /memreserve/, `/chosen` (bootargs, initrd, stdout-path, elfcorehdr, usable ranges).

use super::*;
use crate::drivers::of::base::{for_each_of_cpu_node, of_get_cpu_hwid};
use crate::drivers::of::libfdt::{Fdt, RegEntry};
use crate::drivers::of::of_numa::{of_node_to_nid, of_numa_find_distance_map};
use crate::drivers::of::reserved_mem::fdt_scan_reserved_mem;
use crate::drivers::of::test_builder::{diags, mem_node, ranges, tree, FdtBuilder};
use crate::kernel::printk::take_captured;
use crate::mm::testing::fixtures::{A_128M, C_4G, F_NUMA2, G_RSV};

const GIB: u64 = 1 << 30;

// ---------------------------------------------------------------------------------------------
// QEMU fixtures.

#[test]
fn fixture_memory_ranges() {
    let a = Fdt::new(A_128M).unwrap();
    assert_eq!(
        ranges(&a),
        [(
            "/memory@40000000".into(),
            0x4000_0000,
            128 << 20,
            false,
            None
        )]
    );
    let c = Fdt::new(C_4G).unwrap();
    assert_eq!(
        ranges(&c),
        [("/memory@40000000".into(), 0x4000_0000, 4 * GIB, false, None)]
    );
    // Node 1's memory comes first in the blob, and the scan keeps blob order.
    let f = Fdt::new(F_NUMA2).unwrap();
    assert_eq!(
        ranges(&f),
        [
            (
                "/memory@c0000000".into(),
                0xc000_0000,
                2 * GIB,
                false,
                Some(1)
            ),
            (
                "/memory@40000000".into(),
                0x4000_0000,
                2 * GIB,
                false,
                Some(0)
            ),
        ]
    );
    for fdt in [a, c, f] {
        assert!(diags(&fdt).is_empty());
        assert_eq!((fdt.root_addr_cells(), fdt.root_size_cells()), (2, 2));
        assert_eq!(fdt.mem_rsv().count(), 0);
        assert_eq!(fdt.reserved_memory().count(), 0);
    }
}

#[test]
fn fixture_machine_console_psci_cpus() {
    for (blob, mpidrs, nids) in [
        (A_128M, &[0u64][..], &[None][..]),
        (C_4G, &[0, 1][..], &[None, None][..]),
        (F_NUMA2, &[0, 1][..], &[Some(0), Some(1)][..]),
    ] {
        let fdt = Fdt::new(blob).unwrap();
        assert_eq!(fdt.totalsize(), 0x10_0000);
        assert_eq!(fdt.machine_name(), Some("linux,dummy-virt"));
        let out = fdt.stdout().unwrap().unwrap();
        assert_eq!(out.path, "/pl011@9000000");
        assert_eq!(out.options, None);
        assert_eq!(out.node.name(), "pl011@9000000");
        assert_eq!(out.base().unwrap(), Some(PhysAddr(0x900_0000)));
        // PSCI and the CPUs as the arch reads them (arch/aarch64/kernel/{psci,smp}.rs).
        let psci = fdt.root().child("psci").unwrap();
        assert_eq!(fdt.find_compatible("arm,psci-1.0"), Some(psci));
        assert_eq!(psci.prop_str("method"), Some("hvc"));
        assert_eq!(
            psci.compatible().collect::<Vec<_>>(),
            ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]
        );
        let cpus: Vec<_> = for_each_of_cpu_node(&fdt).collect();
        let hwids: Vec<u64> = cpus.iter().map(|c| of_get_cpu_hwid(c).unwrap()).collect();
        assert_eq!(hwids, mpidrs);
        assert_eq!(
            cpus.iter()
                .map(|c| of_node_to_nid(&c.node).unwrap())
                .collect::<Vec<_>>(),
            nids
        );
        let chosen = fdt.chosen().unwrap();
        assert_eq!(
            chosen.bootargs().unwrap(),
            Some("console=ttyAMA0 earlycon loglevel=8 panic=-1 ignore_loglevel")
        );
        assert_eq!(chosen.kaslr_seed().map(<[u8]>::len), Some(8));
        assert_eq!(chosen.rng_seed().map(<[u8]>::len), Some(32));
        assert_eq!(chosen.initrd().unwrap(), None);
        assert_eq!(chosen.elfcorehdr().unwrap(), None);
        assert!(chosen.usable_memory_range().unwrap().is_none());
        assert!(of_numa_find_distance_map(&fdt).unwrap().is_none());
    }
    // smp2 boots the secondaries through PSCI; smp1's single CPU has no enable-method.
    let c = Fdt::new(C_4G).unwrap();
    assert!(for_each_of_cpu_node(&c).all(|c| c.node.prop_str("enable-method") == Some("psci")));
    let a = Fdt::new(A_128M).unwrap();
    let a0 = for_each_of_cpu_node(&a).next().unwrap();
    assert_eq!(a0.node.prop_str("enable-method"), None);
}

// ---------------------------------------------------------------------------------------------
// Memory nodes.

#[test]
fn memory_node_selection_follows_linux() {
    let blob = tree(1, 1, |b| {
        mem_node(b, "ram@80000000", &[0x8000_0000, 0x100_0000]); // any name
        b.begin("memory@1000")
            .prop_u32s("reg", &[0x1000, 0x1000])
            .end(); // no device_type
        b.begin("memory@2000")
            .prop_str("device_type", "memory")
            .prop_str("status", "disabled")
            .prop_u32s("reg", &[0x2000, 0x1000])
            .end();
        b.begin("memory@3000")
            .prop_str("device_type", "memory")
            .prop_str("status", "ok")
            .prop_u32s("reg", &[0x3000, 0x1000])
            .end();
        b.begin("memory@4000")
            .prop_str("device_type", "memory")
            .prop_str("status", "okay")
            .prop_u32s("reg", &[0x4000, 0x1000])
            .end();
        b.begin("memory@5000")
            .prop_str("device_type", "memoryx")
            .prop_u32s("reg", &[0x5000, 0x1000])
            .end();
        b.begin("soc")
            .begin("memory@6000")
            .prop_str("device_type", "memory")
            .prop_u32s("reg", &[0x6000, 0x1000])
            .end()
            .end(); // not a root child
    });
    let fdt = Fdt::new(&blob).unwrap();
    let got: Vec<_> = ranges(&fdt).into_iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(
        got,
        [
            ("/ram@80000000".into(), 0x8000_0000),
            ("/memory@3000".into(), 0x3000),
            ("/memory@4000".into(), 0x4000)
        ]
    );
    assert!(diags(&fdt).is_empty());
}

#[test]
fn one_cell_root_and_several_entries() {
    let blob = tree(1, 1, |b| {
        mem_node(
            b,
            "memory@40000000",
            &[0x4000_0000, 0x100_0000, 0x5000_0000, 0x200_0000],
        )
    });
    let fdt = Fdt::new(&blob).unwrap();
    assert_eq!((fdt.root_addr_cells(), fdt.root_size_cells()), (1, 1));
    let got: Vec<_> = fdt.memory_ranges().map(|r| (r.base.0, r.size)).collect();
    assert_eq!(got, [(0x4000_0000, 0x100_0000), (0x5000_0000, 0x200_0000)]);
}

#[test]
fn root_cells_default_to_linux_values() {
    let mut b = FdtBuilder::new();
    b.begin("");
    mem_node(&mut b, "memory@0", &[0x1000, 0x2000]);
    b.end();
    let blob = b.finish();
    let fdt = Fdt::new(&blob).unwrap();
    assert_eq!((fdt.root_addr_cells(), fdt.root_size_cells()), (1, 1));
    assert_eq!(
        fdt.memory_ranges()
            .map(|r| (r.base.0, r.size))
            .collect::<Vec<_>>(),
        [(0x1000, 0x2000)]
    );
}

#[test]
fn three_cells_are_a_clear_error() {
    let blob = tree(3, 2, |b| {
        mem_node(b, "memory@0", &[0, 0, 0x4000_0000, 0, 0x1000_0000])
    });
    let fdt = Fdt::new(&blob).unwrap();
    assert!(ranges(&fdt).is_empty());
    let d = diags(&fdt);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].severity, Severity::Error);
    assert_eq!(
        d[0].to_string(),
        "/memory@0: reg: cannot decode with #address-cells = 3: at most 2 cells fit a 64-bit number"
    );
    let blob = tree(2, 3, |b| mem_node(b, "memory@0", &[0; 5]));
    let d = diags(&Fdt::new(&blob).unwrap());
    assert_eq!(
        d[0].problem,
        Problem::CellsUnsupported {
            which: "#size-cells",
            cells: 3
        }
    );
    // 0 + 0 cells would make Linux loop forever; we refuse.
    let blob = tree(0, 0, |b| mem_node(b, "memory@0", &[1]));
    assert_eq!(
        diags(&Fdt::new(&blob).unwrap())[0].problem,
        Problem::NoCells
    );
}

#[test]
fn zero_size_and_partial_entries_are_skipped_with_warnings() {
    let blob = tree(2, 2, |b| {
        mem_node(
            b,
            "memory@40000000",
            &[
                0,
                0x4000_0000,
                0,
                0,
                0,
                0x5000_0000,
                0,
                0x1000,
                0,
                0x6000_0000,
                0,
            ],
        );
    });
    let fdt = Fdt::new(&blob).unwrap();
    assert_eq!(
        fdt.memory_ranges()
            .map(|r| (r.base.0, r.size))
            .collect::<Vec<_>>(),
        [(0x5000_0000, 0x1000)]
    );
    let d: Vec<String> = diags(&fdt).iter().map(|d| d.to_string()).collect();
    assert_eq!(
        d,
        [
            "/memory@40000000: reg: length 44 is not a multiple of the 16-byte entry; the trailing 12 bytes are ignored",
            "/memory@40000000: reg: entry 0 at 0x40000000 has size 0, skipped",
        ]
    );
    take_captured();
    let mut n = 0;
    assert!(early_init_dt_scan_memory(&fdt, |_| n += 1));
    assert_eq!(n, 1);
    let log = take_captured();
    assert!(
        log.contains(
            "] OF: fdt: /memory@40000000: reg: entry 0 at 0x40000000 has size 0, skipped\n"
        ),
        "{log}"
    );
}

#[test]
fn range_wrapping_past_2_64_is_refused() {
    let blob = tree(2, 2, |b| {
        mem_node(
            b,
            "memory@0",
            &[
                0xffff_ffff,
                0xffff_f000,
                0,
                0x1000,
                0xffff_ffff,
                0xffff_f000,
                0,
                0x2000,
            ],
        )
    });
    let fdt = Fdt::new(&blob).unwrap();
    // Ending exactly at 2^64 is representable; one page more is not.
    assert_eq!(
        fdt.memory_ranges().map(|r| r.size).collect::<Vec<_>>(),
        [0x1000]
    );
    assert!(matches!(
        diags(&fdt)[..],
        [Diagnostic {
            problem: Problem::RangeOverflow { entry: 1, .. },
            ..
        }]
    ));
}

#[test]
fn usable_memory_hotpluggable_and_numa_id() {
    let blob = tree(2, 2, |b| {
        b.begin("memory@40000000")
            .prop_str("device_type", "memory")
            .prop_u32s("reg", &[0, 0x4000_0000, 0, 0x4000_0000])
            .prop_u32s("linux,usable-memory", &[0, 0x4800_0000, 0, 0x1000_0000])
            .end();
        b.begin("memory@100000000")
            .prop_str("device_type", "memory")
            .prop_u32s("reg", &[1, 0, 1, 0])
            .prop("hotpluggable", &[])
            .prop_u32s("numa-node-id", &[1])
            .end();
        b.begin("memory@300000000")
            .prop_str("device_type", "memory")
            .prop_u32s("reg", &[3, 0, 0, 0x1000])
            .prop_u32s("numa-node-id", &[1, 2])
            .end();
        b.begin("memory@400000000")
            .prop_str("device_type", "memory")
            .end();
    });
    let fdt = Fdt::new(&blob).unwrap();
    assert_eq!(
        ranges(&fdt),
        [
            (
                "/memory@40000000".into(),
                0x4800_0000,
                0x1000_0000,
                false,
                None
            ),
            (
                "/memory@100000000".into(),
                0x1_0000_0000,
                0x1_0000_0000,
                true,
                Some(1)
            ),
            (
                "/memory@300000000".into(),
                0x3_0000_0000,
                0x1000,
                false,
                None
            ),
        ]
    );
    let d: Vec<String> = diags(&fdt).iter().map(|d| d.to_string()).collect();
    assert_eq!(
        d,
        [
            "/memory@300000000: numa-node-id: length 8, expected 4 (one cell)",
            "/memory@400000000: reg: neither linux,usable-memory nor reg: node ignored",
        ]
    );
    let r = fdt.memory_ranges().next().unwrap();
    assert_eq!(r.end(), PhysAddr(0x5800_0000));
    assert_eq!(r.node.name(), "memory@40000000");
}

#[test]
fn memreserve_entries_and_the_blob_itself() {
    let mut b = FdtBuilder::new();
    b.memreserve(0x4000_0000, 0x1_0000)
        .memreserve(0x4800_0000, 0x20_0000);
    b.begin("").end();
    let blob = b.finish();
    let fdt = Fdt::new(&blob).unwrap();
    let got: Vec<_> = fdt.mem_rsv().collect();
    assert_eq!(
        got,
        [
            MemReserve {
                base: PhysAddr(0x4000_0000),
                size: 0x1_0000
            },
            MemReserve {
                base: PhysAddr(0x4800_0000),
                size: 0x20_0000
            },
        ]
    );
    assert_eq!(
        early_init_fdt_reserve_self(&fdt, PhysAddr(0x4400_0000)),
        MemReserve {
            base: PhysAddr(0x4400_0000),
            size: blob.len() as u64
        }
    );
    // Linux's loop stops at the first zero size, even with a non-zero address.
    let mut b = FdtBuilder::new();
    b.memreserve(0x1000, 0x1000)
        .memreserve(0x2000, 0)
        .memreserve(0x3000, 0x1000);
    b.begin("").end();
    let blob = b.finish();
    assert_eq!(Fdt::new(&blob).unwrap().mem_rsv().count(), 1);
}

// ---------------------------------------------------------------------------------------------
// /chosen and friends.

fn chosen_tree(props: impl FnOnce(&mut FdtBuilder)) -> Vec<u8> {
    tree(2, 2, |b| {
        b.begin("chosen");
        props(b);
        b.end();
    })
}

/// /chosen's initrd as the tree `blob` gives it.
fn initrd_of(blob: &[u8]) -> Result<Option<Initrd>, Diagnostic<'_>> {
    Fdt::new(blob).unwrap().chosen().unwrap().initrd()
}

#[test]
fn initrd_with_one_and_two_cells() {
    let blob = chosen_tree(|b| {
        b.prop_u32s("linux,initrd-start", &[0x4800_0000])
            .prop_u32s("linux,initrd-end", &[0x4820_0000]);
    });
    let fdt = Fdt::new(&blob).unwrap();
    let i = fdt.chosen().unwrap().initrd().unwrap().unwrap();
    assert_eq!(
        (i.start, i.end, i.size()),
        (PhysAddr(0x4800_0000), PhysAddr(0x4820_0000), 0x20_0000)
    );

    let blob = chosen_tree(|b| {
        b.prop_u32s("linux,initrd-start", &[0x1, 0x0])
            .prop_u32s("linux,initrd-end", &[0x1, 0x10_0000]);
    });
    let i = initrd_of(&blob).unwrap().unwrap();
    assert_eq!(
        (i.start, i.end),
        (PhysAddr(0x1_0000_0000), PhysAddr(0x1_0010_0000))
    );

    // Mixed widths are fine (each is read with its own length, as Linux does).
    let blob = chosen_tree(|b| {
        b.prop_u32s("linux,initrd-start", &[0x4800_0000])
            .prop_u32s("linux,initrd-end", &[0, 0x4900_0000]);
    });
    assert!(initrd_of(&blob).unwrap().is_some());
}

#[test]
fn initrd_problems_are_reported() {
    let blob = chosen_tree(|b| {
        b.prop_u32s("linux,initrd-start", &[0x4900_0000])
            .prop_u32s("linux,initrd-end", &[0x4800_0000]);
    });
    let e = initrd_of(&blob).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/chosen: linux,initrd-start: linux,initrd-start 0x49000000 is above linux,initrd-end 0x48000000: initrd ignored"
    );
    let blob = chosen_tree(|b| {
        b.prop_u32s("linux,initrd-start", &[0x4900_0000]);
    });
    let e = initrd_of(&blob).unwrap_err();
    assert_eq!(e.problem, Problem::InitrdEndMissing);
    let blob = chosen_tree(|b| {
        b.prop_u32s("linux,initrd-start", &[0, 0, 0x4900_0000])
            .prop_u32s("linux,initrd-end", &[0x4a00_0000]);
    });
    let e = initrd_of(&blob).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/chosen: linux,initrd-start: length 12, expected 4 or 8 (1 or 2 cells)"
    );
}

#[test]
fn bootargs_absent_empty_or_set() {
    for (bytes, want) in [
        (Some(&b""[..]), None),
        (Some(&b"\0"[..]), None),
        (Some(&b"quiet\0"[..]), Some("quiet")),
        (Some(&b"no-nul"[..]), Some("no-nul")),
        (None, None),
    ] {
        let blob = chosen_tree(|b| {
            if let Some(v) = bytes {
                b.prop("bootargs", v);
            }
        });
        assert_eq!(
            Fdt::new(&blob)
                .unwrap()
                .chosen()
                .unwrap()
                .bootargs()
                .unwrap(),
            want
        );
    }
    let blob = chosen_tree(|b| {
        b.prop("bootargs", &[0xff, 0xfe, 0]);
    });
    let e = Fdt::new(&blob)
        .unwrap()
        .chosen()
        .unwrap()
        .bootargs()
        .unwrap_err();
    assert_eq!(e.to_string(), "/chosen: bootargs: not a UTF-8 string");
    // The dtc fixture's `bootargs = ""`.
    assert_eq!(
        Fdt::new(G_RSV)
            .unwrap()
            .chosen()
            .unwrap()
            .bootargs()
            .unwrap(),
        None
    );
}

#[test]
fn missing_chosen() {
    let blob = tree(2, 2, |_| {});
    let fdt = Fdt::new(&blob).unwrap();
    assert!(fdt.chosen().is_none());
    assert!(fdt.stdout().unwrap().is_none());
    assert!(fdt.root().child("psci").is_none());
    assert_eq!(for_each_of_cpu_node(&fdt).count(), 0);
    assert_eq!(fdt.machine_name(), None);
    // `/chosen@0` is Linux's fallback.
    let blob = tree(2, 2, |b| {
        b.begin("chosen@0").prop_str("bootargs", "x").end();
    });
    assert_eq!(
        Fdt::new(&blob)
            .unwrap()
            .chosen()
            .unwrap()
            .bootargs()
            .unwrap(),
        Some("x")
    );
}

#[test]
fn stdout_alias_options_and_translation() {
    let blob = tree(2, 2, |b| {
        b.prop_str("compatible", "vendor,board\0vendor,soc");
        b.begin("aliases")
            .prop_str("serial0", "/soc/uart@1000")
            .prop_str("loop", "loop")
            .end();
        b.begin("soc")
            .addr_size_cells(1, 1)
            .prop_u32s("ranges", &[0x0, 0x0, 0x1000_0000, 0x10_0000]);
        b.begin("uart@1000")
            .prop_u32s("reg", &[0x1000, 0x100])
            .prop_str("compatible", "arm,pl011")
            .end();
        b.begin("bus").addr_size_cells(1, 1);
        b.begin("dev@0").prop_u32s("reg", &[0, 4]).end();
        b.end();
        b.end();
        b.begin("chosen")
            .prop_str("stdout-path", "serial0:115200n8")
            .end();
    });
    let fdt = Fdt::new(&blob).unwrap();
    assert_eq!(fdt.machine_name(), Some("vendor,board"));
    let out = fdt.stdout().unwrap().unwrap();
    assert_eq!((out.path, out.options), ("serial0", Some("115200n8")));
    assert_eq!(out.node.path().to_string(), "/soc/uart@1000");
    assert_eq!(out.base().unwrap(), Some(PhysAddr(0x1000_1000)));
    assert_eq!(
        fdt.chosen().unwrap().stdout_path(),
        Some("serial0:115200n8")
    );
    assert!(fdt.find_node("loop").is_none());
    // A bus without `ranges` cannot be translated through.
    let dev = fdt.find_node("/soc/bus/dev@0").unwrap();
    let e = dev.translated_reg_base().unwrap_err();
    assert_eq!(
        e.to_string(),
        "/soc/bus: ranges: address 0x0 is not translatable"
    );

    let blob = tree(2, 2, |b| {
        b.begin("chosen")
            .prop_str("stdout-path", "/nowhere:9600")
            .end();
    });
    let e = Fdt::new(&blob).unwrap().stdout().unwrap_err();
    assert_eq!(e.to_string(), "/chosen: stdout-path: /nowhere not found");
}

#[test]
fn elfcorehdr_and_usable_memory_range() {
    let blob = chosen_tree(|b| {
        b.prop_u32s("linux,elfcorehdr", &[0, 0x5000_0000, 0, 0x1000]);
        b.prop_u32s(
            "linux,usable-memory-range",
            &[0, 0x6000_0000, 0, 0x1000_0000, 1, 0, 0, 0x1000_0000],
        );
    });
    let c = Fdt::new(&blob).unwrap().chosen().unwrap();
    assert_eq!(
        c.elfcorehdr().unwrap(),
        Some(MemReserve {
            base: PhysAddr(0x5000_0000),
            size: 0x1000
        })
    );
    let r: Vec<_> = c.usable_memory_range().unwrap().unwrap().collect();
    assert_eq!(
        r,
        [
            RegEntry {
                base: 0x6000_0000,
                size: 0x1000_0000
            },
            RegEntry {
                base: 0x1_0000_0000,
                size: 0x1000_0000
            }
        ]
    );
    let blob = chosen_tree(|b| {
        b.prop_u32s("linux,usable-memory-range", &[0, 0x6000_0000, 0]);
        b.prop_u32s("linux,elfcorehdr", &[0, 0x5000_0000]);
    });
    let c = Fdt::new(&blob).unwrap().chosen().unwrap();
    assert!(matches!(
        c.usable_memory_range().unwrap_err().problem,
        Problem::TrailingBytes {
            len: 12,
            entry_size: 16
        }
    ));
    assert!(matches!(
        c.elfcorehdr().unwrap_err().problem,
        Problem::BadLength { len: 8, .. }
    ));
}

#[test]
fn reserved_memory_from_the_dtc_fixture_prints_nothing_wrong() {
    let fdt = Fdt::new(G_RSV).unwrap();
    take_captured();
    let mut seen = Vec::new();
    assert!(fdt_scan_reserved_mem(&fdt, |r| seen.push(r.name().to_string())));
    assert_eq!(seen, ["tfa@41000000", "linux,cma"]);
    assert_eq!(take_captured(), "");
    assert_eq!(fdt.machine_name(), Some("crafted,reserved-mem"));
}
