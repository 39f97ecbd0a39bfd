//! Host unit tests of `src/mm/numa.rs` (`cargo hosttest`), on the shared scaffold
//! `mm::testing` (simulated RAM and a machine builder).

use super::*;
use crate::drivers::of::libfdt::Fdt;
use crate::drivers::of::test_builder::{of_map_cpus_to_nodes, of_numa_init_fn};
use crate::kernel::printk::take_captured;
use crate::mm::testing::{__va, Backing, Machine, SimRam};

const SZ_1G: u64 = 1 << 30;

fn lines(s: &str) -> Vec<&str> {
    s.lines()
        .map(|l| l.strip_prefix("[    0.000000] ").unwrap_or(l))
        .collect()
}

/// Two or more memory nodes, CPUs and an optional distance matrix.
fn numa_fdt(mems: &[(u64, u64, Option<u32>)], cpus: &[Option<u32>], dist: &[u32]) -> Vec<u8> {
    crate::drivers::of::test_builder::numa_machine_fdt(mems, cpus, dist)
}

/// What arch_numa_init() printed and set up on the machine a device tree describes.
struct NumaBoot {
    out: String,
    numa: NumaInfo,
    nodes: NodeDataMap,
    mb: Memblock,
    /// Holds NODE_DATA.
    _ram: SimRam,
}

/// arch_numa_init() on the machine `blob` describes: memblock from its memory nodes, the
/// top MiB of each backed (where NODE_DATA goes).
fn boot_numa(blob: &[u8]) -> NumaBoot {
    let fdt = Fdt::new(blob).unwrap();
    let m = Machine::from_dtb(blob)
        .backed(Backing::Top(1 << 20))
        .memblock();
    let (mut mb, _ram) = (m.mb, m.ram);
    let (mut numa, mut nodes) = (NumaInfo::new(), NodeDataMap::new());
    take_captured();
    arch_numa_init(
        &mut numa,
        Some(&mut of_numa_init_fn(&fdt)),
        &mut mb,
        &mut nodes,
        __va,
    );
    NumaBoot {
        out: take_captured(),
        numa,
        nodes,
        mb,
        _ram,
    }
}

#[test]
fn distance_map_sets_both_directions_and_defaults() {
    let blob = numa_fdt(
        &[
            (0x4000_0000, SZ_1G, Some(0)),
            (0x8000_0000, SZ_1G, Some(1)),
            (0xc000_0000, SZ_1G, Some(2)),
        ],
        &[Some(0), Some(1), Some(2)],
        // Only one direction given for 0<->1 and 0<->2; 1->2 and 2->1 differ.
        &[
            0, 0, 10, 0, 1, 15, 0, 2, 30, 1, 1, 10, 1, 2, 25, 2, 1, 35, 2, 2, 10,
        ],
    );
    let NumaBoot {
        out,
        mut numa,
        nodes,
        mb: _,
        _ram,
    } = boot_numa(&blob);
    assert!(
        out.contains("OF: NUMA: parsing numa-distance-map-v1"),
        "{out}"
    );
    assert_eq!(numa.nr_online_nodes(), 3);
    assert_eq!(numa.node_distance(0, 1), 15);
    assert_eq!(numa.node_distance(1, 0), 15, "B->A defaults to A->B");
    assert_eq!(numa.node_distance(2, 0), 30);
    assert_eq!(numa.node_distance(1, 2), 25);
    assert_eq!(
        numa.node_distance(2, 1),
        35,
        "an explicit B->A (B > A) stays"
    );
    assert_eq!(numa.node_distance(2, 2), 10);
    assert_eq!(
        numa.node_distance(3, 4),
        REMOTE_DISTANCE,
        "unlisted pairs default"
    );
    assert_eq!(numa.node_distance(99, 99), LOCAL_DISTANCE, "out of table");
    // Every NODE_DATA lands on its own node, at the top.
    for nid in 0..3 {
        assert_eq!(nodes.get(nid).unwrap().node_id, nid);
    }
    assert!(!out.contains("on node"), "{out}");
    of_map_cpus_to_nodes(&mut numa, &Fdt::new(&blob).unwrap());
    assert_eq!((numa.cpu_to_node(0), numa.cpu_to_node(2)), (0, 2));
    assert!(numa.node_has_cpus(1) && !numa.node_has_cpus(3));
}

#[test]
fn invalid_distances_fall_back_to_a_fake_node() {
    let blob = numa_fdt(
        &[(0x4000_0000, SZ_1G, Some(0)), (0x8000_0000, SZ_1G, Some(1))],
        &[],
        &[0, 0, 10, 0, 1, 10],
    );
    let NumaBoot {
        out,
        numa,
        nodes: _,
        mb,
        _ram,
    } = boot_numa(&blob);
    let l = lines(&out);
    assert_eq!(l[0], "OF: NUMA: parsing numa-distance-map-v1");
    assert_eq!(l[1], "OF: NUMA: Invalid distance[node0 -> node1] = 10");
    assert_eq!(
        l[2],
        "NUMA: Faking a node at [mem 0x0000000040000000-0x00000000bfffffff]"
    );
    assert!(l[3].starts_with("NUMA: NODE_DATA [mem 0xbf"), "{out}");
    assert_eq!(numa.nr_online_nodes(), 1);
    assert!(numa.numa_off);
    assert!(mb.memory().regions().iter().all(|r| r.nid == 0));
    assert_eq!(numa.node_distance(0, 1), REMOTE_DISTANCE);
}

#[test]
fn bad_node_id_and_memoryless_cpu_node() {
    // A memory node id beyond MAX_NUMNODES stops of_numa.
    let blob = numa_fdt(&[(0x4000_0000, SZ_1G, Some(16))], &[], &[]);
    let NumaBoot {
        out,
        numa: _,
        nodes: _,
        mb: _,
        _ram,
    } = boot_numa(&blob);
    let l = lines(&out);
    assert_eq!(l[0], "OF: NUMA: Node id 16 exceeds maximum value");
    assert_eq!(l[1], "OF: NUMA: bad property in memory node");
    assert_eq!(
        l[2],
        "NUMA: Faking a node at [mem 0x0000000040000000-0x000000007fffffff]"
    );

    // A CPU on node 1 with no memory there: node 1 is memory-less, and its NODE_DATA
    // comes from node 0.
    let blob = numa_fdt(&[(0x4000_0000, SZ_1G, Some(0))], &[Some(0), Some(1)], &[]);
    let NumaBoot {
        out,
        numa,
        nodes,
        mb: _,
        _ram,
    } = boot_numa(&blob);
    let l = lines(&out);
    assert!(l[0].starts_with("NUMA: NODE_DATA [mem 0x7f"), "{out}");
    assert_eq!(l[1], "NUMA: Initmem setup node 1 [<memory-less node>]");
    assert!(l[2].starts_with("NUMA: NODE_DATA [mem 0x7f"), "{out}");
    assert_eq!(l[3], "NUMA: NODE_DATA(1) on node 0");
    assert_eq!(numa.nr_online_nodes(), 2);
    let n1 = nodes.get(1).unwrap();
    assert_eq!((n1.node_start_pfn, n1.node_spanned_pages), (Pfn(0), 0));
}

#[test]
fn numa_off_parameter() {
    assert_eq!(numa_parse_early_param(None), Err("expected a value"));
    let mut n = NumaInfo::new();
    n.numa_off = true;
    n.early_map_cpu_to_node(1, 1);
    assert_eq!(n.cpu_to_node(1), 0, "numa=off maps every CPU to node 0");
    n.numa_off = false;
    n.early_map_cpu_to_node(2, 1);
    n.early_map_cpu_to_node(3, 99);
    assert_eq!(
        (n.cpu_to_node(2), n.cpu_to_node(3), n.cpu_to_node(200)),
        (1, 0, 0)
    );
}

#[test]
fn set_distance_validation() {
    let mut n = NumaInfo::new();
    take_captured();
    n.numa_set_distance(0, 1, 30);
    n.numa_alloc_distance();
    n.numa_set_distance(0, 16, 30);
    n.numa_set_distance(1, 1, 11);
    n.numa_set_distance(0, 1, 256);
    n.numa_set_distance(0, 1, 30);
    let out = take_captured();
    let l = lines(&out);
    assert_eq!(l[0], "NUMA: Warning: distance table not allocated yet");
    assert_eq!(
        l[1],
        "NUMA: Warning: node ids are out of bound, from=0 to=16 distance=30"
    );
    assert_eq!(
        l[2],
        "NUMA: Warning: invalid distance parameter, from=1 to=1 distance=11"
    );
    assert_eq!(
        l[3],
        "NUMA: Warning: invalid distance parameter, from=0 to=1 distance=256"
    );
    assert_eq!((n.node_distance(0, 1), n.node_distance(1, 0)), (30, 20));
}
