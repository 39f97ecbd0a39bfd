//! PSCI calls (Linux: drivers/firmware/psci/psci.c). The conduit, `hvc` or `smc`, comes from
//! the device tree's `/psci` node.

use core::sync::atomic::{AtomicU8, Ordering};

/// Linux: PSCI_0_2_FN_SYSTEM_OFF.
const PSCI_0_2_FN_SYSTEM_OFF: u64 = 0x8400_0008;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Conduit {
    None = 0,
    Hvc = 1,
    Smc = 2,
}

static CONDUIT: AtomicU8 = AtomicU8::new(Conduit::None as u8);

/// Linux: psci_dt_init() → set_conduit().
pub fn set_conduit(c: Conduit) {
    CONDUIT.store(c as u8, Ordering::Relaxed);
}

pub fn conduit() -> Conduit {
    match CONDUIT.load(Ordering::Relaxed) {
        1 => Conduit::Hvc,
        2 => Conduit::Smc,
        _ => Conduit::None,
    }
}

/// Linux: psci_sys_poweroff(). Returns only if there is no conduit or the call failed.
pub fn system_off() {
    // SAFETY: SYSTEM_OFF takes no memory arguments; firmware either powers off or returns.
    unsafe {
        match conduit() {
            Conduit::Hvc => {
                core::arch::asm!("hvc #0", inout("x0") PSCI_0_2_FN_SYSTEM_OFF => _, options(nostack))
            }
            Conduit::Smc => {
                core::arch::asm!("smc #0", inout("x0") PSCI_0_2_FN_SYSTEM_OFF => _, options(nostack))
            }
            Conduit::None => {}
        }
    }
}
