//! PSCI (Linux: drivers/firmware/psci/psci.c): finding the firmware node and its conduit in
//! the device tree (psci_dt_init()'s probing, done once by setup_machine_fdt() into the
//! machine description), setting the conduit (psci_dt_init()), and the calls.

// Without `alloc` a diagnostic cannot be boxed; it is returned by value on cold paths only.
#![allow(clippy::result_large_err)]

use core::sync::atomic::{AtomicU8, Ordering};

use crate::drivers::of::libfdt::{Diagnostic, Fdt, Node, Problem, Severity};

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

/// Linux: psci_of_match[] — the bindings psci_dt_init() looks for when there is no `/psci`.
const PSCI_OF_MATCH: [&str; 3] = ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"];

/// Linux: psci_dt_init()'s of_find_matching_node_and_match() — `/psci`, else the first node
/// compatible with a PSCI binding (in the table's order).
pub fn psci_find_node<'a>(fdt: &Fdt<'a>) -> Option<Node<'a>> {
    fdt.root()
        .child("psci")
        .or_else(|| PSCI_OF_MATCH.iter().find_map(|c| fdt.find_compatible(c)))
}

/// Linux: get_set_conduit_method() — the node's `method`, `"hvc"` or `"smc"`.
pub fn get_set_conduit_method<'a>(np: &Node<'a>) -> Result<Conduit, Diagnostic<'a>> {
    match np.prop_str("method") {
        Some("hvc") => Ok(Conduit::Hvc),
        Some("smc") => Ok(Conduit::Smc),
        Some(m) => Err(np.diag(Severity::Error, "method", Problem::UnknownMethod(m))),
        None => Err(np.diag(Severity::Error, "method", Problem::Missing)),
    }
}

/// What the device tree says about PSCI: no node (`None`), or the node's conduit or why it
/// has none. Read once, by setup_machine_fdt().
pub type PsciProbe<'a> = Option<Result<Conduit, Diagnostic<'a>>>;

/// psci_dt_init()'s probing: [`psci_find_node`], then [`get_set_conduit_method`].
pub fn psci_dt_probe<'a>(fdt: &Fdt<'a>) -> PsciProbe<'a> {
    psci_find_node(fdt).map(|np| get_set_conduit_method(&np))
}

/// Linux: psci_dt_init() — the conduit for SYSTEM_OFF, from what the probe found; a node
/// with a bad `method` is reported and leaves no conduit.
pub fn psci_dt_init(probe: &PsciProbe) {
    let conduit = match probe {
        Some(Ok(c)) => *c,
        Some(Err(d)) => {
            d.print("psci: ");
            Conduit::None
        }
        None => Conduit::None,
    };
    set_conduit(conduit);
}

/// Linux: set_conduit().
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
