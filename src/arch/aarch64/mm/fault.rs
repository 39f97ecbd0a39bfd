//! Kernel faults (Linux: arch/arm64/mm/fault.c): decode the ESR, try an exception-table
//! fixup, otherwise report the fault with Linux's text and die.

use crate::arch::aarch64::kernel::entry::{die, PtRegs};
use crate::arch::aarch64::kernel::extable;
use crate::mm::PAGE_SIZE;

/// Linux: ESR_ELx_EC_* values this kernel decodes.
pub mod ec {
    pub const UNKNOWN: u64 = 0x00;
    pub const FP_ASIMD: u64 = 0x07;
    pub const ILL: u64 = 0x0e;
    pub const SVC64: u64 = 0x15;
    pub const SYS64: u64 = 0x18;
    pub const IABT_LOW: u64 = 0x20;
    pub const IABT_CUR: u64 = 0x21;
    pub const PC_ALIGN: u64 = 0x22;
    pub const DABT_LOW: u64 = 0x24;
    pub const DABT_CUR: u64 = 0x25;
    pub const SP_ALIGN: u64 = 0x26;
    pub const SERROR: u64 = 0x2f;
    pub const BRK64: u64 = 0x3c;
}

const ESR_ELX_IL: u64 = 1 << 25;
const ESR_ELX_ISS_MASK: u64 = (1 << 25) - 1;
const ESR_ELX_ISV: u64 = 1 << 24;
const ESR_ELX_FSC: u64 = 0x3f;
const ESR_ELX_WNR: u64 = 1 << 6;
const ESR_ELX_CM: u64 = 1 << 8;

/// The exception class of an ESR value.
pub const fn esr_elx_ec(esr: u64) -> u64 {
    (esr >> 26) & 0x3f
}

/// Linux: esr_get_class_string().
pub fn esr_get_class_string(esr: u64) -> &'static str {
    match esr_elx_ec(esr) {
        ec::UNKNOWN => "Unknown/Uncategorized",
        0x01 => "WFI/WFE",
        ec::FP_ASIMD => "ASIMD",
        ec::ILL => "PSTATE.IL",
        0x11 => "SVC (AArch32)",
        ec::SVC64 => "SVC (AArch64)",
        0x16 => "HVC (AArch64)",
        0x17 => "SMC (AArch64)",
        ec::SYS64 => "MSR/MRS (AArch64)",
        ec::IABT_LOW => "IABT (lower EL)",
        ec::IABT_CUR => "IABT (current EL)",
        ec::PC_ALIGN => "PC Alignment",
        ec::DABT_LOW => "DABT (lower EL)",
        ec::DABT_CUR => "DABT (current EL)",
        ec::SP_ALIGN => "SP Alignment",
        ec::SERROR => "SError",
        0x30 => "Breakpoint (lower EL)",
        0x31 => "Breakpoint (current EL)",
        0x32 => "Software Step (lower EL)",
        0x33 => "Software Step (current EL)",
        0x34 => "Watchpoint (lower EL)",
        0x35 => "Watchpoint (current EL)",
        ec::BRK64 => "BRK (AArch64)",
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
        let (_, kind, level) = fault_info(esr & ESR_ELX_FSC);
        let instruction = matches!(esr_elx_ec(esr), ec::IABT_CUR | ec::IABT_LOW);
        let write = !instruction && esr & ESR_ELX_WNR != 0 && esr & ESR_ELX_CM == 0;
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

/// Linux: mem_abort_decode() and data_abort_decode().
pub fn mem_abort_decode(esr: u64) {
    pr_alert!("Mem abort info:");
    pr_alert!("  ESR = {:#018x}", esr);
    pr_alert!(
        "  EC = {:#04x}: {}, IL = {} bits",
        esr_elx_ec(esr),
        esr_get_class_string(esr),
        if esr & ESR_ELX_IL != 0 { 32 } else { 16 }
    );
    pr_alert!("  SET = {}, FnV = {}", (esr >> 11) & 3, (esr >> 10) & 1);
    pr_alert!("  EA = {}, S1PTW = {}", (esr >> 9) & 1, (esr >> 7) & 1);
    pr_alert!(
        "  FSC = {:#04x}: {}",
        esr & ESR_ELX_FSC,
        fault_info(esr & ESR_ELX_FSC).0
    );
    if matches!(esr_elx_ec(esr), ec::DABT_CUR | ec::DABT_LOW) {
        pr_alert!("Data abort info:");
        if esr & ESR_ELX_ISV != 0 {
            pr_alert!("  Access size = {} byte(s)", 1u32 << ((esr >> 22) & 3));
            pr_alert!("  SSE = {}, SRT = {}", (esr >> 21) & 1, (esr >> 16) & 0x1f);
            pr_alert!("  SF = {}, AR = {}", (esr >> 15) & 1, (esr >> 14) & 1);
        } else {
            pr_alert!("  ISV = 0, ISS = {:#010x}", esr & ESR_ELX_ISS_MASK);
        }
        pr_alert!("  CM = {}, WnR = {}", (esr >> 8) & 1, (esr >> 6) & 1);
    }
}

/// Linux: do_mem_abort() for faults taken from EL1 — there is no user space, so every
/// fault is a kernel fault: fixed up if the faulting instruction has an exception-table
/// entry, fatal otherwise.
pub fn do_mem_abort(far: u64, esr: u64, regs: &mut PtRegs) {
    if extable::fixup_exception(regs, FaultInfo::decode(esr, far)) {
        return;
    }
    die_kernel_fault(far, esr, regs);
}

/// Linux: __do_kernel_fault() + die_kernel_fault().
fn die_kernel_fault(addr: u64, esr: u64, regs: &mut PtRegs) -> ! {
    let info = FaultInfo::decode(esr, addr);
    let msg = if info.kind == FaultKind::Permission {
        if info.write {
            "write to read-only memory"
        } else if info.instruction {
            "execute from non-executable memory"
        } else {
            "read from unreadable memory"
        }
    } else if addr < PAGE_SIZE {
        "NULL pointer dereference"
    } else {
        "paging request"
    };
    // SAFETY: we are on the way down; whatever held the log lock will not run again.
    unsafe { crate::kernel::printk::bust_spinlocks() };
    pr_alert!(
        "Unable to handle kernel {} at virtual address {:016x}",
        msg,
        addr
    );
    mem_abort_decode(esr);
    if let Some((start, end)) = crate::mm::vmalloc::api::vmalloc_guard_area(addr) {
        pr_alert!(
            "[{:016x}] vmalloc guard page of the area {:#x}-{:#x}",
            addr,
            start,
            end
        );
    }
    show_pte(addr);
    die("Oops", regs, esr)
}

/// Linux: show_pte() — which half of the address space the fault is in, and for the
/// kernel half, which page tables were live.
fn show_pte(addr: u64) {
    use aarch64_cpu::registers::TTBR1_EL1;
    // Linux: is_ttbr0_addr() is below TASK_SIZE (2^48); is_ttbr1_addr() from PAGE_OFFSET.
    if addr < 1 << 48 {
        pr_alert!("[{:016x}] user address but active_mm is swapper", addr);
    } else if addr < crate::arch::aarch64::memory::PAGE_OFFSET {
        pr_alert!(
            "[{:016x}] address between user and kernel address ranges",
            addr
        );
    } else {
        pr_alert!(
            "swapper pgtable: 4k pages, 48-bit VAs, pgdp={:016x}",
            TTBR1_EL1.get_baddr()
        );
    }
}
