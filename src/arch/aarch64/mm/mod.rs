//! arm64 memory management (Linux: arch/arm64/mm).
pub mod clear_page;
pub mod fault;
pub mod init;
pub mod kfence;
pub mod mmu;
pub mod pgtable;
pub mod ptdump;
pub mod vmalloc;
