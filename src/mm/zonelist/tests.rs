//! Host unit tests of `src/mm/zonelist.rs` (`cargo hosttest`).

use super::*;

fn numa_with(distances: &[(i32, i32, u32)], cpus: &[i32], nodes: i32) -> NumaInfo {
    let mut n = NumaInfo::new();
    n.numa_off = false;
    // What numa_init() leaves: a distance table, the nodes online.
    n.node_online_map = Nodemask::NONE;
    for nid in 0..nodes {
        n.node_online_map.set(nid);
    }
    n.numa_alloc_distance();
    for &(a, b, d) in distances {
        n.numa_set_distance(a, b, d);
    }
    for (cpu, &nid) in cpus.iter().enumerate() {
        n.early_map_cpu_to_node(cpu, nid);
    }
    n
}

#[test]
fn find_next_best_node_penalties_and_round_robin() {
    // Four nodes all 20 apart; CPUs only on node 0 and 1.
    let numa = numa_with(&[], &[0, 1], 4);
    let n_memory = Nodemask(0b1111);
    let mut node_load = [0u32; NN];
    let mut orders = Vec::new();
    for local in 0..4 {
        let mut used = Nodemask::NONE;
        let mut order = Vec::new();
        let mut prev = local;
        while let Some(n) = find_next_best_node(&numa, n_memory, local, &mut used, &node_load) {
            if numa.node_distance(local, n) != numa.node_distance(local, prev) {
                node_load[n as usize] += 1;
            }
            order.push(n);
            prev = n;
        }
        orders.push(order);
    }
    // Node 0: headless 2 and 3 before 1 (the CPU penalty); 2 before 3 (lower id).
    assert_eq!(orders[0], vec![0, 2, 3, 1]);
    // Node 1: 2 now has load 1, so 3 heads the group; nodes below 1 pay +1.
    assert_eq!(orders[1], vec![1, 3, 2, 0]);
    // Node 2: 3 has load 1 too; 0 and 1 are below 2 and have CPUs.
    assert_eq!(orders[2], vec![2, 3, 0, 1]);
    assert_eq!(orders[3], vec![3, 2, 0, 1]);
}
