//! arm64-mm: Linux's arm64 memory bring-up, stage by stage, in a kernel small enough to read.
//!
//! The crate is the whole kernel. The arch-independent cores (`mm/`, `drivers/of`, the
//! command-line parser, printk's formatting) also build for the host, where their unit tests
//! run against simulated memory: `cargo hosttest`. Everything that touches the CPU lives in
//! `arch/aarch64` and builds only for `aarch64-unknown-none`.
//!
//! # Layers
//!
//! The modules form layers, and imports only point down: a module may use its own layer and
//! the layers below it, never one above, and no two modules may reach each other through
//! their imports (a ring of modules is one module in disguise: none of it can change
//! alone). `scripts/layers` checks both on every `scripts/test` run and prints the import
//! that breaks the rule.
//!
//! ```text
//!  +------------------------------------------------------------------------------+
//!  | init/          start_kernel(): the stage list, timed; the end of boot        |
//!  +------------------------------------------------------------------------------+
//!  | arch/aarch64/  head.S, setup_arch, smp/psci/cpu_ops, entry/traps/fault,      |
//!  |                paging_init, mmu/fixmap/pgtable, ptdump, sysreg/esr/ptrace,   |
//!  |                the hooks the cores below ask through (vmalloc, panic, ...)  |
//!  +------------------------------------------------------------------------------+
//!  | drivers/       of: libfdt (the reader), fdt (early scans into memblock),      |
//!  |                of_numa, base, reserved_mem;  tty/pl011 (given its address)   |
//!  +------------------------------------------------------------------------------+
//!  | mm/ cores      page, mmzone -> memblock -> numa -> zonelist, free_area_init,  |
//!  |                sparse -> page_alloc -> show;  memtest, percpu;               |
//!  |                slub -> slab_common -> heap;  vmalloc (tree, api)             |
//!  +------------------------------------------------------------------------------+
//!  | kernel/        printk, params (the command line), panic (through hooks),      |
//!  |                sections (linker symbols), stages, kallsyms, crash_core       |
//!  +------------------------------------------------------------------------------+
//!  | leaf types     include/{numa,cache,mmzone,pageblock_flags}, mm::addr          |
//!  |                (PhysAddr, VirtAddr, Pfn), mm::gfp, mm::slab: import nothing  |
//!  |                of ours above the leaves                                      |
//!  +------------------------------------------------------------------------------+
//! ```
//!
//! What crosses a boundary upwards goes through a small interface that the higher layer
//! fills in, as Linux's cores take `struct` of operations: memblock and the page allocator
//! take address hooks (`__va`/`__pa`), vmalloc takes `VmallocArch` (the layout, page-table
//! map/unmap, TLB flush, `smp_processor_id`), the panic handler takes `PanicHooks` (the
//! backtrace, the emergency console, the machine exit). Shared constants sit in the leaves,
//! as Linux keeps them in `numa.h`, `cache.h`, `mmzone.h` and `gfp.h`, so that no core
//! imports another just for a number.
//!
//! # One way in
//!
//! Arch and init code call the Linux-named functions (`memblock_reserve`,
//! `memblock_free_all`, `setup_per_cpu_pageset`, ...), which act on the kernel's one
//! instance; the cores themselves are methods on their instance (`Memblock`, `PageAlloc`,
//! `SlubAllocator`), which is what the host tests build, many at a time, over simulated
//! RAM (`mm::testing`). A Linux-named wrapper exists only where arch or init calls it.
#![cfg_attr(target_os = "none", no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

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
