//! How the machine stops (Linux: arch/arm64/kernel/process.c, machine_power_off() and
//! friends), and the hooks the generic panic() path uses (kernel/panic.rs).

use super::{psci, semihosting, stacktrace};
use crate::arch::aarch64::mm::mmu::earlycon_map;
use crate::drivers::tty::pl011::{self, DEFAULT_PL011_BASE};
use crate::kernel::panic::PanicHooks;
use crate::kernel::printk;
use crate::mm::PhysAddr;

/// Ends the machine with `code`: semihosting exit, or power off, or halt forever.
pub fn machine_exit(code: u32) -> ! {
    semihosting::exit(code);
    psci::system_off();
    loop {
        aarch64_cpu::asm::wfi();
    }
}

/// The console the panic path uses when it finds none registered: the default UART.
fn emergency_console() {
    if printk::console().is_none() {
        let pa = PhysAddr(DEFAULT_PL011_BASE);
        pl011::earlycon_setup(pa, earlycon_map(pa), "");
    }
}

fn early_write(s: &str) {
    semihosting::write0(s);
}

/// What panic() needs from arm64 (registered by start_kernel).
pub static PANIC_HOOKS: PanicHooks = PanicHooks {
    emergency_console,
    dump_stack: stacktrace::dump_stack,
    early_write,
    machine_exit,
};
