//! Core kernel services: printk, boot parameters, panic, the image's sections.
#[macro_use]
pub mod printk;
pub mod random;
#[macro_use]
pub mod params;
pub mod bug;
pub mod cpu;
pub mod crash_core;
pub mod dma;
pub mod json;
pub mod kallsyms;
pub mod ktest;
#[cfg(target_os = "none")]
pub mod panic;
#[cfg(target_os = "none")]
pub mod sections;
pub mod stackdepot;
pub mod stages;
