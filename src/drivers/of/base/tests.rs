//! Host tests of the CPU-node reader: which nodes count as CPUs, and their hardware ids read
//! with `/cpus`'s cells. (What an id means — an MPIDR within MPIDR_HWID_BITMASK — is the
//! arch's check, in arch/aarch64/kernel/smp.rs.)

use super::*;
use crate::drivers::of::of_numa::of_node_to_nid;
use crate::drivers::of::test_builder::tree;

#[test]
fn cpu_nodes_and_their_hwids() {
    let blob = tree(2, 2, |b| {
        b.begin("cpus").addr_size_cells(2, 0);
        b.begin("cpu-map").begin("cluster0").end().end();
        b.begin("cpu@0")
            .prop_str("device_type", "cpu")
            .prop_u32s("reg", &[0, 0])
            .prop_str("enable-method", "psci")
            .end();
        b.begin("cpu@100")
            .prop_str("device_type", "cpu")
            .prop_u32s("reg", &[0, 0x100])
            .prop_u32s("numa-node-id", &[1])
            .end();
        b.begin("cpu@2")
            .prop_str("device_type", "cpu")
            .prop_str("status", "disabled")
            .prop_u32s("reg", &[0, 2])
            .end();
        b.begin("cpu@f000000000")
            .prop_str("device_type", "cpu")
            .prop_u32s("reg", &[0xf0, 0])
            .end(); // Aff3
        b.begin("cpu@1000000")
            .prop_str("device_type", "cpu")
            .prop_u32s("reg", &[0, 0x100_0000])
            .end(); // bits 24..31: RES0 in an MPIDR
        b.begin("cpu@3").prop_str("device_type", "cpu").end();
        b.end();
    });
    let fdt = Fdt::new(&blob).unwrap();
    // cpu-map is no CPU, cpu@2 is disabled.
    let cpus: Vec<CpuNode> = for_each_of_cpu_node(&fdt).collect();
    assert_eq!(
        cpus.iter().map(|c| c.node.name()).collect::<Vec<_>>(),
        ["cpu@0", "cpu@100", "cpu@f000000000", "cpu@1000000", "cpu@3"]
    );
    let hwids: Vec<_> = cpus.iter().map(of_get_cpu_hwid).collect();
    assert_eq!(
        hwids[..4],
        [Ok(0), Ok(0x100), Ok(0xf0_0000_0000), Ok(0x100_0000)]
    );
    assert_eq!(
        hwids[4].unwrap_err().to_string(),
        "/cpus/cpu@3: reg: missing"
    );
    let nids: Vec<_> = cpus
        .iter()
        .map(|c| of_node_to_nid(&c.node).unwrap())
        .collect();
    assert_eq!(nids, [None, Some(1), None, None, None]);
    assert_eq!(cpus[0].node.prop_str("enable-method"), Some("psci"));
    // The arch's MPIDR check names the CPU and the bits (arch/aarch64/kernel/smp.rs).
    let d = cpus[3]
        .node
        .diag(Severity::Error, "reg", Problem::InvalidMpidr(0x100_0000));
    assert_eq!(
        d.to_string(),
        "/cpus/cpu@1000000: reg: invalid reg property 0x1000000 (bits outside MPIDR affinity)"
    );
}

#[test]
fn cpu_hwid_cells_and_lengths() {
    let blob = tree(2, 2, |b| {
        b.begin("cpus").prop_u32s("#address-cells", &[3]);
        b.begin("cpu@0").prop_u32s("reg", &[0, 0, 0]).end();
        b.end();
    });
    let fdt = Fdt::new(&blob).unwrap();
    let cpu = for_each_of_cpu_node(&fdt).next().unwrap();
    assert!(matches!(
        of_get_cpu_hwid(&cpu).unwrap_err().problem,
        Problem::CellsUnsupported { cells: 3, .. }
    ));
    let blob = tree(2, 2, |b| {
        b.begin("cpus").prop_u32s("#address-cells", &[2]);
        b.begin("cpu@0").prop_u32s("reg", &[0]).end();
        b.end();
    });
    let fdt = Fdt::new(&blob).unwrap();
    let cpu = for_each_of_cpu_node(&fdt).next().unwrap();
    assert!(matches!(
        of_get_cpu_hwid(&cpu).unwrap_err().problem,
        Problem::BadLength { len: 4, .. }
    ));
    // No /cpus: no CPUs.
    let blob = tree(2, 2, |_| {});
    assert_eq!(for_each_of_cpu_node(&Fdt::new(&blob).unwrap()).count(), 0);
}
