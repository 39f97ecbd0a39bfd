//! panic() (Linux: kernel/panic.c): report, then end the machine with status 1 so runners
//! and tests see a failure.
//!
//! What needs the machine — a console that surely prints, the backtrace, the way to stop —
//! comes from the architecture as [`PanicHooks`], registered first thing in start_kernel
//! (Linux reaches the same functions, dump_stack() and machine_power_off(), by name).

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

static PANICKING: AtomicBool = AtomicBool::new(false);

/// The exit status of a panic.
pub const PANIC_EXIT_CODE: u32 = 1;

/// What the panic path asks of the architecture.
pub struct PanicHooks {
    /// Registers a console if none is (the report must be seen).
    pub emergency_console: fn(),
    /// Linux: dump_stack() — a backtrace of the caller.
    pub dump_stack: fn(),
    /// Writes without any console, for a panic while panicking.
    pub early_write: fn(&str),
    /// Linux: smp_send_stop() — the other CPUs stop before the report (they might still be
    /// changing what it shows).
    pub smp_send_stop: fn(),
    /// Ends the machine with an exit status: never returns.
    pub machine_exit: fn(u32) -> !,
    /// Linux: raw_smp_processor_id(), for the reports' `CPU: n`.
    pub smp_processor_id: fn() -> usize,
}

static HOOKS: spin::Once<&'static PanicHooks> = spin::Once::new();

/// Registers the architecture's hooks (once, before anything can panic).
pub fn set_panic_hooks(hooks: &'static PanicHooks) {
    HOOKS.call_once(|| hooks);
}

/// Linux: dump_stack() — for the cores' reports (bad_page()); nothing before the hooks are
/// registered (and on the host).
pub fn dump_stack() {
    if let Some(h) = HOOKS.get() {
        (h.dump_stack)();
    }
}

/// Linux: raw_smp_processor_id() — 0 before the hooks are registered.
pub fn smp_processor_id() -> usize {
    HOOKS.get().map_or(0, |h| (h.smp_processor_id)())
}

/// Ends the machine with `code` through the architecture; without hooks, stops here.
pub fn machine_exit(code: u32) -> ! {
    if let Some(h) = HOOKS.get() {
        (h.machine_exit)(code);
    }
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    let hooks = HOOKS.get();
    if PANICKING.swap(true, Ordering::SeqCst) {
        // A panic while panicking: printing is what failed; just stop.
        if let Some(h) = hooks {
            (h.early_write)("Kernel panic - not syncing: recursive panic\n");
        }
        machine_exit(PANIC_EXIT_CODE);
    }
    // SAFETY: we never return to whatever was interrupted holding the log lock.
    unsafe { crate::kernel::printk::bust_spinlocks() };
    if let Some(h) = hooks {
        (h.emergency_console)();
    }
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
    if let Some(h) = hooks {
        (h.dump_stack)();
        (h.smp_send_stop)();
    }
    pr_emerg!("---[ end Kernel panic - not syncing: {} ]---", msg);
    machine_exit(PANIC_EXIT_CODE)
}
