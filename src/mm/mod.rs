//! Memory management: the arch-independent cores (Linux's mm/).
pub mod addr;
pub mod cma;
pub mod debug_page_alloc;
pub mod free_area_init;
pub mod gfp;
pub mod heap;
pub mod kfence;
pub mod kmemleak;
pub mod memblock;
pub mod memtest;
pub mod mmzone;
pub mod numa;
pub mod page;
pub mod page_alloc;
pub mod page_ext;
pub mod page_owner;
pub mod percpu;
pub mod report;
pub mod show;
pub mod slab;
pub mod slab_common;
pub mod slub;
pub mod sparse;
// Linux mm/util.c: kvmalloc and friends.
pub mod util;
// Also built, public, for the host benchmarks (benches/, `--features testing`).
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod vmalloc;
pub mod zonelist;

pub use addr::{Pfn, PhysAddr, VirtAddr, PAGE_SHIFT, PAGE_SIZE};
