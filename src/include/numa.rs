//! NUMA sizes. Mirrors Linux 6.1's include/linux/numa.h (and CONFIG_NR_CPUS from
//! include/linux/threads.h), with arm64's default configuration.

/// Linux: CONFIG_NODES_SHIFT (arm64's default).
pub const NODES_SHIFT: u32 = 4;
/// Linux: MAX_NUMNODES — also the node of regions nobody assigned a node to.
pub const MAX_NUMNODES: i32 = 1 << NODES_SHIFT;
/// Linux: NUMA_NO_NODE.
pub const NUMA_NO_NODE: i32 = -1;
/// Linux: CONFIG_NR_CPUS (arm64's default).
pub const NR_CPUS: usize = 256;
