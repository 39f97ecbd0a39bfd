//! The system-register values the boot path programs (Linux: arch/arm64/include/asm/
//! sysreg.h, kvm_arm.h, pgtable-hwdef.h's TCR_* and proc.S's MAIR_EL1_SET). head.S takes
//! every one of them as a `global_asm!` `const` operand (see `arch/aarch64/mod.rs`), so
//! this file is their only definition.

use super::memory::VA_BITS;
use super::mm::pgtable::{
    MT_DEVICE_NGNRE, MT_DEVICE_NGNRNE, MT_NORMAL, MT_NORMAL_NC, MT_NORMAL_TAGGED,
};

/// Linux: MPIDR_HWID_BITMASK (asm/cputype.h) — the affinity fields Aff3..Aff0 of MPIDR_EL1.
pub const MPIDR_HWID_BITMASK: u64 = 0xff_00ff_ffff;

/// Linux: MAIR_ATTR_* — the attribute encodings the MT_* indices select.
pub const MAIR_ATTR_DEVICE_NGNRNE: u64 = 0x00;
pub const MAIR_ATTR_DEVICE_NGNRE: u64 = 0x04;
pub const MAIR_ATTR_NORMAL_NC: u64 = 0x44;
pub const MAIR_ATTR_NORMAL: u64 = 0xff;

/// Linux: MAIR_ATTRIDX().
const fn mair_attridx(attr: u64, idx: u64) -> u64 {
    attr << (idx * 8)
}

/// Linux: MAIR_EL1_SET (proc.S). MT_NORMAL_TAGGED starts as plain normal memory, as in
/// Linux without MTE.
pub const MAIR_EL1_SET: u64 = mair_attridx(MAIR_ATTR_DEVICE_NGNRNE, MT_DEVICE_NGNRNE)
    | mair_attridx(MAIR_ATTR_DEVICE_NGNRE, MT_DEVICE_NGNRE)
    | mair_attridx(MAIR_ATTR_NORMAL_NC, MT_NORMAL_NC)
    | mair_attridx(MAIR_ATTR_NORMAL, MT_NORMAL)
    | mair_attridx(MAIR_ATTR_NORMAL, MT_NORMAL_TAGGED);

const _: () = assert!(MAIR_EL1_SET == 0x0000_0004_0044_ffff);

/// Linux: TCR_T0SZ() / TCR_T1SZ() — the size of each half of the address space.
pub const TCR_T0SZ: u64 = 64 - VA_BITS as u64;
pub const TCR_T1SZ: u64 = (64 - VA_BITS as u64) << 16;
/// Linux: TCR_IRGN_WBWA / TCR_ORGN_WBWA / TCR_SHARED — write-back table walks, inner
/// shareable, for both halves.
pub const TCR_IRGN_WBWA: u64 = (1 << 8) | (1 << 24);
pub const TCR_ORGN_WBWA: u64 = (1 << 10) | (1 << 26);
pub const TCR_SHARED: u64 = (3 << 12) | (3 << 28);
/// Linux: TCR_TG0_4K / TCR_TG1_4K.
pub const TCR_TG0_4K: u64 = 0 << 14;
pub const TCR_TG1_4K: u64 = 2 << 30;
/// Linux: TCR_IPS_SHIFT — __cpu_setup fills IPS from ID_AA64MMFR0_EL1.PARange.
pub const TCR_IPS_SHIFT: u64 = 32;
/// The TCR_EL1 value __cpu_setup starts from.
pub const TCR_EL1_SET: u64 =
    TCR_T0SZ | TCR_T1SZ | TCR_IRGN_WBWA | TCR_ORGN_WBWA | TCR_SHARED | TCR_TG0_4K | TCR_TG1_4K;

/// Linux: SCTLR_ELx_M / _C / _SA / _I.
pub const SCTLR_ELX_M: u64 = 1 << 0;
pub const SCTLR_ELX_C: u64 = 1 << 2;
pub const SCTLR_ELX_SA: u64 = 1 << 3;
pub const SCTLR_ELX_I: u64 = 1 << 12;
/// The RES1 bits of SCTLR_EL1 in ARMv8.0 (Linux: SCTLR_EL1_RES1).
pub const SCTLR_EL1_RES1: u64 =
    (1 << 11) | (1 << 20) | (1 << 22) | (1 << 23) | (1 << 28) | (1 << 29);
/// Linux: INIT_SCTLR_EL1_MMU_OFF — little endian, MMU and caches off.
pub const INIT_SCTLR_EL1_MMU_OFF: u64 = SCTLR_EL1_RES1;
/// Linux: INIT_SCTLR_EL1_MMU_ON (the bits this kernel uses).
pub const INIT_SCTLR_EL1_MMU_ON: u64 =
    SCTLR_EL1_RES1 | SCTLR_ELX_M | SCTLR_ELX_C | SCTLR_ELX_SA | SCTLR_ELX_I;

/// Linux: HCR_HOST_NVHE_FLAGS (HCR_RW: EL1 is AArch64).
pub const HCR_HOST_NVHE_FLAGS: u64 = 1 << 31;
/// Linux: CPTR_EL2_DEFAULT — the RES1 bits, TFP clear: no FP/SIMD traps to EL2.
pub const CPTR_EL2_DEFAULT: u64 = 0x33ff;
/// Linux: INIT_PSTATE_EL1 — EL1h with D, A, I, F masked.
pub const INIT_PSTATE_EL1: u64 = 0x3c5;
/// Linux: CPACR_EL1_FPEN — EL0 and EL1 may use FP/SIMD (the Rust target uses NEON).
pub const CPACR_EL1_FPEN: u64 = 3 << 20;
