//! The register frame an exception saves (Linux: arch/arm64/include/asm/ptrace.h,
//! `struct pt_regs`, and the S_* offsets asm-offsets.c derives from it for entry.S).

/// Linux: struct pt_regs — the frame entry.S saves (its offsets come from here, see
/// `S_FRAME_SIZE` and friends).
#[repr(C)]
#[derive(Debug)]
pub struct PtRegs {
    pub regs: [u64; 31],
    pub sp: u64,
    pub pc: u64,
    pub pstate: u64,
    pub esr: u64,
    pub far: u64,
}

/// Linux: PT_REGS_SIZE (asm-offsets: S_FRAME_SIZE).
pub const S_FRAME_SIZE: usize = core::mem::size_of::<PtRegs>();
/// Linux: S_LR — x30, followed by the saved sp.
pub const S_LR: usize = core::mem::offset_of!(PtRegs, regs) + 30 * 8;
/// Linux: S_PC — pc, followed by pstate.
pub const S_PC: usize = core::mem::offset_of!(PtRegs, pc);
/// The saved ESR, followed by the FAR.
pub const S_ESR: usize = core::mem::offset_of!(PtRegs, esr);

const _: () = assert!(S_FRAME_SIZE == 288 && S_FRAME_SIZE.is_multiple_of(16));
const _: () = assert!(core::mem::offset_of!(PtRegs, sp) == S_LR + 8);
const _: () = assert!(core::mem::offset_of!(PtRegs, pstate) == S_PC + 8);
const _: () = assert!(core::mem::offset_of!(PtRegs, far) == S_ESR + 8);
