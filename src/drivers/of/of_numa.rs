//! NUMA from the device tree (Linux: drivers/of/of_numa.c): the `numa-node-id` of CPU and
//! memory nodes and the `numa-distance-map-v1` matrix, handed to mm::numa as plain values
//! through its interface (numa_add_memblk(), numa_set_distance(), `numa_nodes_parsed`), as
//! Linux's of_numa.c does through asm/numa.h. mm::numa never reads the tree itself.

// Without `alloc` a diagnostic cannot be boxed; it is returned by value on cold paths only.
#![allow(clippy::result_large_err)]

use super::libfdt::{be32, Diagnostic, Fdt, Node, Problem, Severity};
use crate::include::numa::MAX_NUMNODES;
use crate::mm::memblock::Memblock;
use crate::mm::numa::{numa_add_memblk, NumaError, NumaInfo, LOCAL_DISTANCE};

/// Linux: of_node_to_nid() for a CPU node — its own `numa-node-id`, if present; a malformed
/// one is a problem (the arch then drops the CPU).
pub fn of_node_to_nid<'a>(node: &Node<'a>) -> Result<Option<u32>, Diagnostic<'a>> {
    node.prop_u32("numa-node-id")
}

/// One `distance-matrix` triple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Distance {
    pub from: u32,
    pub to: u32,
    pub distance: u32,
}

/// A `numa-distance-map-v1` node.
#[derive(Clone, Copy, Debug)]
pub struct DistanceMap<'a> {
    pub node: Node<'a>,
    matrix: &'a [u8],
}

impl<'a> DistanceMap<'a> {
    /// The triples; a trailing partial triple is ignored (Linux: `i + 2 < entry_count`).
    pub fn entries(&self) -> impl Iterator<Item = Distance> + 'a {
        self.matrix.chunks_exact(12).map(|t| Distance {
            from: be32(t, 0).unwrap_or(0),
            to: be32(t, 4).unwrap_or(0),
            distance: be32(t, 8).unwrap_or(0),
        })
    }

    /// Linux: of_numa_parse_distance_map_v1()'s checks: local distance exactly
    /// LOCAL_DISTANCE, remote ones above it.
    pub fn validate(&self) -> Result<(), Diagnostic<'a>> {
        for d in self.entries() {
            if (d.from == d.to && d.distance != LOCAL_DISTANCE)
                || (d.from != d.to && d.distance <= LOCAL_DISTANCE)
            {
                let p = Problem::InvalidDistance {
                    from: d.from,
                    to: d.to,
                    distance: d.distance,
                };
                return Err(self.node.diag(Severity::Error, "distance-matrix", p));
            }
        }
        Ok(())
    }
}

/// Linux: of_numa_parse_distance_map() — the node compatible with
/// `numa-distance-map-v1`, if any; an error if it has no `distance-matrix`.
pub fn of_numa_find_distance_map<'a>(
    fdt: &Fdt<'a>,
) -> Result<Option<DistanceMap<'a>>, Diagnostic<'a>> {
    let Some(node) = fdt.find_compatible("numa-distance-map-v1") else {
        return Ok(None);
    };
    match node.property("distance-matrix") {
        Some(m) if m.len() >= 4 => Ok(Some(DistanceMap { node, matrix: m })),
        _ => Err(node.diag(
            Severity::Error,
            "distance-matrix",
            Problem::NoDistanceMatrix,
        )),
    }
}

/// Linux: of_numa_parse_cpu_nodes() — `cpu_nids` holds the `numa-node-id` (if any) of each
/// CPU the arch accepted from `/cpus` (Linux reads them with of_node_to_nid() while walking
/// the CPU nodes; the arch's probing already did, and dropped CPUs it cannot use).
fn of_numa_parse_cpu_nodes(numa: &mut NumaInfo, cpu_nids: impl Iterator<Item = Option<u32>>) {
    for nid in cpu_nids {
        let Some(nid) = nid else {
            continue;
        };
        // Linux: pr_debug("CPU on %u") — compiled out by default.
        if nid >= MAX_NUMNODES as u32 {
            pr_warn!("OF: NUMA: Node id {} exceeds maximum value", nid);
        } else {
            numa.numa_nodes_parsed.set(nid as i32);
        }
    }
}

/// Linux: of_numa_parse_memory_nodes() — memory nodes without `numa-node-id` are skipped;
/// one with an id out of range stops the parse.
fn of_numa_parse_memory_nodes(
    numa: &mut NumaInfo,
    fdt: &Fdt,
    mb: &mut Memblock,
) -> Result<(), NumaError> {
    for r in fdt.memory_ranges() {
        let Some(nid) = r.nid else {
            continue;
        };
        if nid >= MAX_NUMNODES as u32 {
            pr_warn!("OF: NUMA: Node id {} exceeds maximum value", nid);
            pr_err!("OF: NUMA: bad property in memory node");
            return Err(NumaError::Invalid);
        }
        if numa_add_memblk(numa, mb, nid as i32, r.base.0, r.end().0).is_err() {
            pr_err!("OF: NUMA: bad property in memory node");
            return Err(NumaError::Invalid);
        }
    }
    Ok(())
}

/// Linux: of_numa_parse_distance_map_v1() behind of_numa_parse_distance_map().
fn of_numa_parse_distance_map(numa: &mut NumaInfo, fdt: &Fdt) -> Result<(), NumaError> {
    let map = match of_numa_find_distance_map(fdt) {
        Ok(None) => return Ok(()),
        Ok(Some(m)) => m,
        Err(d) => {
            pr_info!("OF: NUMA: parsing numa-distance-map-v1");
            pr_err!("OF: NUMA: {}", d.problem);
            return Err(NumaError::Invalid);
        }
    };
    pr_info!("OF: NUMA: parsing numa-distance-map-v1");
    for d in map.entries() {
        if (d.from == d.to && d.distance != LOCAL_DISTANCE)
            || (d.from != d.to && d.distance <= LOCAL_DISTANCE)
        {
            pr_err!(
                "OF: NUMA: Invalid distance[node{} -> node{}] = {}",
                d.from,
                d.to,
                d.distance
            );
            return Err(NumaError::Invalid);
        }
        if (d.from as i32) >= 0 && (d.from as i32) < MAX_NUMNODES {
            numa.numa_nodes_parsed.set(d.from as i32);
        }
        numa.numa_set_distance(d.from as i32, d.to as i32, d.distance);
        // The matrix may list one direction only: B->A defaults to A->B.
        if d.to > d.from {
            numa.numa_set_distance(d.to as i32, d.from as i32, d.distance);
        }
    }
    Ok(())
}

/// Linux: of_numa_init() — what arch_numa_init() runs through numa_init() (mm::numa takes it
/// as a function, as Linux's numa_init() takes `init_func`).
pub fn of_numa_init(
    numa: &mut NumaInfo,
    fdt: &Fdt,
    cpu_nids: impl Iterator<Item = Option<u32>>,
    mb: &mut Memblock,
) -> Result<(), NumaError> {
    of_numa_parse_cpu_nodes(numa, cpu_nids);
    of_numa_parse_memory_nodes(numa, fdt, mb)?;
    of_numa_parse_distance_map(numa, fdt)
}

#[cfg(test)]
mod tests;
