//! Cache line sizes. Mirrors Linux 6.1's include/linux/cache.h and
//! arch/arm64/include/asm/cache.h.

/// Linux: L1_CACHE_SHIFT (arm64).
pub const L1_CACHE_SHIFT: u32 = 6;
/// Linux: L1_CACHE_BYTES (arm64).
pub const L1_CACHE_BYTES: u64 = 1 << L1_CACHE_SHIFT;
/// Linux: SMP_CACHE_BYTES (arm64's L1_CACHE_BYTES), the alignment used when a caller asks
/// for none.
pub const SMP_CACHE_BYTES: u64 = L1_CACHE_BYTES;
