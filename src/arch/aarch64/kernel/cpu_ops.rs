//! How a CPU is brought up, as the device tree says (Linux: arch/arm64/kernel/cpu_ops.c).
//! Only the boot CPU runs today, so only the `enable-method` is read and kept in the
//! machine description; the ops behind it (PSCI CPU_ON, spin-table) come with SMP.

use crate::drivers::of::libfdt::Node;

/// Linux: cpu_read_enable_method() — the CPU node's `enable-method` (`"psci"`,
/// `"spin-table"`), if any.
pub fn cpu_read_enable_method<'a>(dn: &Node<'a>) -> Option<&'a str> {
    dn.prop_str("enable-method")
}
