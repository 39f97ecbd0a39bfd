//! KASLR's seed and its linear-map part (Linux: arch/arm64/kernel/kaslr.c,
//! `kaslr_early_init()` and `kaslr_init()`).
//!
//! Linux reads `/chosen/kaslr-seed` (a 64-bit value the boot loader — here QEMU's virt
//! board, a fresh random one each boot — puts there), unless `nokaslr` is on the command
//! line, and uses it twice: its low bits move the kernel image inside the vmalloc area, and
//! its top 16 bits, `memstart_offset_seed`, move the linear map
//! (`arm64_memblock_init()`, [`randomize_memstart`]). We do the second only: the image
//! stays where head.S linked it (moving it needs a relocatable image). The message
//! `kaslr_init()` prints later in the boot is Linux's.

use crate::drivers::of::libfdt::Fdt;
use core::sync::atomic::{AtomicU16, AtomicU8, Ordering};

/// Linux: enum kaslr_status (without KASLR_DISABLED_FDT_REMAP: our tree is always mapped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum KaslrStatus {
    Enabled = 0,
    DisabledCmdline = 1,
    DisabledNoSeed = 2,
}

static STATUS: AtomicU8 = AtomicU8::new(KaslrStatus::DisabledNoSeed as u8);

/// Linux: memstart_offset_seed — the seed's top 16 bits; 0 leaves the linear map alone.
static MEMSTART_OFFSET_SEED: AtomicU16 = AtomicU16::new(0);

/// Linux: get_kaslr_seed() — `/chosen/kaslr-seed`, read only when it is exactly 8 bytes.
/// (Linux also wipes it in the blob; our blob is mapped read-only, and nothing after us
/// reads it.)
fn get_kaslr_seed(fdt: &Fdt) -> u64 {
    fdt.chosen()
        .and_then(|c| c.kaslr_seed())
        .and_then(|v| <[u8; 8]>::try_from(v).ok())
        .map_or(0, u64::from_be_bytes)
}

/// Linux: kaslr_disabled_cmdline() — `nokaslr` (idreg-override's alias of
/// `kaslr.disabled=1`) or `kaslr.disabled=1` itself.
fn kaslr_disabled_cmdline(cmdline: &str) -> bool {
    cmdline
        .split_whitespace()
        .any(|a| a == "nokaslr" || a == "kaslr.disabled=1")
}

/// What [`kaslr_early_init`] decides from a seed and a command line.
pub fn kaslr_decide(seed: u64, cmdline: &str) -> (KaslrStatus, u16) {
    if kaslr_disabled_cmdline(cmdline) {
        return (KaslrStatus::DisabledCmdline, 0);
    }
    // Linux mixes in arch_get_random_seed_longs_early() (RNDR); QEMU's cortex-a72 has none.
    if seed == 0 {
        return (KaslrStatus::DisabledNoSeed, 0);
    }
    (KaslrStatus::Enabled, (seed >> 48) as u16)
}

/// Linux: kaslr_early_init() — its seed and status (run before arm64_memblock_init).
pub fn kaslr_early_init(fdt: &Fdt, cmdline: &str) {
    let (status, seed) = kaslr_decide(get_kaslr_seed(fdt), cmdline);
    STATUS.store(status as u8, Ordering::Relaxed);
    MEMSTART_OFFSET_SEED.store(seed, Ordering::Relaxed);
}

/// Linux: the CONFIG_RANDOMIZE_BASE block of arm64_memblock_init(): if the linear region
/// exceeds what the CPU's physical address range can span (`pa_bits`) by at least one
/// `align` (ARM64_MEMSTART_ALIGN), move `memstart` down by a seed-chosen multiple of it,
/// so RAM lands at a random place in the linear map. Returns the new memstart_addr (which,
/// as Linux's s64, may be "negative": callers use wrapping arithmetic).
pub fn randomize_memstart(memstart: u64, linear_region_size: u64, pa_bits: u32, align: u64) -> u64 {
    let seed = MEMSTART_OFFSET_SEED.load(Ordering::Relaxed);
    memstart_randomized(memstart, linear_region_size, pa_bits, align, seed)
}

/// [`randomize_memstart`] with its seed given (tests/kaslr.rs recomputes the layout).
pub fn memstart_randomized(
    memstart: u64,
    linear_region_size: u64,
    pa_bits: u32,
    align: u64,
    seed: u16,
) -> u64 {
    let range = linear_region_size as i64 - (1i64 << pa_bits);
    if seed == 0 || range < align as i64 {
        return memstart;
    }
    let range = range as u64 / align;
    memstart.wrapping_sub(align * ((range * seed as u64) >> 16))
}

/// The status and `memstart_offset_seed` kaslr_early_init() chose.
pub fn kaslr_state() -> (KaslrStatus, u16) {
    let status = match STATUS.load(Ordering::Relaxed) {
        0 => KaslrStatus::Enabled,
        1 => KaslrStatus::DisabledCmdline,
        _ => KaslrStatus::DisabledNoSeed,
    };
    (status, MEMSTART_OFFSET_SEED.load(Ordering::Relaxed))
}

/// Linux: kaslr_init() — says what kaslr_early_init() decided.
pub fn kaslr_init() {
    match kaslr_state().0 {
        KaslrStatus::Enabled => pr_info!("KASLR enabled"),
        KaslrStatus::DisabledCmdline => pr_info!("KASLR disabled on command line"),
        KaslrStatus::DisabledNoSeed => pr_warn!("KASLR disabled due to lack of seed"),
    }
}
