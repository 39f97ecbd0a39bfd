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

/// Linux: machine_power_off() — stop the other CPUs (quietly: the system is powering
/// off, Linux's SYSTEM_POWER_OFF), then PSCI SYSTEM_OFF. Returns only if there is no PSCI.
pub fn machine_power_off() {
    super::smp_call::smp_send_stop(false);
    psci::system_off();
}

/// panic()'s smp_send_stop(): the system is still running, so Linux says it stops them.
fn panic_smp_send_stop() {
    super::smp_call::smp_send_stop(true);
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
    smp_send_stop: panic_smp_send_stop,
    machine_exit,
    smp_processor_id: crate::arch::aarch64::percpu::smp_processor_id,
};
