//! die() and the register dump of an Oops (Linux: arch/arm64/kernel/traps.c, and
//! __show_regs() of arch/arm64/kernel/process.c).

use core::sync::atomic::{AtomicU32, Ordering};

use super::stacktrace::dump_backtrace;
use crate::arch::aarch64::ptrace::PtRegs;
use crate::kernel::printk::LineBuf;

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
