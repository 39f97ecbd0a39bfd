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
use arm64_mm::mm::memblock::{Memblock, MemblockFlags};
use arm64_mm::mm::mmzone::{NodeDataMap, PglistData};
use arm64_mm::mm::numa::arch_numa_init;
use arm64_mm::mm::numa::NumaInfo;
use arm64_mm::mm::PhysAddr;
use arm64_mm_fuzz::check_memblock;
use core::fmt::Write;
use core::mem::size_of;
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::collections::HashMap;

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
    let mut cpu_nids: Vec<Option<u32>> = Vec::new();
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
    // NUMA: arch_numa_init() (of_numa_init(), the nodes' pg_data_t allocated from memblock,
    // the fake node when the tree's description fails) when memblock has room for every
    // node's data — Linux panics otherwise, as setup_node_data() does here — else
    // of_numa_init() alone.
    let mut numa = NumaInfo::new();
    let before = mb.memory().total_size();
    let nd = size_of::<PglistData>().next_multiple_of(64) as u64 + 64;
    let room = mb
        .find_in_range_node(
            nd * (MAX_NUMNODES as u64 + 1),
            64,
            PhysAddr(0),
            PhysAddr(0),
            -1,
            MemblockFlags::NONE,
        )
        .is_some();
    let ok = if room {
        let mut nodes = NodeDataMap::new();
        let mut init = |numa: &mut NumaInfo, mb: &mut Memblock| {
            of_numa_init(numa, &fdt, cpu_nids.iter().copied(), mb)
        };
        arch_numa_init(&mut numa, Some(&mut init), &mut mb, &mut nodes, scratch_va);
        assert!(
            !numa.node_online_map.is_empty() || mb.memory().total_size() == 0,
            "no node online"
        );
        for nid in numa.node_online_map.iter() {
            let pgdat = nodes.get(nid).expect("an online node has its pg_data_t");
            std::hint::black_box(pgdat.node_start_pfn);
        }
        for r in mb.memory().regions().iter().filter(|r| r.size > 0) {
            assert!(
                numa.node_online_map.isset(r.nid),
                "memory {r:?} on no online node"
            );
        }
        true
    } else {
        of_numa_init(&mut numa, &fdt, cpu_nids.iter().copied(), &mut mb).is_ok()
    };
    if ok {
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
    check_memblock(&mb).expect("after NUMA init");
    assert_eq!(mb.memory().total_size(), before, "NUMA init changed memory");
    for r in mb.memory().regions().iter().filter(|r| r.size > 0) {
        assert!(r.nid >= 0 && r.nid <= MAX_NUMNODES, "region {r:?}");
    }
    std::hint::black_box(out);
}

const CHUNK: u64 = 1 << 16;

thread_local! {
    /// Host memory standing in for the physical pages NUMA init writes (its pg_data_t's),
    /// a 64 KiB window plus room for one pg_data_t per 64 KiB of physical address, made on
    /// first use and dropped after each input.
    static SCRATCH: RefCell<HashMap<u64, Vec<u64>>> = RefCell::new(HashMap::new());
}

/// `__va()` for arch_numa_init(): linear within each 64 KiB window, which holds a whole
/// pg_data_t from any address in it.
fn scratch_va(pa: PhysAddr) -> *mut u8 {
    let key = pa.0 & !(CHUNK - 1);
    let words = (CHUNK as usize + size_of::<PglistData>() + 64) / 8;
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let buf = s.entry(key).or_insert_with(|| vec![0u64; words]);
        buf.as_mut_ptr()
            .cast::<u8>()
            .wrapping_add((pa.0 - key) as usize)
    })
}

fuzz_target!(|data: &[u8]| {
    run(data);
    SCRATCH.with(|s| s.borrow_mut().clear());
    arm64_mm::kernel::printk::take_captured();
});
