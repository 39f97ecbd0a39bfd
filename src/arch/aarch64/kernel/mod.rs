//! arm64 core kernel code (Linux: arch/arm64/kernel).
pub mod cpu_ops;
pub mod entry;
pub mod extable;
pub mod kaslr;
pub mod process;
pub mod psci;
pub mod semihosting;
pub mod setup;
pub mod smp;
pub mod smp_call;
pub mod smp_spin_table;
pub mod stacktrace;
pub mod time;
pub mod traps;
