//! Exception entry (Linux: arch/arm64/kernel/entry-common.c, traps.c): the Rust side of the
//! vectors in entry.S, the `die()` report and unhandled-exception panics.

use core::sync::atomic::{AtomicU32, Ordering};

use super::stacktrace::dump_backtrace;
use crate::arch::aarch64::mm::fault::{self, ec, esr_elx_ec, esr_get_class_string};
use crate::kernel::printk::LineBuf;

/// Linux: struct pt_regs — the frame entry.S saves (layout shared with the assembly).
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

const _: () = assert!(core::mem::size_of::<PtRegs>() == 288);

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
            ec::DABT_CUR | ec::IABT_CUR => return fault::do_mem_abort(regs.far, esr, regs),
            ec::UNKNOWN if super::extable::fixup_undef(regs) => return,
            ec::BRK64 => {
                // SAFETY: fatal path; the log lock's holder never resumes.
                unsafe { crate::kernel::printk::bust_spinlocks() };
                pr_emerg!("Unexpected kernel BRK exception at EL1");
                die("Oops - BRK", regs, esr);
            }
            _ => {}
        }
    }
    // SAFETY: fatal path; the log lock's holder never resumes.
    unsafe { crate::kernel::printk::bust_spinlocks() };
    pr_crit!(
        "Unhandled {} exception on CPU0, ESR {:#018x} -- {}",
        VECTOR_NAMES[kind as usize & 15],
        esr,
        esr_get_class_string(esr)
    );
    die("Oops", regs, esr);
}

static DIE_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Linux: die() — the Oops report: header, registers, call trace, then panic.
pub fn die(msg: &str, regs: &PtRegs, err: u64) -> ! {
    let n = DIE_COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    pr_emerg!("Internal error: {}: {:016x} [#{}] SMP", msg, err, n);
    pr_emerg!("Modules linked in:");
    show_regs(regs);
    pr_emerg!("---[ end trace 0000000000000000 ]---");
    panic!("{}: Fatal exception", msg);
}

/// Linux: __show_regs().
pub fn show_regs(regs: &PtRegs) {
    super::setup::dump_stack_print_info();
    pr_emerg!("pstate: {:08x}", regs.pstate);
    print_symbol_line("pc", regs.pc);
    print_symbol_line("lr", regs.regs[30]);
    pr_emerg!("sp : {:016x}", regs.sp);
    let mut i: i32 = 29;
    while i >= 0 {
        // Three registers a line, counting down, as Linux prints them.
        let mut line = LineBuf::<160>::new();
        let mut first = true;
        loop {
            let _ = core::fmt::Write::write_fmt(
                &mut line,
                format_args!(
                    "{}x{:<2}: {:016x}",
                    if first { "" } else { " " },
                    i,
                    regs.regs[i as usize]
                ),
            );
            first = false;
            let more = i % 3 != 0;
            i -= 1;
            if !more || i < 0 {
                break;
            }
        }
        pr_emerg!("{}", line.as_str());
    }
    pr_emerg!("Call trace:");
    dump_backtrace(regs.pc, regs.regs[29]);
}

fn print_symbol_line(name: &str, addr: u64) {
    match crate::kernel::kallsyms::lookup(addr) {
        Some(sym) => pr_emerg!("{} : {}", name, sym),
        None => pr_emerg!("{} : {:016x}", name, addr),
    }
}
