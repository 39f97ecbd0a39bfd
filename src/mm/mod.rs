//! Memory management: the arch-independent cores (Linux's mm/).
pub mod addr;
pub mod memblock;
pub mod memtest;

pub use addr::{Pfn, PhysAddr, VirtAddr, PAGE_SHIFT, PAGE_SIZE};
