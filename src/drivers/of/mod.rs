//! Open Firmware / device tree (Linux: drivers/of and scripts/dtc/libfdt).
//!
//! - [`libfdt`] — the flat-tree reader: a validated blob, nodes, properties, diagnostics.
//! - [`fdt`] — the early scans (memory into memblock, `/chosen`, the reservations).
//! - [`reserved_mem`] — `/reserved-memory`.
//! - [`base`] — CPU nodes (for_each_of_cpu_node, of_get_cpu_hwid).
//! - [`of_numa`] — the nodes of memory and CPUs and the distance map, for mm::numa.
//!
//! drivers/of may fill memblock (as Linux's fdt.c does); nothing in mm imports drivers/of.
/// Linux's pr_fmt for drivers/of/fdt.c (the early scans and the `/reserved-memory` checks
/// Linux keeps there).
pub(crate) const PR_FDT: &str = "OF: fdt: ";

pub mod base;
pub mod fdt;
pub mod libfdt;
pub mod of_numa;
pub mod reserved_mem;

#[cfg(test)]
mod scan_tests;
// Also built for mm::testing's machines under `--features testing` (the host benchmarks),
// which use only part of it.
#[cfg(any(test, feature = "testing"))]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod test_builder;
