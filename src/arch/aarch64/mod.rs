//! arm64: everything that touches the CPU (Linux: arch/arm64).

core::arch::global_asm!(include_str!("head.S"));
core::arch::global_asm!(include_str!("kernel/entry.S"));

pub mod kernel;
pub mod memory;
pub mod mm;
