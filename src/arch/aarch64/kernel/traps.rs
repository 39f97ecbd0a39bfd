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

/// Linux: OVERFLOW_STACK_SIZE (SZ_4K there; Rust's report path needs more).
pub const OVERFLOW_STACK_SIZE: usize = 16 * 1024;

/// How far below a stack's bottom an SP counts as overflowed: the guard page and one more,
/// as an exception frame pushed from inside the guard ends below it.
pub const STACK_GUARD_WINDOW: usize = 2 * crate::mm::PAGE_SIZE as usize;

/// Linux: DEFINE_PER_CPU(overflow_stack) — the stack entry.S switches to when SP has run
/// into the guard page below the CPU's stack.
#[repr(C, align(16))]
pub struct OverflowStack(core::cell::UnsafeCell<[u8; OVERFLOW_STACK_SIZE]>);
// SAFETY: each CPU's copy is used only by that CPU, by entry.S on the way to a panic.
unsafe impl Sync for OverflowStack {}

#[no_mangle]
#[link_section = ".data..percpu"]
#[allow(non_upper_case_globals)]
pub static overflow_stack: OverflowStack =
    OverflowStack(core::cell::UnsafeCell::new([0; OVERFLOW_STACK_SIZE]));

/// Linux: handle_bad_stack() and panic_bad_stack() — entry.S found SP in the guard page
/// below this CPU's stack and built `regs` on the overflow stack. The report, then panic.
#[no_mangle]
extern "C" fn handle_bad_stack(regs: &PtRegs) -> ! {
    use crate::arch::aarch64::percpu::this_cpu_ptr;
    // SAFETY: fatal path; the log lock's holder never resumes.
    unsafe { crate::kernel::printk::bust_spinlocks() };
    let (lo, hi) = crate::arch::aarch64::percpu::this_cpu_stack();
    // SAFETY: a `.data..percpu` static.
    let ovf = unsafe { this_cpu_ptr(&overflow_stack) }.0.get() as u64;
    pr_emerg!("Insufficient stack space to handle exception!");
    pr_emerg!(
        "ESR: 0x{:016x} -- {}",
        regs.esr,
        crate::arch::aarch64::esr::esr_get_class_string(regs.esr)
    );
    pr_emerg!("FAR: 0x{:016x}", regs.far);
    pr_emerg!("Task stack:     [0x{:016x}..0x{:016x}]", lo, hi);
    pr_emerg!(
        "Overflow stack: [0x{:016x}..0x{:016x}]",
        ovf,
        ovf + OVERFLOW_STACK_SIZE as u64
    );
    show_regs(regs);
    panic!("kernel stack overflow");
}
