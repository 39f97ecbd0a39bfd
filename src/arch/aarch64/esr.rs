//! The Exception Syndrome Register, decoded through bitfields (Linux:
//! arch/arm64/include/asm/esr.h, and the fault_info[] table of arch/arm64/mm/fault.c).
//!
//! ESR_EL1's EC/IL/ISS come from aarch64-cpu's `ESR_EL1` definitions; the ISS layouts of
//! data and instruction aborts are [`ESR_ELX_ABT`], laid over the whole ESR value so one
//! `LocalRegisterCopy` reads every field.

use aarch64_cpu::registers::ESR_EL1;
use tock_registers::register_bitfields;
use tock_registers::LocalRegisterCopy;

register_bitfields! {u64,
    /// The ISS of a data or instruction abort (Linux: ESR_ELx_ISV ... ESR_ELx_FSC), at their
    /// positions in the whole ESR.
    pub ESR_ELX_ABT [
        /// Instruction syndrome valid: SAS/SSE/SRT/SF/AR hold the access (data aborts).
        ISV OFFSET(24) NUMBITS(1) [],
        /// Syndrome access size: log2 of the bytes accessed.
        SAS OFFSET(22) NUMBITS(2) [],
        /// Syndrome sign extend.
        SSE OFFSET(21) NUMBITS(1) [],
        /// Syndrome register transfer: the Xt of the access.
        SRT OFFSET(16) NUMBITS(5) [],
        /// Sixty-four bit register.
        SF OFFSET(15) NUMBITS(1) [],
        /// Acquire/release.
        AR OFFSET(14) NUMBITS(1) [],
        /// Synchronous error type.
        SET OFFSET(11) NUMBITS(2) [],
        /// FAR not valid.
        FNV OFFSET(10) NUMBITS(1) [],
        /// External abort type.
        EA OFFSET(9) NUMBITS(1) [],
        /// Cache maintenance.
        CM OFFSET(8) NUMBITS(1) [],
        /// Stage-2 fault on a stage-1 table walk.
        S1PTW OFFSET(7) NUMBITS(1) [],
        /// Write not read (data aborts).
        WNR OFFSET(6) NUMBITS(1) [],
        /// Fault status code (DFSC for data, IFSC for instruction aborts).
        FSC OFFSET(0) NUMBITS(6) []
    ]
}

/// An ESR value with its EC/IL/ISS fields (Linux: `unsigned long esr`).
pub type Esr = LocalRegisterCopy<u64, ESR_EL1::Register>;
/// The same value read as an abort syndrome.
pub type EsrAbt = LocalRegisterCopy<u64, ESR_ELX_ABT::Register>;

/// Linux: ESR_ELx_EC() — the exception class, if it is one aarch64-cpu names.
pub fn esr_elx_ec(esr: u64) -> Option<ESR_EL1::EC::Value> {
    Esr::new(esr).read_as_enum(ESR_EL1::EC)
}

/// The raw exception class, for printing.
pub fn esr_elx_ec_raw(esr: u64) -> u64 {
    Esr::new(esr).read(ESR_EL1::EC)
}

/// Linux: ESR_ELx_IL — a 32-bit instruction trapped.
pub fn esr_elx_il(esr: u64) -> bool {
    Esr::new(esr).is_set(ESR_EL1::IL)
}

/// Linux: ESR_ELx_ISS().
pub fn esr_elx_iss(esr: u64) -> u64 {
    Esr::new(esr).read(ESR_EL1::ISS)
}

/// Linux: esr_is_data_abort().
pub fn esr_is_data_abort(esr: u64) -> bool {
    use ESR_EL1::EC::Value::*;
    matches!(esr_elx_ec(esr), Some(DataAbortCurrentEL | DataAbortLowerEL))
}

/// Is this an instruction abort (from this EL or below)?
pub fn esr_is_instruction_abort(esr: u64) -> bool {
    use ESR_EL1::EC::Value::*;
    matches!(
        esr_elx_ec(esr),
        Some(InstrAbortCurrentEL | InstrAbortLowerEL)
    )
}

/// Linux: esr_get_class_string().
pub fn esr_get_class_string(esr: u64) -> &'static str {
    use ESR_EL1::EC::Value::*;
    match esr_elx_ec(esr) {
        Some(Unknown) => "Unknown/Uncategorized",
        Some(TrappedWFIorWFE) => "WFI/WFE",
        Some(TrappedFP) => "ASIMD",
        Some(IllegalExecutionState) => "PSTATE.IL",
        Some(SVC32) => "SVC (AArch32)",
        Some(SVC64) => "SVC (AArch64)",
        Some(HVC64) => "HVC (AArch64)",
        Some(SMC64) => "SMC (AArch64)",
        Some(TrappedMsrMrs) => "MSR/MRS (AArch64)",
        Some(InstrAbortLowerEL) => "IABT (lower EL)",
        Some(InstrAbortCurrentEL) => "IABT (current EL)",
        Some(PCAlignmentFault) => "PC Alignment",
        Some(DataAbortLowerEL) => "DABT (lower EL)",
        Some(DataAbortCurrentEL) => "DABT (current EL)",
        Some(SPAlignmentFault) => "SP Alignment",
        Some(SError) => "SError",
        Some(BreakpointLowerEL) => "Breakpoint (lower EL)",
        Some(BreakpointCurrentEL) => "Breakpoint (current EL)",
        Some(SoftwareStepLowerEL) => "Software Step (lower EL)",
        Some(SoftwareStepCurrentEL) => "Software Step (current EL)",
        Some(WatchpointLowerEL) => "Watchpoint (lower EL)",
        Some(WatchpointCurrentEL) => "Watchpoint (current EL)",
        Some(Brk64) => "BRK (AArch64)",
        _ => "UNRECOGNIZED EC",
    }
}

/// What kind of fault a fault status code names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FaultKind {
    AddressSize,
    Translation,
    AccessFlag,
    Permission,
    Alignment,
    External,
    Other,
}

/// Linux: fault_info[] — the name of a fault status code, its kind and level.
pub fn fault_info(fsc: u64) -> (&'static str, FaultKind, Option<u32>) {
    use FaultKind::*;
    let level = (fsc & 3) as u32;
    match fsc {
        0x00..=0x03 => {
            let names = [
                "level 0 address size fault",
                "level 1 address size fault",
                "level 2 address size fault",
                "level 3 address size fault",
            ];
            (names[level as usize], AddressSize, Some(level))
        }
        0x04..=0x07 => {
            let names = [
                "level 0 translation fault",
                "level 1 translation fault",
                "level 2 translation fault",
                "level 3 translation fault",
            ];
            (names[level as usize], Translation, Some(level))
        }
        0x08 => ("unknown 8", Other, None),
        0x09..=0x0b => {
            let names = [
                "",
                "level 1 access flag fault",
                "level 2 access flag fault",
                "level 3 access flag fault",
            ];
            (names[level as usize], AccessFlag, Some(level))
        }
        0x0c => ("unknown 12", Other, None),
        0x0d..=0x0f => {
            let names = [
                "",
                "level 1 permission fault",
                "level 2 permission fault",
                "level 3 permission fault",
            ];
            (names[level as usize], Permission, Some(level))
        }
        0x10 => ("synchronous external abort", External, None),
        0x21 => ("alignment fault", Alignment, None),
        0x30 => ("TLB conflict abort", Other, None),
        _ => ("unknown", Other, None),
    }
}

/// A decoded memory abort, for tests that provoke one on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultInfo {
    pub esr: u64,
    pub far: u64,
    pub kind: FaultKind,
    pub level: Option<u32>,
    pub write: bool,
    pub instruction: bool,
}

impl FaultInfo {
    pub fn decode(esr: u64, far: u64) -> Self {
        let abt = EsrAbt::new(esr);
        let (_, kind, level) = fault_info(abt.read(ESR_ELX_ABT::FSC));
        let instruction = esr_is_instruction_abort(esr);
        let write = !instruction && abt.is_set(ESR_ELX_ABT::WNR) && !abt.is_set(ESR_ELX_ABT::CM);
        Self {
            esr,
            far,
            kind,
            level,
            write,
            instruction,
        }
    }
}
