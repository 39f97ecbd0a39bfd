//! Zonelists: for each node, the order in which the page allocator tries zones — its own
//! node's zones first, then the other nodes' by distance, highest zone first within a node.
//! Mirrors Linux 6.1's mm/page_alloc.c `build_all_zonelists`, `__build_all_zonelists`,
//! `build_zonelists`, `find_next_best_node`, `build_zonelists_in_node_order`,
//! `build_thisnode_zonelists`, `build_zonerefs_node` and `nr_free_zone_pages`, and
//! include/linux/mempolicy.h's `check_highest_zone` (policy_zone).
//!
//! Linux prints the result as `Fallback order for Node N: ...`, `Built N zonelists,
//! mobility grouping on.  Total pages: N` and `Policy zone: X`; so do we.

use core::fmt;

use super::mmzone::{
    NodeDataMap, PglistData, Zonelist, Zoneref, ZONELIST_FALLBACK, ZONELIST_NOFALLBACK,
};
use super::numa::{Nodemask, NumaInfo};
use crate::include::mmzone::{
    set_page_group_by_mobility_disabled, MAX_NR_ZONES, MIGRATE_TYPES, ZONE_MOVABLE, ZONE_NAMES,
};
use crate::include::numa::MAX_NUMNODES;
use crate::include::pageblock_flags::PAGEBLOCK_NR_PAGES;

const NN: usize = MAX_NUMNODES as usize;

/// Linux: PENALTY_FOR_NODE_WITH_CPUS — prefer headless nodes a little.
const PENALTY_FOR_NODE_WITH_CPUS: u32 = 1;

/// Linux: gfp_zone(GFP_HIGHUSER_MOVABLE) — movable user pages may come from every zone.
pub const GFP_HIGHUSER_MOVABLE_ZONE: usize = ZONE_MOVABLE;

/// Linux: find_next_best_node() — the nearest node not yet in `used` (the local node
/// first), with small penalties that spread the load: a node numbered below `node`, a node
/// with CPUs, and `node_load` (how often the node already headed a distance group).
pub fn find_next_best_node(
    numa: &NumaInfo,
    n_memory: Nodemask,
    node: i32,
    used: &mut Nodemask,
    node_load: &[u32; NN],
) -> Option<i32> {
    if !used.isset(node) {
        used.set(node);
        return Some(node);
    }
    let mut min_val = u32::MAX;
    let mut best_node = None;
    for n in n_memory.iter() {
        if used.isset(n) {
            continue;
        }
        let mut val = numa.node_distance(node, n);
        val += (n < node) as u32;
        if numa.node_has_cpus(n) {
            val += PENALTY_FOR_NODE_WITH_CPUS;
        }
        val *= MAX_NUMNODES as u32;
        val += node_load[n as usize];
        if val < min_val {
            min_val = val;
            best_node = Some(n);
        }
    }
    if let Some(b) = best_node {
        used.set(b);
    }
    best_node
}

/// Linux: build_zonerefs_node() — the node's populated zones, highest first, appended to
/// `zl`; each one raises `policy_zone` (check_highest_zone()).
fn build_zonerefs_node(pgdat: &PglistData, zl: &mut Zonelist, policy_zone: &mut usize) {
    for zone_type in (0..MAX_NR_ZONES).rev() {
        if pgdat.node_zones[zone_type].populated_zone() {
            zl.push(Zoneref {
                nid: pgdat.node_id as u16,
                zone_idx: zone_type as u16,
            });
            // Linux: check_highest_zone().
            if zone_type > *policy_zone && zone_type != ZONE_MOVABLE {
                *policy_zone = zone_type;
            }
        }
    }
}

/// A node order as Linux prints it: each id followed by a space.
struct NodeOrder<'a>(&'a [i32]);

impl fmt::Display for NodeOrder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for n in self.0 {
            write!(f, "{} ", n)?;
        }
        Ok(())
    }
}

/// Linux: build_zonelists() (NUMA) — both zonelists of `local_node`; returns the node order.
fn build_zonelists(
    nodes: &mut NodeDataMap,
    numa: &NumaInfo,
    n_memory: Nodemask,
    local_node: i32,
    node_load: &mut [u32; NN],
    policy_zone: &mut usize,
) {
    let mut node_order = [0i32; NN];
    let mut nr_nodes = 0;
    let mut used = Nodemask::NONE;
    let mut prev_node = local_node;
    while let Some(node) = find_next_best_node(numa, n_memory, local_node, &mut used, node_load) {
        // The first node of each distance group gets a penalty, so that nodes at equal
        // distance take turns heading the fallback lists.
        if numa.node_distance(local_node, node) != numa.node_distance(local_node, prev_node) {
            node_load[node as usize] += 1;
        }
        node_order[nr_nodes] = node;
        nr_nodes += 1;
        prev_node = node;
    }
    let node_order = &node_order[..nr_nodes];

    // Linux: build_zonelists_in_node_order() and build_thisnode_zonelists().
    let mut fallback = Zonelist::EMPTY;
    for &n in node_order {
        if let Some(pgdat) = nodes.get(n) {
            build_zonerefs_node(pgdat, &mut fallback, policy_zone);
        }
    }
    let mut thisnode = Zonelist::EMPTY;
    if let Some(pgdat) = nodes.get(local_node) {
        build_zonerefs_node(pgdat, &mut thisnode, policy_zone);
    }
    if let Some(pgdat) = nodes.get_mut(local_node) {
        pgdat.node_zonelists[ZONELIST_FALLBACK] = fallback;
        pgdat.node_zonelists[ZONELIST_NOFALLBACK] = thisnode;
    }
    pr_info!(
        "Fallback order for Node {}: {}",
        local_node,
        NodeOrder(node_order)
    );
}

/// Linux: nr_free_zone_pages(offset) — managed pages above the high watermark in the zones
/// up to `offset` of node `nid`'s fallback list (Linux uses the current CPU's node).
pub fn nr_free_zone_pages(nodes: &NodeDataMap, nid: i32, offset: usize) -> u64 {
    let Some(pgdat) = nodes.get(nid) else {
        return 0;
    };
    let mut sum = 0;
    for &z in pgdat.node_zonelists[ZONELIST_FALLBACK].zonerefs() {
        if z.zone_idx as usize > offset {
            continue;
        }
        let zone = nodes.zone(z);
        let (size, high) = (zone.zone_managed_pages(), zone.high_wmark_pages());
        if size > high {
            sum += size - high;
        }
    }
    sum
}

/// What build_all_zonelists() found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZonelistsSummary {
    /// Linux: nr_online_nodes (the "Built N zonelists").
    pub nr_zonelists: u32,
    /// Linux: vm_total_pages.
    pub vm_total_pages: u64,
    /// Linux: page_group_by_mobility_disabled.
    pub mobility_disabled: bool,
    /// Linux: policy_zone.
    pub policy_zone: usize,
}

/// Linux: build_all_zonelists(NULL) at boot — every online node's zonelists, then the page
/// count the allocator can use from the boot CPU's node (`cpu_to_node(0)`), which decides
/// whether grouping pages by mobility is worth it.
pub fn build_all_zonelists(nodes: &mut NodeDataMap, numa: &NumaInfo) -> ZonelistsSummary {
    // N_MEMORY: the nodes free_area_init() found pages on.
    let mut n_memory = Nodemask::NONE;
    for pgdat in nodes.pgdats() {
        if pgdat.node_present_pages != 0 {
            n_memory.set(pgdat.node_id);
        }
    }
    let mut node_load = [0u32; NN];
    let mut policy_zone = 0;
    for nid in numa.online_nodes() {
        build_zonelists(nodes, numa, n_memory, nid, &mut node_load, &mut policy_zone);
    }

    let vm_total_pages = nr_free_zone_pages(nodes, numa.cpu_to_node(0), GFP_HIGHUSER_MOVABLE_ZONE);
    // Too few pages for pageblocks of every type: do not group by mobility.
    let mobility_disabled = vm_total_pages < PAGEBLOCK_NR_PAGES * MIGRATE_TYPES as u64;
    set_page_group_by_mobility_disabled(mobility_disabled);
    let summary = ZonelistsSummary {
        nr_zonelists: numa.nr_online_nodes(),
        vm_total_pages,
        mobility_disabled,
        policy_zone,
    };
    print_zonelists_summary(&summary);
    summary
}

/// build_all_zonelists()'s two closing lines.
pub fn print_zonelists_summary(s: &ZonelistsSummary) {
    pr_info!(
        "Built {} zonelists, mobility grouping {}.  Total pages: {}",
        s.nr_zonelists,
        if s.mobility_disabled { "off" } else { "on" },
        s.vm_total_pages
    );
    pr_info!("Policy zone: {}", ZONE_NAMES[s.policy_zone]);
}

#[cfg(test)]
mod tests;
