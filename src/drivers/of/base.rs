//! CPU nodes of the device tree (Linux: drivers/of/base.c — of_get_next_cpu_node(),
//! for_each_of_cpu_node(), of_get_cpu_hwid()): the generic part of reading `/cpus`. What a
//! hardware id means (an MPIDR on arm64) and which CPUs boot is the arch's business
//! (arch/aarch64/kernel/smp.rs).

// Without `alloc` a diagnostic cannot be boxed; it is returned by value on cold paths only.
#![allow(clippy::result_large_err)]

use super::libfdt::{of_read_number, Children, Diagnostic, Fdt, Node, Problem, Severity};

/// A CPU node under `/cpus`, with the `#address-cells` of `/cpus` its `reg` is read with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuNode<'a> {
    pub node: Node<'a>,
    addr_cells: u32,
}

/// Iterator behind [`for_each_of_cpu_node`].
pub struct CpuNodes<'a> {
    children: Option<Children<'a>>,
    addr_cells: u32,
}

impl<'a> Iterator for CpuNodes<'a> {
    type Item = CpuNode<'a>;
    fn next(&mut self) -> Option<CpuNode<'a>> {
        let children = self.children.as_mut()?;
        loop {
            let node = children.next()?;
            // Linux: of_get_next_cpu_node() — named `cpu` or of device_type "cpu", available.
            if !(node.name_eq("cpu") || node.device_type() == Some("cpu")) || !node.is_available() {
                continue;
            }
            return Some(CpuNode {
                node,
                addr_cells: self.addr_cells,
            });
        }
    }
}

/// Linux: for_each_of_cpu_node() — the available CPU nodes under `/cpus`, in blob order.
pub fn for_each_of_cpu_node<'a>(fdt: &Fdt<'a>) -> CpuNodes<'a> {
    match fdt.root().child("cpus") {
        Some(cpus) => CpuNodes {
            children: Some(cpus.children()),
            addr_cells: cpus.address_cells(),
        },
        None => CpuNodes {
            children: None,
            addr_cells: 0,
        },
    }
}

/// Linux: of_get_cpu_hwid(cpun, 0) — the CPU's hardware id, its `reg` read with the `/cpus`
/// bus's `#address-cells`; a missing or undecodable `reg` is a problem, not a guess.
pub fn of_get_cpu_hwid<'a>(cpu: &CpuNode<'a>) -> Result<u64, Diagnostic<'a>> {
    let node = cpu.node;
    let reg = node
        .property("reg")
        .ok_or_else(|| node.diag(Severity::Error, "reg", Problem::Missing))?;
    if cpu.addr_cells > 2 {
        let p = Problem::CellsUnsupported {
            which: "#address-cells",
            cells: cpu.addr_cells,
        };
        return Err(node.diag(Severity::Error, "reg", p));
    }
    of_read_number(reg, cpu.addr_cells).ok_or_else(|| {
        node.diag(
            Severity::Error,
            "reg",
            Problem::BadLength {
                len: reg.len(),
                expected: "at least #address-cells cells",
            },
        )
    })
}

#[cfg(test)]
mod tests;
