//! Fuzz target `dtb`: arbitrary and mutated device tree blobs (seeded with QEMU's own trees)
//! through what setup_arch() does with one on the host-built side: libfdt's header check,
//! the early scan (memory nodes, hotplug, `/chosen`: initrd, bootargs, stdout-path,
//! usable-memory-range) into memblock, the tree reserving itself, `/memreserve/`,
//! `/reserved-memory` (static and dynamic), `linux,elfcorehdr`, the CPU nodes and their
//! MPIDRs, the PSCI node and its `method` (psci_dt_probe()'s lookups; the PSCI code itself is
//! arch-only), then of_numa_init()'s node ids and distance map into memblock and NumaInfo.
//! Either the blob is refused with an error, or memblock satisfies its invariants and the
//! NUMA description is consistent. No panic, no hang; out-of-bounds reads panic in Rust.
#![no_main]

use arm64_mm::drivers::of::base::{for_each_of_cpu_node, of_get_cpu_hwid};
use arm64_mm::drivers::of::fdt::{
    early_init_dt_scan_nodes, early_init_fdt_reserve_self, early_init_fdt_scan_reserved_mem,
    MemoryScanItem,
};
use arm64_mm::drivers::of::libfdt::Fdt;
use arm64_mm::drivers::of::of_numa::{of_node_to_nid, of_numa_init};
use arm64_mm::drivers::of::reserved_mem::ReservedMemItem;
use arm64_mm::include::numa::MAX_NUMNODES;
use arm64_mm::mm::memblock::Memblock;
use arm64_mm::mm::numa::NumaInfo;
use arm64_mm::mm::PhysAddr;
use arm64_mm_fuzz::check_memblock;
use core::fmt::Write;
use libfuzzer_sys::fuzz_target;

/// QEMU's PSCI bindings, as arch/aarch64/kernel/psci.rs matches them.
const PSCI: [&str; 3] = ["arm,psci", "arm,psci-0.2", "arm,psci-1.0"];

fn run(data: &[u8]) {
    let Ok(fdt) = Fdt::new(data) else {
        return;
    };
    let mut out = String::new();
    let _ = write!(out, "{:?} {:?}", fdt.header(), fdt.machine_name());
    let mut mb = Memblock::new();
    // setup_machine_fdt(): the blob reserves itself, the command line, the early scan.
    let own = early_init_fdt_reserve_self(&fdt, PhysAddr(0x4800_0000));
    let _ = mb.reserve(own.base, own.size);
    if let Some(c) = fdt.chosen() {
        let _ = write!(out, "{:?} {:?}", c.bootargs(), c.stdout_path());
        let _ = write!(out, "{:?} {:?}", c.kaslr_seed(), c.rng_seed());
    }
    if let Ok(Some(s)) = fdt.stdout() {
        let _ = write!(out, "{:?}", s.base());
    }
    let scan = early_init_dt_scan_nodes(&fdt, &mut mb);
    check_memblock(&mb).expect("after the early scan");
    if let Some(i) = scan.initrd {
        assert!(i.start <= i.end, "initrd {i:?}");
    }
    for item in fdt.memory_scan() {
        match item {
            MemoryScanItem::Range(r) => {
                let _ = write!(out, "{} {:?} {}", r.node.path(), r.nid, r.end().0);
            }
            MemoryScanItem::Diag(d) => d.print("fuzz: "),
        }
    }
    for item in fdt.reserved_memory() {
        match item {
            ReservedMemItem::Region(r) => {
                let _ = write!(out, "{}", r.name());
                for c in r.compatible() {
                    out.push_str(c);
                }
            }
            ReservedMemItem::Diag(d) => d.print("fuzz: "),
        }
    }
    early_init_fdt_scan_reserved_mem(&fdt, &mut mb);
    check_memblock(&mb).expect("after the reservations");
    // The CPUs and PSCI.
    let mut cpu_nids = Vec::new();
    for cpu in for_each_of_cpu_node(&fdt) {
        match of_get_cpu_hwid(&cpu) {
            Ok(hwid) => {
                let _ = write!(out, "{hwid:#x} {:?}", cpu.node.prop_str("enable-method"));
                if let Ok(nid) = of_node_to_nid(&cpu.node) {
                    cpu_nids.push(nid);
                }
            }
            Err(d) => d.print("fuzz: "),
        }
    }
    let psci = fdt
        .root()
        .child("psci")
        .filter(|n| n.compatible().any(|c| PSCI.contains(&c)))
        .or_else(|| PSCI.iter().find_map(|c| fdt.find_compatible(c)));
    if let Some(n) = psci {
        let _ = write!(out, "{:?} {}", n.prop_str("method"), n.path());
    }
    // of_numa_init(), as arch_numa_init() runs it.
    let mut numa = NumaInfo::new();
    let before = mb.memory().total_size();
    if of_numa_init(&mut numa, &fdt, cpu_nids.into_iter(), &mut mb).is_ok() {
        for a in numa.numa_nodes_parsed.iter() {
            assert!((0..MAX_NUMNODES).contains(&a), "node {a}");
            for b in numa.numa_nodes_parsed.iter() {
                let d = numa.node_distance(a, b);
                if a == b {
                    assert_eq!(d, 10, "distance {a}->{a}");
                } else {
                    assert!(d > 10, "distance {a}->{b} is {d}");
                }
            }
        }
    }
    check_memblock(&mb).expect("after of_numa_init");
    assert_eq!(mb.memory().total_size(), before, "NUMA init changed memory");
    for r in mb.memory().regions().iter().filter(|r| r.size > 0) {
        assert!(r.nid >= 0 && r.nid <= MAX_NUMNODES, "region {r:?}");
    }
    std::hint::black_box(out);
}

fuzz_target!(|data: &[u8]| {
    run(data);
    arm64_mm::kernel::printk::take_captured();
});
