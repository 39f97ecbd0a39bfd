//! How a CPU is brought up, as the device tree says (Linux: arch/arm64/kernel/cpu_ops.c):
//! each CPU node's `enable-method` names a set of operations (`"psci"`: PSCI CPU_ON,
//! `"spin-table"`: a release address the firmware polls); init_cpu_ops() records them per
//! logical CPU, and smp.rs calls them through get_cpu_ops().

use core::sync::atomic::{AtomicU8, Ordering};

use super::{psci, smp_spin_table};
use crate::drivers::of::libfdt::Node;
use crate::include::numa::NR_CPUS;

/// Linux: struct cpu_operations — the enable methods this kernel knows
/// (dt_supported_cpu_ops[]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CpuOps {
    /// Linux: smp_spin_table_ops.
    SpinTable = 1,
    /// Linux: cpu_psci_ops.
    Psci = 2,
}

/// Linux: dt_supported_cpu_ops[], in its order.
const DT_SUPPORTED_CPU_OPS: [CpuOps; 2] = [CpuOps::SpinTable, CpuOps::Psci];

impl CpuOps {
    /// Linux: cpu_operations.name.
    pub fn name(self) -> &'static str {
        match self {
            CpuOps::SpinTable => "spin-table",
            CpuOps::Psci => "psci",
        }
    }

    /// Linux: cpu_operations.cpu_init — read what the method needs from the CPU's node.
    pub fn cpu_init(self, cpu: usize, dn: &Node) -> Result<(), i32> {
        match self {
            CpuOps::SpinTable => smp_spin_table::smp_spin_table_cpu_init(cpu, dn),
            CpuOps::Psci => psci::cpu_psci_cpu_init(cpu),
        }
    }

    /// Linux: cpu_operations.cpu_prepare — make the CPU ready to be booted.
    pub fn cpu_prepare(self, cpu: usize, mpidr: u64) -> Result<(), i32> {
        match self {
            CpuOps::SpinTable => smp_spin_table::smp_spin_table_cpu_prepare(cpu, mpidr),
            CpuOps::Psci => psci::cpu_psci_cpu_prepare(cpu),
        }
    }

    /// Linux: cpu_operations.cpu_boot — start the CPU (it then reports itself online).
    pub fn cpu_boot(self, cpu: usize, mpidr: u64) -> Result<(), i32> {
        match self {
            CpuOps::SpinTable => smp_spin_table::smp_spin_table_cpu_boot(mpidr),
            CpuOps::Psci => psci::cpu_psci_cpu_boot(cpu, mpidr),
        }
    }
}

/// Linux: cpu_ops[] — each logical CPU's operations (0: none).
static CPU_OPS: [AtomicU8; NR_CPUS] = [const { AtomicU8::new(0) }; NR_CPUS];

/// Linux: cpu_get_ops() — the operations named `name`.
fn cpu_get_ops(name: &str) -> Option<CpuOps> {
    DT_SUPPORTED_CPU_OPS.into_iter().find(|o| o.name() == name)
}

/// Linux: cpu_read_enable_method() — the CPU node's `enable-method` (`"psci"`,
/// `"spin-table"`), if any.
pub fn cpu_read_enable_method<'a>(dn: &Node<'a>) -> Option<&'a str> {
    dn.prop_str("enable-method")
}

/// Linux: init_cpu_ops() — read the enable method of logical CPU `cpu` (node `dn`) and
/// record its operations: -ENODEV without one (reported for a secondary), -EOPNOTSUPP for
/// one this kernel does not know.
pub fn init_cpu_ops(cpu: usize, dn: &Node) -> Result<(), i32> {
    let Some(method) = cpu_read_enable_method(dn) else {
        if cpu != 0 {
            pr_err!("{}: missing enable-method property", dn.path());
        }
        return Err(-19);
    };
    let Some(ops) = cpu_get_ops(method) else {
        pr_warn!("Unsupported enable-method: {}", method);
        return Err(-95);
    };
    CPU_OPS[cpu].store(ops as u8, Ordering::Relaxed);
    Ok(())
}

/// Linux: get_cpu_ops() — the operations init_cpu_ops() recorded for `cpu`.
pub fn get_cpu_ops(cpu: usize) -> Option<CpuOps> {
    match CPU_OPS.get(cpu)?.load(Ordering::Relaxed) {
        1 => Some(CpuOps::SpinTable),
        2 => Some(CpuOps::Psci),
        _ => None,
    }
}
