//! The one scaffold of the host tests: simulated RAM with Linux's `__va()`/`__pa()` over
//! it, and a described machine (memory banks, NUMA nodes, reservations, CPUs) brought up
//! step by step as the kernel does — memblock, the nodes and zones, the buddy, SLUB — each
//! step optional. Mirrors no single Linux file: it plays `arch/arm64/mm/init.c` and
//! `init/main.c`'s `mm_init()` on the host, over `tools/testing/memblock`'s idea of
//! simulated memory.
//!
//! ```text
//! Machine::from_dtb(blob) / ::fdt(banks, cpus, distances) / ::from_banks(banks)
//!   .backed(..) .reserve(..) .numa_off() .zone_limits(..) .movable(..) .with_memmap()
//!   .deferred()
//!   .memblock() -> UpToMemblock { ram, mb }
//!   .zones()    -> UpToZones    { out, mb, nodes, fai, zl, memmap }
//!   .buddy()    -> UpToBuddy    { mb, pa }    (+ free_all(), zone(), alloc(), ...)
//!   .slub(..)   -> SlubMachine  { slub, pages }
//! SlubMachine::with_params(mib, params) / ::small(): SLUB over SimPages
//! printed(): what the test printed, without timestamps
//! Rng(seed): deterministic random numbers for the long randomized runs
//! ```
//!
//! The CPUs of a device tree reach NUMA init (`of_map_cpus_to_nodes`); the buddy and SLUB
//! run on the CPU [`set_cpu`] names for the calling thread (0 by default).

pub mod fixtures;
mod machine;
mod ram;
mod rng;
mod slab;

pub use machine::{Backing, Machine, UpToBuddy};
pub use ram::{__pa, __pa_virt, __va, SimRam, FILL};
pub use rng::Rng;
pub use slab::{set_cpu, smp_processor_id, SimPages, SlubMachine};

/// What this thread printed since the last look, a line each, without the timestamps.
pub fn printed() -> Vec<String> {
    crate::kernel::printk::take_captured()
        .lines()
        .map(|l| l.split_once("] ").map_or(l, |(_, rest)| rest).to_string())
        .collect()
}
