//! The CPUs the device tree describes, as far as this kernel uses them (Linux:
//! arch/arm64/kernel/smp.c — of_parse_and_init_cpus(), smp_init_cpus(), and the arch's
//! smp_processor_id()). Only the boot CPU runs; the others are listed, numbered and put on
//! their NUMA nodes, which sizes the per-CPU areas and the allocators' per-CPU state.
//!
//! Differences from Linux: logical CPU n is the n-th usable CPU node in `/cpus` order (Linux
//! gives 0 to the boot CPU wherever it is listed and rejects duplicate MPIDRs); a CPU node
//! with an unusable `reg` or `numa-node-id` is left out silently.

// Without `alloc` a diagnostic cannot be boxed; it is returned by value on cold paths only.
#![allow(clippy::result_large_err)]

use super::cpu_ops::cpu_read_enable_method;
use crate::drivers::of::base::{for_each_of_cpu_node, of_get_cpu_hwid};
use crate::drivers::of::libfdt::{Diagnostic, Fdt, Problem, Severity};
use crate::drivers::of::of_numa::of_node_to_nid;
use crate::include::numa::NR_CPUS;
use crate::include::numa::NUMA_NO_NODE;
use crate::mm::numa::NumaInfo;

/// Linux: MPIDR_HWID_BITMASK (asm/cputype.h): the affinity fields Aff3..Aff0.
pub const MPIDR_HWID_BITMASK: u64 = 0xff_00ff_ffff;

/// One usable CPU node of `/cpus`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OfCpu<'a> {
    /// `reg`: the MPIDR affinity bits (Linux: of_get_cpu_hwid(), cpu_logical_map()).
    pub mpidr: u64,
    /// Linux: of_node_to_nid().
    pub numa_node_id: Option<u32>,
    /// Linux: cpu_read_enable_method().
    pub enable_method: Option<&'a str>,
}

/// Each CPU node as arm64 reads it (Linux: of_parse_and_init_cpus()'s loop): a hardware id
/// within MPIDR_HWID_BITMASK and a well-formed `numa-node-id`, or why the CPU is unusable.
pub fn of_cpus<'a>(fdt: &Fdt<'a>) -> impl Iterator<Item = Result<OfCpu<'a>, Diagnostic<'a>>> {
    for_each_of_cpu_node(fdt).map(|cpu| {
        let mpidr = of_get_cpu_hwid(&cpu)?;
        if mpidr & !MPIDR_HWID_BITMASK != 0 {
            let p = Problem::InvalidMpidr(mpidr);
            return Err(cpu.node.diag(Severity::Error, "reg", p));
        }
        Ok(OfCpu {
            mpidr,
            numa_node_id: of_node_to_nid(&cpu.node)?,
            enable_method: cpu_read_enable_method(&cpu.node),
        })
    })
}

/// The CPUs the kernel knows (Linux: cpu_logical_map, cpu_possible_mask, nr_cpu_ids): the
/// first NR_CPUS usable CPU nodes, logical CPU n being the n-th.
#[derive(Clone, Copy, Debug)]
pub struct SmpCpus<'a> {
    cpus: [OfCpu<'a>; NR_CPUS],
    /// Usable CPU nodes kept in `cpus` (at most NR_CPUS).
    nr: usize,
    /// Usable CPU nodes in the tree, including those past NR_CPUS.
    total: usize,
}

impl<'a> SmpCpus<'a> {
    /// Linux: of_parse_and_init_cpus() — one walk of `/cpus`.
    pub fn of_parse_and_init_cpus(fdt: &Fdt<'a>) -> Self {
        let mut s = Self {
            cpus: [OfCpu::default(); NR_CPUS],
            nr: 0,
            total: 0,
        };
        for cpu in of_cpus(fdt).filter_map(|c| c.ok()) {
            if let Some(slot) = s.cpus.get_mut(s.total) {
                *slot = cpu;
                s.nr += 1;
            }
            s.total += 1;
        }
        s
    }

    /// The usable CPUs, logical CPU 0 first.
    pub fn cpus(&self) -> &[OfCpu<'a>] {
        &self.cpus[..self.nr]
    }

    /// Usable CPU nodes in the tree, including those past NR_CPUS.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Linux: nr_cpu_ids — the CPUs the device tree lists (at least the boot CPU).
    pub fn nr_cpu_ids(&self) -> usize {
        self.nr.clamp(1, NR_CPUS)
    }

    /// Linux: smp_init_cpus()'s early_map_cpu_to_node() for each CPU — each on its
    /// `numa-node-id` (NUMA_NO_NODE if none). Secondary CPUs are not started yet.
    pub fn smp_init_cpus(&self, numa: &mut NumaInfo) {
        for (cpu, c) in self.cpus().iter().enumerate() {
            let nid = c.numa_node_id.map_or(NUMA_NO_NODE, |n| n as i32);
            numa.early_map_cpu_to_node(cpu, nid);
        }
    }
}

/// Linux: smp_processor_id() — only the boot CPU (0) runs today; with secondary CPUs this
/// becomes a read of this CPU's `cpu_number` through TPIDR_EL1's per-CPU offset.
pub fn smp_processor_id() -> usize {
    0
}
