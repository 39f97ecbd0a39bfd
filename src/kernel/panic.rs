//! panic() (Linux: kernel/panic.c): report, then end the machine — through semihosting with
//! status 1 so runners and tests see a failure, else PSCI SYSTEM_OFF, else halt.

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::aarch64::kernel::{psci, semihosting, stacktrace};

static PANICKING: AtomicBool = AtomicBool::new(false);

/// The exit status of a panic.
pub const PANIC_EXIT_CODE: u32 = 1;

/// Ends the machine with `code`: semihosting exit, or power off, or halt forever.
pub fn machine_exit(code: u32) -> ! {
    semihosting::exit(code);
    psci::system_off();
    loop {
        aarch64_cpu::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    if PANICKING.swap(true, Ordering::SeqCst) {
        // A panic while panicking: printing is what failed; just stop.
        semihosting::write0("Kernel panic - not syncing: recursive panic\n");
        machine_exit(PANIC_EXIT_CODE);
    }
    // SAFETY: we never return to whatever was interrupted holding the log lock.
    unsafe { crate::kernel::printk::bust_spinlocks() };
    crate::drivers::tty::pl011::emergency_console();
    let msg = info.message();
    pr_emerg!("Kernel panic - not syncing: {}", msg);
    if let Some(loc) = info.location() {
        pr_emerg!(
            "panic location: {}:{}:{}",
            loc.file(),
            loc.line(),
            loc.column()
        );
    }
    stacktrace::dump_stack();
    pr_emerg!("---[ end Kernel panic - not syncing: {} ]---", msg);
    machine_exit(PANIC_EXIT_CODE)
}
