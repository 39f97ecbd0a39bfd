//! Header-like leaf modules: the constants (and the few flags) that many cores share, in the
//! spirit of Linux's include/linux/*.h. Each file mirrors the Linux header of its name and
//! imports nothing of this crate but other leaves, so every layer may import it without
//! making a cycle.
pub mod cache;
pub mod mmzone;
pub mod numa;
pub mod pageblock_flags;
pub mod processor;
