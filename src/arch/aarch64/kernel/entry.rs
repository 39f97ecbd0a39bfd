//! Exception entry (Linux: arch/arm64/kernel/entry-common.c): the Rust side of the vectors
//! in entry.S — the EL1 synchronous handler and the unhandled-exception reports.

use aarch64_cpu::registers::ESR_EL1::EC::Value as Ec;

use super::traps::die;
use crate::arch::aarch64::esr::{esr_elx_ec, esr_get_class_string};
use crate::arch::aarch64::mm::fault;
use crate::arch::aarch64::ptrace::PtRegs;

/// Linux: vector names in __panic_unhandled().
const VECTOR_NAMES: [&str; 16] = [
    "EL1t 64-bit sync",
    "EL1t 64-bit irq",
    "EL1t 64-bit fiq",
    "EL1t 64-bit error",
    "EL1h 64-bit sync",
    "EL1h 64-bit irq",
    "EL1h 64-bit fiq",
    "EL1h 64-bit error",
    "EL0t 64-bit sync",
    "EL0t 64-bit irq",
    "EL0t 64-bit fiq",
    "EL0t 64-bit error",
    "EL0t 32-bit sync",
    "EL0t 32-bit irq",
    "EL0t 32-bit fiq",
    "EL0t 32-bit error",
];

/// Called by every vector with the saved frame and the vector's slot number.
/// Linux: el1h_64_sync_handler() and the __panic_unhandled() stubs.
#[no_mangle]
extern "C" fn el1_exception(regs: &mut PtRegs, kind: u64) {
    let esr = regs.esr;
    if kind == 4 {
        match esr_elx_ec(esr) {
            Some(Ec::DataAbortCurrentEL | Ec::InstrAbortCurrentEL) => {
                return fault::do_mem_abort(regs.far, esr, regs)
            }
            Some(Ec::Unknown) if super::extable::fixup_undef(regs) => return,
            Some(Ec::Brk64) => {
                // SAFETY: fatal path; the log lock's holder never resumes.
                unsafe { crate::kernel::printk::bust_spinlocks() };
                // Linux: bug_handler() — BUG() already said where.
                if esr & 0xffff == crate::kernel::bug::BUG_BRK_IMM {
                    die("Oops - BUG", regs, esr);
                }
                pr_emerg!("Unexpected kernel BRK exception at EL1");
                die("Oops - BRK", regs, esr);
            }
            _ => {}
        }
    }
    // SAFETY: fatal path; the log lock's holder never resumes.
    unsafe { crate::kernel::printk::bust_spinlocks() };
    pr_crit!(
        "Unhandled {} exception on CPU{}, ESR {:#018x} -- {}",
        VECTOR_NAMES[kind as usize & 15],
        crate::arch::aarch64::percpu::smp_processor_id(),
        esr,
        esr_get_class_string(esr)
    );
    die("Oops", regs, esr);
}
