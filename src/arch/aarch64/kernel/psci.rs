//! PSCI (Linux: drivers/firmware/psci/psci.c): finding the firmware node and its conduit in
//! the device tree (psci_dt_init()'s probing, done once by setup_machine_fdt() into the
//! machine description), psci_dt_init() with psci_probe()'s version, function-ID, migration
//! and SMCCC checks and their `psci:` lines, and the calls; and the `"psci"` enable
//! method's CPU operations (Linux: arch/arm64/kernel/psci.c, cpu_psci_ops).
//!
//! Difference from Linux: with only the PSCI 0.1 binding, whose function IDs come from the
//! device tree (not read here), there is no CPU_ON, so a `"psci"` CPU is reported by
//! cpu_psci_cpu_prepare() and not booted (Linux would use the tree's `cpu_on` ID).

// Without `alloc` a diagnostic cannot be boxed; it is returned by value on cold paths only.
#![allow(clippy::result_large_err)]

use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use crate::arch::aarch64::sysreg::MPIDR_HWID_BITMASK;
use crate::drivers::of::libfdt::{Diagnostic, Fdt, Node, Problem, Severity};

/// Linux: PSCI_0_2_FN_PSCI_VERSION.
const PSCI_0_2_FN_PSCI_VERSION: u64 = 0x8400_0000;
/// Linux: PSCI_0_2_FN_MIGRATE_INFO_TYPE.
const PSCI_0_2_FN_MIGRATE_INFO_TYPE: u64 = 0x8400_0006;
/// Linux: PSCI_0_2_FN64_MIGRATE_INFO_UP_CPU.
const PSCI_0_2_FN64_MIGRATE_INFO_UP_CPU: u64 = 0xc400_0007;
/// Linux: PSCI_0_2_FN64_CPU_ON.
const PSCI_0_2_FN64_CPU_ON: u64 = 0xc400_0003;
/// Linux: PSCI_0_2_FN_SYSTEM_OFF.
const PSCI_0_2_FN_SYSTEM_OFF: u64 = 0x8400_0008;
/// Linux: PSCI_1_0_FN_PSCI_FEATURES.
const PSCI_1_0_FN_PSCI_FEATURES: u64 = 0x8400_000a;
/// Linux: ARM_SMCCC_VERSION_FUNC_ID (include/linux/arm-smccc.h).
const ARM_SMCCC_VERSION_FUNC_ID: u64 = 0x8000_0000;

/// Linux: PSCI_RET_NOT_SUPPORTED.
const PSCI_RET_NOT_SUPPORTED: i32 = -1;
/// Linux: PSCI_0_2_TOS_UP_MIGRATE, PSCI_0_2_TOS_UP_NO_MIGRATE, PSCI_0_2_TOS_MP.
const PSCI_0_2_TOS_UP_MIGRATE: i32 = 0;
const PSCI_0_2_TOS_UP_NO_MIGRATE: i32 = 1;
const PSCI_0_2_TOS_MP: i32 = 2;
/// Linux: ARM_SMCCC_VERSION_1_0 / _1_1 (encoded as PSCI versions are: major << 16 | minor).
const ARM_SMCCC_VERSION_1_0: u32 = 0x1_0000;
const ARM_SMCCC_VERSION_1_1: u32 = 0x1_0001;

/// Linux: PSCI_VERSION(0, 2).
const PSCI_VERSION_0_2: u32 = 0x2;
/// Linux: PSCI_VERSION(1, 0).
const PSCI_VERSION_1_0: u32 = 0x1_0000;

/// Linux: PSCI_VERSION_MAJOR() / PSCI_VERSION_MINOR().
const fn psci_version_major(v: u32) -> u32 {
    v >> 16
}
const fn psci_version_minor(v: u32) -> u32 {
    v & 0xffff
}

/// The PSCI version psci_probe() found (0 before, or without PSCI 0.2+).
static PSCI_VERSION: AtomicU32 = AtomicU32::new(0);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Conduit {
    None = 0,
    Hvc = 1,
    Smc = 2,
}

static CONDUIT: AtomicU8 = AtomicU8::new(Conduit::None as u8);

/// Which binding the PSCI node matched (Linux: psci_of_match[]'s init functions).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PsciBinding {
    /// `arm,psci`: psci_0_1_init(), function IDs from the device tree.
    V0_1,
    /// `arm,psci-0.2`: psci_0_2_init().
    V0_2,
    /// `arm,psci-1.0`: psci_1_0_init().
    V1_0,
}

/// Linux: psci_of_match[].
const PSCI_OF_MATCH: [(&str, PsciBinding); 3] = [
    ("arm,psci", PsciBinding::V0_1),
    ("arm,psci-0.2", PsciBinding::V0_2),
    ("arm,psci-1.0", PsciBinding::V1_0),
];

/// Linux: of_match_node() on psci_of_match[] — the best match is the node's first
/// `compatible` string that the table knows.
fn psci_match(np: &Node) -> Option<PsciBinding> {
    np.compatible()
        .find_map(|c| PSCI_OF_MATCH.iter().find(|(m, _)| *m == c).map(|(_, b)| *b))
}

/// Linux: psci_dt_init()'s of_find_matching_node_and_match() — the first node, in tree order,
/// compatible with a PSCI binding, and the binding. `/psci` (where QEMU and most trees put
/// it) is looked at first, so the usual case costs one lookup.
pub fn psci_find_node<'a>(fdt: &Fdt<'a>) -> Option<(Node<'a>, PsciBinding)> {
    if let Some(np) = fdt.root().child("psci") {
        if let Some(b) = psci_match(&np) {
            return Some((np, b));
        }
    }
    fdt.nodes()
        .find_map(|(np, _depth)| psci_match(&np).map(|b| (np, b)))
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

/// What the device tree says about PSCI: no matching node (`None`), or the binding it
/// matched and its conduit or why it has none. Read once, by setup_machine_fdt().
pub type PsciProbe<'a> = Option<(PsciBinding, Result<Conduit, Diagnostic<'a>>)>;

/// psci_dt_init()'s probing: [`psci_find_node`], then [`get_set_conduit_method`].
pub fn psci_dt_probe<'a>(fdt: &Fdt<'a>) -> PsciProbe<'a> {
    psci_find_node(fdt).map(|(np, b)| (b, get_set_conduit_method(&np)))
}

/// Linux: psci_dt_init() — the binding's init function on what the probe found: the
/// conduit (get_set_conduit_method(), `probing for conduit method from DT.`), then for
/// PSCI 0.2 and 1.0 psci_probe() (the version, the standard function IDs, the Trusted OS
/// migration type, the SMC Calling Convention version), each with Linux's `psci:` line. A
/// node with a bad `method` is reported and leaves no conduit; a firmware older than its
/// binding claims is reported and its conduit is not used.
pub fn psci_dt_init(probe: &PsciProbe) {
    let Some((binding, method)) = probe else {
        return;
    };
    pr_info!("psci: probing for conduit method from DT.");
    let conduit = match method {
        Ok(c) => *c,
        Err(d) => {
            d.print("psci: ");
            return;
        }
    };
    set_conduit(conduit);
    match binding {
        PsciBinding::V0_1 => pr_info!("psci: Using PSCI v0.1 Function IDs from DT"),
        PsciBinding::V0_2 | PsciBinding::V1_0 => {
            let ok = psci_probe().is_some_and(|ver| {
                if *binding == PsciBinding::V1_0 && ver < PSCI_VERSION_1_0 {
                    pr_err!("psci: Conflicting PSCI version detected.");
                    false
                } else {
                    true
                }
            });
            if !ok {
                set_conduit(Conduit::None);
            }
        }
    }
}

/// Linux: psci_probe() — PSCI_VERSION, then the 0.2 function IDs, the migration type and,
/// from PSCI 1.0 on, the SMCCC version. None if the firmware is older than PSCI 0.2.
fn psci_probe() -> Option<u32> {
    let ver = invoke_psci_fn(PSCI_0_2_FN_PSCI_VERSION, 0, 0, 0) as u32;
    pr_info!(
        "psci: PSCIv{}.{} detected in firmware.",
        psci_version_major(ver),
        psci_version_minor(ver)
    );
    if psci_version_major(ver) == 0 && psci_version_minor(ver) < 2 {
        pr_err!("psci: Conflicting PSCI version detected.");
        return None;
    }
    PSCI_VERSION.store(ver, Ordering::Relaxed);
    // Linux: psci_0_2_set_functions().
    pr_info!("psci: Using standard PSCI v0.2 function IDs");
    psci_init_migrate();
    if psci_version_major(ver) >= 1 {
        psci_init_smccc();
    }
    Some(ver)
}

/// Linux: psci_init_migrate() — where a uniprocessor Trusted OS lives, if there is one.
fn psci_init_migrate() {
    let ty = invoke_psci_fn(PSCI_0_2_FN_MIGRATE_INFO_TYPE, 0, 0, 0) as i32;
    match ty {
        PSCI_0_2_TOS_MP => pr_info!("psci: Trusted OS migration not required"),
        PSCI_RET_NOT_SUPPORTED => pr_info!("psci: MIGRATE_INFO_TYPE not supported."),
        PSCI_0_2_TOS_UP_MIGRATE | PSCI_0_2_TOS_UP_NO_MIGRATE => {
            let cpuid = invoke_psci_fn(PSCI_0_2_FN64_MIGRATE_INFO_UP_CPU, 0, 0, 0);
            if cpuid & !MPIDR_HWID_BITMASK != 0 {
                pr_warn!(
                    "psci: MIGRATE_INFO_UP_CPU reported invalid physical ID ({:#x})",
                    cpuid
                );
            } else {
                pr_info!("psci: Trusted OS resident on physical CPU {:#x}", cpuid);
            }
        }
        _ => pr_err!("psci: MIGRATE_INFO_TYPE returned unknown type ({})", ty),
    }
}

/// Linux: psci_init_smccc() — SMCCC 1.1 if PSCI_FEATURES says SMCCC_VERSION exists and it
/// answers 1.1 or more; 1.0 otherwise. SMCCC and PSCI versions share an encoding.
fn psci_init_smccc() {
    let mut ver = ARM_SMCCC_VERSION_1_0;
    let feature = invoke_psci_fn(PSCI_1_0_FN_PSCI_FEATURES, ARM_SMCCC_VERSION_FUNC_ID, 0, 0);
    if feature as i32 != PSCI_RET_NOT_SUPPORTED {
        let ret = invoke_psci_fn(ARM_SMCCC_VERSION_FUNC_ID, 0, 0, 0) as u32;
        if ret >= ARM_SMCCC_VERSION_1_1 {
            ver = ret;
        }
    }
    pr_info!(
        "psci: SMC Calling Convention v{}.{}",
        psci_version_major(ver),
        psci_version_minor(ver)
    );
}

/// The PSCI version the firmware reported (0 before psci_dt_init or without PSCI 0.2+).
pub fn psci_version() -> u32 {
    PSCI_VERSION.load(Ordering::Relaxed)
}

/// Linux: invoke_psci_fn (__invoke_psci_fn_hvc / _smc) — one SMCCC call through the
/// conduit; `u64::MAX` (PSCI_RET_NOT_SUPPORTED) without one.
fn invoke_psci_fn(fid: u64, a0: u64, a1: u64, a2: u64) -> u64 {
    // One SMCCC call through `$insn` (hvc or smc): x0..x3 in, x0 out, x4-x17 clobbered.
    macro_rules! smccc {
        ($insn:literal) => {{
            let mut x0 = fid;
            // SAFETY: an SMCCC call: the firmware reads x0..x3 and may clobber x0-x17 (SMCCC
            // 1.0), hence the clobbers; it touches no memory of ours.
            unsafe {
                core::arch::asm!(
                    $insn,
                    inout("x0") x0, inout("x1") a0 => _, inout("x2") a1 => _,
                    inout("x3") a2 => _, out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                    out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                    out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                    options(nostack)
                )
            };
            x0
        }};
    }
    match conduit() {
        Conduit::Hvc => smccc!("hvc #0"),
        Conduit::Smc => smccc!("smc #0"),
        Conduit::None => u64::MAX,
    }
}

/// Linux: psci_0_2_cpu_on() — start the CPU whose MPIDR affinity is `cpuid` at the
/// physical address `entry_point`, with `context_id` in its x0. Returns the PSCI status
/// (0: started); PSCI_RET_NOT_SUPPORTED without a conduit or with only PSCI 0.1 (whose
/// function IDs from the device tree this kernel does not read).
pub fn psci_cpu_on(cpuid: u64, entry_point: u64, context_id: u64) -> i32 {
    if psci_version() < PSCI_VERSION_0_2 {
        return PSCI_RET_NOT_SUPPORTED;
    }
    invoke_psci_fn(PSCI_0_2_FN64_CPU_ON, cpuid, entry_point, context_id) as i32
}

/// Linux: psci_ops.cpu_on != NULL — CPU_ON is callable: a conduit and PSCI 0.2 or later.
fn psci_has_cpu_on() -> bool {
    conduit() != Conduit::None && psci_version() >= PSCI_VERSION_0_2
}

/// Linux: cpu_psci_cpu_init() — a `"psci"` CPU needs nothing from its node.
pub fn cpu_psci_cpu_init(_cpu: usize) -> Result<(), i32> {
    Ok(())
}

/// Linux: cpu_psci_cpu_prepare() — only a firmware with CPU_ON can boot the CPU.
pub fn cpu_psci_cpu_prepare(cpu: usize) -> Result<(), i32> {
    if !psci_has_cpu_on() {
        pr_err!("psci: no cpu_on method, not booting CPU{}", cpu);
        return Err(-19); // -ENODEV
    }
    Ok(())
}

extern "C" {
    /// head.S: where CPU_ON starts a secondary (physical address, in `.idmap.text`).
    fn secondary_entry();
}

/// Linux: cpu_psci_cpu_boot() — CPU_ON for `mpidr` at `secondary_entry`'s physical
/// address; the context id is the logical CPU number (Linux passes 0: see smp.rs).
pub fn cpu_psci_cpu_boot(cpu: usize, mpidr: u64) -> Result<(), i32> {
    let entry = crate::arch::aarch64::memory::pa_symbol(secondary_entry as *const u8);
    let err = psci_to_linux_errno(psci_cpu_on(mpidr, entry.as_u64(), cpu as u64));
    if err != 0 {
        pr_err!("psci: failed to boot CPU{} ({})", cpu, err);
        return Err(err);
    }
    Ok(())
}

/// Linux: psci_to_linux_errno() — a PSCI status as a negative errno.
pub fn psci_to_linux_errno(err: i32) -> i32 {
    match err {
        0 => 0,
        PSCI_RET_NOT_SUPPORTED => -95, // -EOPNOTSUPP
        -3 => -1,                      // PSCI_RET_DENIED: -EPERM
        _ => -22,                      // PSCI_RET_INVALID_PARAMS and the rest: -EINVAL
    }
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
    invoke_psci_fn(PSCI_0_2_FN_SYSTEM_OFF, 0, 0, 0);
}
