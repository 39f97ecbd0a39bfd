//! arm64-mm: Linux's arm64 memory bring-up, stage by stage, in a kernel small enough to read.
//!
//! The crate is the whole kernel. The arch-independent cores (`mm/`, `drivers/of`, the
//! command-line parser, printk's formatting) also build for the host, where their unit tests
//! run against simulated memory: `cargo hosttest`. Everything that touches the CPU lives in
//! `arch/aarch64` and builds only for `aarch64-unknown-none`.
#![cfg_attr(target_os = "none", no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(clippy::missing_safety_doc)]

extern crate alloc;

#[macro_use]
pub mod kernel;
pub mod drivers;
pub mod include;
pub mod mm;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod arch;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod init;
