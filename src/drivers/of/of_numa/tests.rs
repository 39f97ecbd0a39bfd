//! Host tests of the device tree's NUMA description: the distance map's triples and checks.
//! (How numa_init() applies it is tested in mm/numa/tests.rs.)

use super::*;
use crate::drivers::of::test_builder::tree;

#[test]
fn distance_map_entries_and_checks() {
    let blob = tree(2, 2, |b| {
        b.begin("distance-map")
            .prop_str("compatible", "numa-distance-map-v1");
        b.prop_u32s("distance-matrix", &[0, 0, 10, 0, 1, 20, 1, 0, 20, 1, 1, 10])
            .end();
    });
    let fdt = Fdt::new(&blob).unwrap();
    let map = of_numa_find_distance_map(&fdt).unwrap().unwrap();
    assert_eq!(map.entries().count(), 4);
    assert_eq!(
        map.entries().nth(1),
        Some(Distance {
            from: 0,
            to: 1,
            distance: 20
        })
    );
    assert!(map.validate().is_ok());

    let blob = tree(2, 2, |b| {
        b.begin("distance-map")
            .prop_str("compatible", "numa-distance-map-v1");
        b.prop_u32s("distance-matrix", &[0, 0, 10, 0, 1, 10]).end();
        b.begin("other-map")
            .prop_str("compatible", "numa-distance-map-v1")
            .end();
    });
    let fdt = Fdt::new(&blob).unwrap();
    let e = of_numa_find_distance_map(&fdt)
        .unwrap()
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "/distance-map: distance-matrix: Invalid distance[node0 -> node1] = 10"
    );
    let blob = tree(2, 2, |b| {
        b.begin("distance-map")
            .prop_str("compatible", "numa-distance-map-v1")
            .end();
    });
    let e = of_numa_find_distance_map(&Fdt::new(&blob).unwrap()).unwrap_err();
    assert_eq!(e.problem, Problem::NoDistanceMatrix);
}

#[test]
fn cpu_node_ids() {
    let blob = tree(2, 2, |b| {
        b.begin("cpus").prop_u32s("#address-cells", &[1]);
        b.begin("cpu@0")
            .prop_str("device_type", "cpu")
            .prop_u32s("numa-node-id", &[3])
            .end();
        b.begin("cpu@1")
            .prop_str("device_type", "cpu")
            .prop_u32s("numa-node-id", &[0, 1])
            .end();
        b.end();
    });
    let fdt = Fdt::new(&blob).unwrap();
    let cpus = fdt.find_node("/cpus").unwrap();
    let mut c = cpus.children();
    assert_eq!(of_node_to_nid(&c.next().unwrap()), Ok(Some(3)));
    assert!(of_node_to_nid(&c.next().unwrap()).is_err());
}
