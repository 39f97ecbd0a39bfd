//! Host tests of the flat-tree reader: lookups on QEMU's trees, the `fdt` crate as an oracle,
//! FDT_NOP runs, malformed headers and structure blocks, and random corruption that must
//! never panic or hang (every query of drivers/of is run on the corrupted blobs).

use super::*;
use crate::drivers::of::base::{for_each_of_cpu_node, of_get_cpu_hwid};
use crate::drivers::of::fdt::{
    early_init_dt_scan_memory, early_init_fdt_reserve_self, MemoryScanItem, MAX_USABLE_RANGES,
};
use crate::drivers::of::of_numa::{of_node_to_nid, of_numa_find_distance_map};
use crate::drivers::of::reserved_mem::{fdt_scan_reserved_mem, ReservedMemItem, ReservedMemKind};
use crate::drivers::of::test_builder::{ranges, tree, FdtBuilder};
use crate::kernel::printk::take_captured;
use crate::mm::testing::fixtures::{A_128M, C_4G, F_NUMA2, G_RSV};
use crate::mm::testing::Rng;

const GIB: u64 = 1 << 30;

#[test]
fn fixture_paths_and_lookups() {
    let fdt = Fdt::new(F_NUMA2).unwrap();
    assert!(fdt.root().is_root());
    assert_eq!(fdt.root().path().to_string(), "/");
    // A component without a unit address matches `name@unit` (libfdt's rule).
    let v2m = fdt.find_node("/intc/v2m").unwrap();
    assert_eq!(v2m.path().to_string(), "/intc@8000000/v2m@8020000");
    assert_eq!(v2m.parent().unwrap().name(), "intc@8000000");
    assert_eq!(
        v2m.reg().unwrap().unwrap().next(),
        Some(RegEntry {
            base: 0x802_0000,
            size: 0x1000
        })
    );
    // intc has an empty `ranges`: a 1:1 bus.
    assert_eq!(
        v2m.translated_reg_base().unwrap(),
        Some(PhysAddr(0x802_0000))
    );
    assert!(fdt.find_node("/nonexistent").is_none());
    assert!(fdt.find_node("/cpus/cpu@7").is_none());
    assert_eq!(
        fdt.find_compatible("arm,pl011").unwrap().name(),
        "pl011@9000000"
    );
    assert_eq!(
        fdt.nodes().filter(|(_, d)| *d == 1).count(),
        fdt.root().children().count()
    );
    // The PCIe node has 3 address cells: decoding its children is refused, not truncated.
    let pcie = fdt.find_node("/pcie@10000000").unwrap();
    assert_eq!(pcie.address_cells(), 3);
}

/// The `fdt` crate reads the QEMU trees the same way (its `children()` skips NOPs correctly).
#[test]
fn fixture_walk_matches_fdt_crate() {
    fn compare(ours: Node, theirs: ::fdt::node::FdtNode) -> usize {
        assert_eq!(
            ours.name(),
            if theirs.name == "/" { "" } else { theirs.name }
        );
        let a: Vec<_> = ours.properties().map(|p| (p.name, p.value)).collect();
        let b: Vec<_> = theirs.properties().map(|p| (p.name, p.value)).collect();
        assert_eq!(a, b, "properties of {}", ours.path());
        let oc: Vec<_> = ours.children().collect();
        let tc: Vec<_> = theirs.children().collect();
        assert_eq!(oc.len(), tc.len(), "children of {}", ours.path());
        1 + oc
            .into_iter()
            .zip(tc)
            .map(|(o, t)| compare(o, t))
            .sum::<usize>()
    }
    for blob in [A_128M, C_4G, F_NUMA2, G_RSV] {
        let ours = Fdt::new(blob).unwrap();
        let theirs = ::fdt::Fdt::new(blob).unwrap();
        let n = compare(ours.root(), theirs.find_node("/").unwrap());
        assert_eq!(n, ours.nodes().count());
        let rsv: Vec<_> = theirs
            .memory_reservations()
            .map(|r| (r.address() as u64, r.size() as u64))
            .collect();
        let ours_rsv: Vec<_> = ours.mem_rsv().map(|r| (r.base.0, r.size)).collect();
        assert_eq!(rsv, ours_rsv);
    }
}

// ---------------------------------------------------------------------------------------------
// FDT_NOP runs.

/// Overwrites the node at `path`, subtree included, with FDT_NOP tokens, as QEMU does when it
/// deletes a node of a `-dtb` file.
fn nop_out(blob: &mut [u8], path: &str) {
    let fdt = Fdt::new(blob).unwrap();
    let node = fdt.find_node(path).unwrap();
    let (start, mut off, mut depth) = (node.off, node.off, 0);
    loop {
        let (tag, next) = fdt.step(off).unwrap();
        match tag {
            FDT_BEGIN_NODE => depth += 1,
            FDT_END_NODE => depth -= 1,
            _ => {}
        }
        off = next;
        if depth == 0 {
            break;
        }
    }
    let base = fdt.struct_base;
    for w in (base + start..base + off).step_by(4) {
        blob[w..w + 4].copy_from_slice(&FDT_NOP.to_be_bytes());
    }
}

#[test]
fn nop_runs_in_place_of_deleted_memory_nodes() {
    let mut blob = F_NUMA2.to_vec();
    nop_out(&mut blob, "/memory@c0000000");
    let fdt = Fdt::new(&blob).unwrap();
    // The node after the NOP run is still found, and so is everything later in the blob.
    assert_eq!(
        ranges(&fdt),
        [(
            "/memory@40000000".into(),
            0x4000_0000,
            2 * GIB,
            false,
            Some(0)
        )]
    );
    assert!(fdt.chosen().is_some());
    assert_eq!(for_each_of_cpu_node(&fdt).count(), 2);
    assert_eq!(
        fdt.find_node("/pl011@9000000").unwrap().path().to_string(),
        "/pl011@9000000"
    );
    assert_eq!(
        fdt.stdout().unwrap().unwrap().base().unwrap(),
        Some(PhysAddr(0x900_0000))
    );

    // Both deleted: no memory at all, the rest intact.
    nop_out(&mut blob, "/memory@40000000");
    let fdt = Fdt::new(&blob).unwrap();
    assert!(ranges(&fdt).is_empty());
    take_captured();
    assert!(!early_init_dt_scan_memory(&fdt, |_| panic!(
        "no memory expected"
    )));
    assert_eq!(fdt.machine_name(), Some("linux,dummy-virt"));
    assert_eq!(
        fdt.nodes().count(),
        Fdt::new(F_NUMA2).unwrap().nodes().count() - 2
    );
}

#[test]
fn nops_anywhere_are_skipped() {
    let mut b = FdtBuilder::new();
    b.nop()
        .nop()
        .begin("")
        .nop()
        .prop_u32s("#address-cells", &[1])
        .nop()
        .prop_u32s("#size-cells", &[1]);
    b.nop().nop().nop();
    b.begin("memory@0")
        .nop()
        .prop_str("device_type", "memory")
        .nop()
        .prop_u32s("reg", &[0, 0x1000])
        .nop()
        .end();
    b.nop();
    b.begin("chosen")
        .nop()
        .prop_str("bootargs", "x")
        .end()
        .nop();
    b.end().nop();
    let blob = b.finish();
    let fdt = Fdt::new(&blob).unwrap();
    assert_eq!(ranges(&fdt), [("/memory@0".into(), 0, 0x1000, false, None)]);
    assert_eq!(fdt.chosen().unwrap().bootargs().unwrap(), Some("x"));
    assert_eq!(fdt.root().properties().count(), 2);
}

// ---------------------------------------------------------------------------------------------
// Malformed headers.

fn header_with(f: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let mut blob = tree(1, 1, |_| {});
    f(&mut blob);
    blob
}

fn put(b: &mut [u8], word: usize, v: u32) {
    b[word * 4..word * 4 + 4].copy_from_slice(&v.to_be_bytes());
}

#[test]
fn bad_headers_name_the_problem_and_the_value() {
    let cases: [(Vec<u8>, &str); 9] = [
        (header_with(|b| put(b, 0, 0x1234_5678)), "bad magic 0x12345678 (expected 0xd00dfeed)"),
        (
            header_with(|b| {
                put(b, 5, 15);
                put(b, 6, 15)
            }),
            "unsupported version 15 (last_comp_version 15): need version >= 16, last_comp_version <= 17 and last_comp_version <= version",
        ),
        (header_with(|b| put(b, 6, 18)), "unsupported version 17 (last_comp_version 18): need version >= 16, last_comp_version <= 17 and last_comp_version <= version"),
        (header_with(|b| put(b, 1, 0x20)), "totalsize 0x20 is smaller than the 40-byte header"),
        (header_with(|b| put(b, 1, 0x8000_0000)), "totalsize 0x80000000 is larger than INT_MAX"),
        (header_with(|b| put(b, 2, 0x1000)), "structure block at offset 0x1000 (size 0x30) extends past totalsize 0x83"),
        (header_with(|b| put(b, 3, 0x10)), "strings block offset 0x10 is inside the 40-byte header"),
        (header_with(|b| put(b, 4, 0x100)), "memory reservation block at offset 0x100 (size 0x0) extends past totalsize 0x83"),
        (header_with(|b| put(b, 4, 0x2c)), "memory reservation block offset 0x2c is not 8-byte aligned"),
    ];
    for (blob, want) in cases {
        let e = Fdt::new(&blob).unwrap_err();
        assert_eq!(e.to_string(), want);
        assert_eq!(fdt_check_header(&blob).unwrap_err(), e);
    }
    assert_eq!(
        fdt_check_header(&[0u8; 12]).unwrap_err().to_string(),
        "blob is 12 bytes, shorter than the 40-byte header"
    );
    let blob = tree(1, 1, |_| {});
    let e = Fdt::new(&blob[..blob.len() - 1]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "totalsize 0x83 is larger than the 0x82 bytes given"
    );
    // The header check needs only 40 bytes: what the kernel maps first.
    let h = fdt_check_header(&A_128M[..40]).unwrap();
    assert_eq!((h.totalsize, h.version), (0x10_0000, 17));
    // SAFETY: the fixture is a live static slice longer than both lengths.
    let h2 = unsafe { fdt_header_from_ptr(A_128M.as_ptr()) }.unwrap();
    // SAFETY: as above; `totalsize` (1 MiB) is exactly the fixture's length.
    let whole = unsafe { fdt_blob_from_ptr(A_128M.as_ptr(), &h2) };
    assert_eq!(whole.len(), A_128M.len());
    assert_eq!(Fdt::new(whole).unwrap().header(), h);
}

// ---------------------------------------------------------------------------------------------
// Malformed structure blocks.

fn structure_error(build: impl FnOnce(&mut FdtBuilder)) -> String {
    let mut b = FdtBuilder::new();
    build(&mut b);
    let blob = b.finish();
    Fdt::new(&blob).unwrap_err().to_string()
}

#[test]
fn bad_structure_blocks_name_the_offset() {
    // The structure block starts at 0x38 (header 0x28 + one empty reservation entry).
    assert_eq!(
        structure_error(|b| {
            b.begin("").raw(7).end();
        }),
        "bad token 0x00000007 at offset 0x40"
    );
    assert_eq!(
        structure_error(|b| {
            b.begin("").end().end();
        }),
        "FDT_END_NODE at offset 0x44 has no matching FDT_BEGIN_NODE"
    );
    assert_eq!(
        structure_error(|b| {
            b.begin("").begin("a");
        }),
        "FDT_END at offset 0x48 with 2 node(s) still open"
    );
    assert_eq!(
        structure_error(|b| {
            b.prop("x", &[]);
        }),
        "property at offset 0x38 is outside any node"
    );
    assert_eq!(
        structure_error(|_| {}),
        "FDT_END at offset 0x38 before any root node"
    );
    assert_eq!(
        structure_error(|b| {
            b.begin("").end().begin("").end();
        }),
        "second top-level node at offset 0x44 (only one root allowed)"
    );
    assert_eq!(
        structure_error(|b| {
            for _ in 0..=FDT_MAX_DEPTH {
                b.begin("n");
            }
            for _ in 0..=FDT_MAX_DEPTH {
                b.end();
            }
        }),
        format!(
            "node at offset {:#x} is nested deeper than 64 levels",
            0x38 + 8 * FDT_MAX_DEPTH
        )
    );

    // Hand-edited blobs for what the builder cannot write.
    let good = tree(1, 1, |b| {
        b.begin("n").prop_u32s("p", &[1]).end();
    });
    let fdt = Fdt::new(&good).unwrap();
    let (sb, strs) = (fdt.struct_base, fdt.header().off_dt_strings as usize);
    let node = fdt.find_node("/n").unwrap();
    let prop = node.offset() + 8; // BEGIN_NODE + "n\0" padded
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        Fdt::new(&b).unwrap_err().to_string()
    };
    assert_eq!(
        edit(&|b| b[prop + 4..prop + 8].copy_from_slice(&0x1000u32.to_be_bytes())),
        format!("property at offset {prop:#x}: its 4096-byte value runs past the end of the structure block")
    );
    assert_eq!(
        edit(&|b| b[prop + 8..prop + 12].copy_from_slice(&0x500u32.to_be_bytes())),
        format!(
            "property at offset {prop:#x}: name offset 0x500 is outside the {:#x}-byte strings block",
            fdt.header().size_dt_strings
        )
    );
    // The last string loses its NUL and the property is pointed at it.
    let last = good[strs..good.len() - 1]
        .iter()
        .rposition(|&c| c == 0)
        .unwrap()
        + 1;
    assert_eq!(
        edit(&|b| {
            let n = b.len();
            b[n - 1] = b'x';
            b[prop + 8..prop + 12].copy_from_slice(&(last as u32).to_be_bytes());
        }),
        format!(
            "property at offset {prop:#x}: name at strings offset {last:#x} is not NUL-terminated within the strings block"
        )
    );
    assert_eq!(
        edit(&|b| {
            let n = b.len() - fdt.header().size_dt_strings as usize;
            b[n - 4..n].copy_from_slice(&FDT_NOP.to_be_bytes()); // FDT_END gone
        }),
        format!(
            "structure block ends at offset {:#x} without an FDT_END token",
            strs
        )
    );
    assert_eq!(
        edit(&|b| {
            // Node name running to the end of the structure block without a NUL.
            let end = strs;
            for x in &mut b[node.offset() + 4..end] {
                *x = b'a';
            }
        }),
        format!(
            "node name at offset {:#x} is not NUL-terminated within the structure block",
            node.offset()
        )
    );
    assert_eq!(
        edit(&|b| b[node.offset() + 4] = 0xff),
        format!(
            "node name at offset {:#x} is not valid UTF-8",
            node.offset()
        )
    );
    assert_eq!(sb, 0x38);

    // Root cell counts must be one cell.
    let mut b = FdtBuilder::new();
    b.begin("").prop("#address-cells", &[0, 0, 2]).end();
    let blob = b.finish();
    assert_eq!(
        Fdt::new(&blob).unwrap_err().to_string(),
        "root #address-cells is 3 bytes long (expected one 4-byte cell)"
    );
    // An unterminated /memreserve/ list.
    let mut blob = tree(1, 1, |_| {});
    let total = blob.len();
    blob[0x28..total].fill(0xee);
    assert!(matches!(
        Fdt::new(&blob).unwrap_err(),
        FdtError::MemRsvUnterminated { offset: 0x28 } | FdtError::BadToken { .. }
    ));
}

// ---------------------------------------------------------------------------------------------
// Random corruption: nothing may panic or hang.

/// The QEMU blobs padded to 1 MiB; the fuzzer works on the used part (totalsize patched).
fn compact(blob: &[u8]) -> Vec<u8> {
    let h = fdt_check_header(blob).unwrap();
    let used = (h.off_dt_strings + h.size_dt_strings) as usize;
    let mut v = blob[..used].to_vec();
    put(&mut v, 1, used as u32);
    v
}

/// A crafted tree touching every query: aliases, ranges, reserved memory, initrd, NUMA.
fn rich_tree() -> Vec<u8> {
    let mut b = FdtBuilder::new();
    b.memreserve(0x4800_0000, 0x1000);
    b.begin("").addr_size_cells(2, 2).prop_str("model", "rich");
    b.begin("aliases")
        .prop_str("serial0", "/soc/uart@1000")
        .end();
    b.begin("soc")
        .addr_size_cells(1, 1)
        .prop_u32s("ranges", &[0, 0, 0x1000_0000, 0x10_0000]);
    b.begin("uart@1000")
        .prop_u32s("reg", &[0x1000, 0x100])
        .end()
        .end();
    b.begin("memory@40000000")
        .prop_str("device_type", "memory")
        .prop_u32s("reg", &[0, 0x4000_0000, 0, 0x4000_0000, 0, 0, 0, 0])
        .prop_u32s("numa-node-id", &[0])
        .end();
    b.begin("memory@80000000")
        .prop_str("device_type", "memory")
        .prop("hotpluggable", &[])
        .prop_u32s("linux,usable-memory", &[0, 0x8000_0000, 0, 0x1000_0000])
        .end();
    b.begin("reserved-memory")
        .addr_size_cells(2, 2)
        .prop("ranges", &[]);
    b.begin("fw@41000000")
        .prop_u32s("reg", &[0, 0x4100_0000, 0, 0x1000])
        .prop("no-map", &[])
        .end();
    b.begin("pool")
        .prop_u32s("size", &[0, 0x10_0000])
        .prop_u32s("alignment", &[0, 0x1000])
        .prop_u32s("alloc-ranges", &[0, 0x4000_0000, 0, 0x4000_0000])
        .end();
    b.end();
    b.begin("psci")
        .prop_str("method", "hvc")
        .prop_str("compatible", "arm,psci-1.0")
        .end();
    b.begin("cpus").addr_size_cells(1, 0);
    b.begin("cpu@0")
        .prop_str("device_type", "cpu")
        .prop_u32s("reg", &[0])
        .prop_u32s("numa-node-id", &[0])
        .end()
        .end();
    b.begin("distance-map")
        .prop_str("compatible", "numa-distance-map-v1")
        .prop_u32s("distance-matrix", &[0, 0, 10])
        .end();
    b.begin("chosen")
        .prop_str("bootargs", "console=ttyAMA0")
        .prop_str("stdout-path", "serial0:115200n8");
    b.prop_u32s("linux,initrd-start", &[0x4800_0000])
        .prop_u32s("linux,initrd-end", &[0, 0x4810_0000]);
    b.prop_u32s("linux,elfcorehdr", &[0, 0x5000_0000, 0, 0x1000])
        .prop_u32s(
            "linux,usable-memory-range",
            &[0, 0x4000_0000, 0, 0x1000_0000],
        );
    b.prop_u32s("kaslr-seed", &[1, 2])
        .prop_u32s("rng-seed", &[3])
        .end();
    b.end();
    b.finish()
}

/// Calls every query on `bytes`; returns a number so nothing is optimised away.
fn exercise(bytes: &[u8]) -> usize {
    let mut sink = 0usize;
    let mut s = |x: &dyn fmt::Display| sink = sink.wrapping_add(x.to_string().len());
    match fdt_check_header(bytes) {
        Ok(h) => s(&h.totalsize),
        Err(e) => s(&e),
    }
    let fdt = match Fdt::new(bytes) {
        Ok(f) => f,
        Err(e) => {
            s(&e);
            return sink;
        }
    };
    s(&fdt.header().version);
    s(&fdt.root_addr_cells());
    s(&fdt.root_size_cells());
    s(&fdt.machine_name().unwrap_or(""));
    fdt.compatible().for_each(|c| s(&c));
    for (i, (n, depth)) in fdt.nodes().enumerate() {
        s(&depth);
        s(&n.name());
        for p in n.properties() {
            s(&p.name);
            s(&p.value.len());
        }
        s(&n.is_available());
        s(&n.device_type().unwrap_or(""));
        n.compatible().for_each(|c| s(&c));
        // The O(depth * size) queries on the first nodes only, to keep the test quick.
        if i < 24 {
            s(&n.path());
            s(&n.children().count());
            s(&n.parent().map(|p| p.offset()).unwrap_or(0));
            s(&n.address_cells());
            s(&n.size_cells());
            match n.reg() {
                Ok(Some(r)) => r.for_each(|e| s(&e.base)),
                Ok(None) => {}
                Err(d) => s(&d),
            }
            match n.translated_reg_base() {
                Ok(a) => s(&a.map_or(0, |a| a.0)),
                Err(d) => s(&d),
            }
            match n.prop_u32("numa-node-id") {
                Ok(v) => s(&v.unwrap_or(0)),
                Err(d) => s(&d),
            }
            let _ = n.child("memory");
        }
    }
    for path in [
        "/",
        "/chosen",
        "/cpus/cpu@0",
        "/memory",
        "serial0",
        "serial0/x",
        "/soc/uart",
        "//",
        "",
    ] {
        if let Some(n) = fdt.find_node(path) {
            s(&n.path());
        }
    }
    let _ = fdt.alias("serial0");
    let _ = fdt.find_compatible("arm,pl011");
    for item in fdt.memory_scan() {
        match item {
            MemoryScanItem::Range(r) => {
                s(&r.base.0);
                s(&r.end().0);
                s(&r.node.path());
            }
            MemoryScanItem::Diag(d) => s(&d),
        }
    }
    early_init_dt_scan_memory(&fdt, |r| s(&r.size));
    fdt.mem_rsv().for_each(|r| s(&r.size));
    s(&early_init_fdt_reserve_self(&fdt, PhysAddr(0x4400_0000)).size);
    for item in fdt.reserved_memory() {
        match item {
            ReservedMemItem::Region(r) => {
                s(&r.name());
                r.compatible().for_each(|c| s(&c));
                match r.kind {
                    ReservedMemKind::Static(regs) => regs.for_each(|e| s(&e.size)),
                    ReservedMemKind::Dynamic {
                        size,
                        alignment,
                        alloc_ranges,
                    } => {
                        s(&size);
                        s(&alignment.unwrap_or(0));
                        alloc_ranges.into_iter().flatten().for_each(|e| s(&e.size));
                    }
                }
            }
            ReservedMemItem::Diag(d) => s(&d),
        }
    }
    fdt_scan_reserved_mem(&fdt, |r| s(&r.no_map));
    if let Some(c) = fdt.chosen() {
        match c.bootargs() {
            Ok(b) => s(&b.unwrap_or("")),
            Err(d) => s(&d),
        }
        s(&c.stdout_path().unwrap_or(""));
        match c.initrd() {
            Ok(i) => s(&i.map_or(0, |i| i.size())),
            Err(d) => s(&d),
        }
        match c.elfcorehdr() {
            Ok(e) => s(&e.map_or(0, |e| e.size)),
            Err(d) => s(&d),
        }
        match c.usable_memory_range() {
            Ok(r) => r
                .into_iter()
                .flatten()
                .take(MAX_USABLE_RANGES)
                .for_each(|e| s(&e.size)),
            Err(d) => s(&d),
        }
        s(&c.kaslr_seed().is_some());
        s(&c.rng_seed().is_some());
    }
    match fdt.stdout() {
        Ok(Some(o)) => {
            s(&o.path);
            match o.base() {
                Ok(b) => s(&b.map_or(0, |b| b.0)),
                Err(d) => s(&d),
            }
        }
        Ok(None) => {}
        Err(d) => s(&d),
    }
    // What the arch's PSCI and CPU probing read (arch/aarch64/kernel/{psci,smp}.rs).
    let psci = fdt.root().child("psci");
    if let Some(p) = psci.or_else(|| fdt.find_compatible("arm,psci-1.0")) {
        s(&p.prop_str("method").unwrap_or(""));
        p.compatible().for_each(|c| s(&c));
    }
    for cpu in for_each_of_cpu_node(&fdt) {
        match of_get_cpu_hwid(&cpu) {
            Ok(h) => s(&h),
            Err(d) => s(&d),
        }
        match of_node_to_nid(&cpu.node) {
            Ok(n) => s(&n.unwrap_or(0)),
            Err(d) => s(&d),
        }
        s(&cpu.node.prop_str("enable-method").unwrap_or(""));
    }
    match of_numa_find_distance_map(&fdt) {
        Ok(Some(m)) => {
            m.entries().for_each(|d| s(&d.distance));
            if let Err(d) = m.validate() {
                s(&d);
            }
        }
        Ok(None) => {}
        Err(d) => s(&d),
    }
    let _ = take_captured();
    sink
}

/// Where the property values of a blob lie: corrupting only those keeps the blob valid and
/// exercises the queries on hostile values.
fn value_ranges(blob: &[u8]) -> Vec<(usize, usize)> {
    let fdt = Fdt::new(blob).unwrap();
    let start = blob.as_ptr() as usize;
    fdt.nodes()
        .flat_map(|(n, _)| n.properties().collect::<Vec<_>>())
        .filter(|p| !p.value.is_empty())
        .map(|p| (p.value.as_ptr() as usize - start, p.value.len()))
        .collect()
}

/// Applies 1..=4 random corruptions of the kinds that reach different checks.
fn corrupt(rng: &mut Rng, base: &[u8], values: &[(usize, usize)]) -> Vec<u8> {
    const WORDS: [u32; 12] = [
        0,
        1,
        2,
        3,
        4,
        9,
        0xffff_ffff,
        0x7fff_ffff,
        0x8000_0000,
        0x10,
        0x28,
        0xd00d_feed,
    ];
    let mut b = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        if b.is_empty() {
            break;
        }
        let len = b.len();
        match rng.below(10) {
            8 | 9 if !values.is_empty() => {
                // Inside a property value: a valid blob with hostile contents.
                let (off, n) = values[rng.below(values.len())];
                let i = off + rng.below(n) / 4 * 4;
                let w = match rng.below(3) {
                    0 => WORDS[rng.below(WORDS.len())],
                    1 => rng.next() as u32 % 4,
                    _ => rng.next() as u32,
                };
                if i + 4 <= len.min(off + n) {
                    b[i..i + 4].copy_from_slice(&w.to_be_bytes());
                } else if i < len {
                    b[i] = rng.next() as u8;
                }
            }
            0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(len);
                b[i] = rng.next() as u8;
            }
            2 | 3 => {
                // A token-sized word at an aligned offset: tokens, lengths, name offsets.
                let i = rng.below(len / 4) * 4;
                let w = if rng.below(2) == 0 {
                    WORDS[rng.below(WORDS.len())]
                } else {
                    rng.next() as u32 % 0x200
                };
                if i + 4 <= len {
                    b[i..i + 4].copy_from_slice(&w.to_be_bytes());
                }
            }
            4 => b.truncate(rng.below(len)),
            5 if len > 40 => {
                // Truncate and make the header agree, so the walk meets the cut.
                let n = 40 + rng.below(len.saturating_sub(40));
                b.truncate(n);
                put(&mut b, 1, n as u32);
                if rng.below(2) == 0 {
                    let off = u32::from_be_bytes(b[8..12].try_into().unwrap()) as usize;
                    put(&mut b, 9, n.saturating_sub(off) as u32);
                }
            }
            5 | 6 => {
                // A header field.
                let w = if rng.below(2) == 0 {
                    WORDS[rng.below(WORDS.len())]
                } else {
                    rng.next() as u32 % (len as u32 + 64)
                };
                if len >= 40 {
                    put(&mut b, rng.below(10), w);
                }
            }
            _ => {
                // Copy a chunk elsewhere: duplicated or misplaced tokens.
                let n = 1 + rng.below(64);
                let from = rng.below(len);
                let to = rng.below(len);
                let n = n.min(len - from).min(len - to);
                b.copy_within(from..from + n, to);
            }
        }
    }
    b
}

#[test]
fn random_corruption_never_panics_or_hangs() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let bases = [
            compact(A_128M),
            compact(C_4G),
            compact(F_NUMA2),
            G_RSV.to_vec(),
            rich_tree(),
        ];
        for b in &bases {
            assert!(Fdt::new(b).is_ok());
        }
        let values: Vec<_> = bases.iter().map(|b| value_ranges(b)).collect();
        let mut rng = Rng(0x5eed_f00d_dead_beef);
        let (mut accepted, mut rejected, mut failures) = (0, 0, Vec::new());
        const PER_BASE: usize = 4000;
        for (k, base) in bases.iter().enumerate() {
            for i in 0..PER_BASE {
                let blob = corrupt(&mut rng, base, &values[k]);
                if Fdt::new(&blob).is_ok() {
                    accepted += 1;
                } else {
                    rejected += 1;
                }
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exercise(&blob)));
                if r.is_err() {
                    failures.push((k, i));
                }
            }
        }
        // Random bytes behind a plausible header.
        for i in 0..500 {
            let n = 120 + rng.below(400);
            let mut blob: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            for (w, v) in [
                (0, FDT_MAGIC),
                (1, n as u32),
                (2, 56),
                (3, (n / 2) as u32),
                (4, 40),
                (5, 17),
                (6, 16),
                (8, (n / 2 - 56) as u32),
                (9, (n / 2 - 56) as u32),
            ] {
                put(&mut blob, w, v);
            }
            if std::panic::catch_unwind(|| exercise(&blob)).is_err() {
                failures.push((99, i));
            }
        }
        tx.send((accepted, rejected, failures)).unwrap();
    });
    let (accepted, rejected, failures) = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("corruption test hung (or its thread panicked)");
    assert!(failures.is_empty(), "panics on (base, case): {failures:?}");
    // Both paths must really be exercised: corrupt blobs rejected, and queries run on blobs
    // that pass validation but carry corrupted values.
    println!("corruption cases: {accepted} accepted, {rejected} rejected, none panicked");
    assert!(
        accepted > 3000 && rejected > 3000,
        "accepted {accepted}, rejected {rejected}"
    );
}

/// The PSCI node as the arch's psci_dt_init() probing reads it, and the text of its problem.
#[test]
fn psci_node_method_and_its_problem() {
    let mut b = FdtBuilder::new();
    b.begin("");
    b.begin("psci")
        .prop_str("compatible", "arm,psci-1.0")
        .prop_str("method", "smc")
        .end();
    b.begin("firmware")
        .begin("psci2")
        .prop_str("method", "svc")
        .end()
        .end();
    b.end();
    let blob = b.finish();
    let fdt = Fdt::new(&blob).unwrap();
    let psci = fdt.root().child("psci").unwrap();
    assert_eq!(fdt.find_compatible("arm,psci-1.0"), Some(psci));
    assert_eq!(psci.prop_str("method"), Some("smc"));
    let other = fdt.find_node("/firmware/psci2").unwrap();
    let method = other.prop_str("method").unwrap();
    assert_eq!(
        other
            .diag(Severity::Error, "method", Problem::UnknownMethod(method))
            .to_string(),
        "/firmware/psci2: method: invalid \"method\" property: svc"
    );
}
