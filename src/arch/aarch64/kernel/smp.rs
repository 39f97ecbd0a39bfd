//! The CPUs the device tree describes and their bring-up (Linux: arch/arm64/kernel/smp.c —
//! of_parse_and_init_cpus(), smp_init_cpus(), __cpu_up(), secondary_start_kernel(),
//! smp_cpus_done(), the arch's smp_processor_id(); kernel/smp.c — smp_init(),
//! bringup_nonboot_cpus()). The CPUs are listed, numbered and put on their NUMA nodes,
//! which sizes the per-CPU areas and the allocators' per-CPU state; smp_init() then starts
//! each secondary with PSCI `CPU_ON` into head.S's `secondary_entry`.
//!
//! A secondary CPU, once online, touches no allocator, lock or console: it reports its
//! MPIDR, MIDR, boot EL and the CPU number it read through TPIDR_EL1 in its own slot of
//! [`SECONDARY_STATE`], marks itself online and parks in `wfe`. The boot CPU prints its
//! `CPUn: Booted secondary processor` line on its behalf (printk has one writer).
//!
//! Differences from Linux: logical CPU n is the n-th usable CPU node in `/cpus` order (Linux
//! gives 0 to the boot CPU wherever it is listed and rejects duplicate MPIDRs); a CPU node
//! with an unusable `reg` or `numa-node-id` is left out silently.
//! CPU_ON's context id is the logical CPU number (Linux passes 0 and hands over one CPU at
//! a time through a single `secondary_data`); here each CPU has its own slot, so one that
//! answers after its timeout cannot take the next CPU's stack. The idle stack is a
//! THREAD_SIZE vmalloc area on the CPU's node (Linux: VMAP_STACK), so the unmapped guard
//! page of the area below (or unmapped vmalloc space) lies under it. A CPU node whose
//! `enable-method` is not `psci` is reported as `failed to boot: -95` when its turn comes
//! (Linux refuses it earlier, in smp_init_cpus()). Only the PSCI path is checked by a test;
//! the `failed to come online` timeout (5 s, as Linux's) is not.

// Without `alloc` a diagnostic cannot be boxed; it is returned by value on cold paths only.
#![allow(clippy::result_large_err)]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::cpu_ops::cpu_read_enable_method;
use crate::drivers::of::base::{for_each_of_cpu_node, of_get_cpu_hwid};
use crate::drivers::of::libfdt::{Diagnostic, Fdt, Problem, Severity};
use crate::drivers::of::of_numa::of_node_to_nid;
use crate::include::numa::NR_CPUS;
use crate::include::numa::NUMA_NO_NODE;
use crate::mm::numa::NumaInfo;

use crate::arch::aarch64::sysreg::MPIDR_HWID_BITMASK;

/// One usable CPU node of `/cpus`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OfCpu<'a> {
    /// `reg`: the MPIDR affinity bits (Linux: of_get_cpu_hwid(), cpu_logical_map()).
    pub mpidr: u64,
    /// Linux: of_node_to_nid().
    pub numa_node_id: Option<u32>,
    /// Linux: cpu_read_enable_method().
    pub enable_method: Option<&'a str>,
}

/// Each CPU node as arm64 reads it (Linux: of_parse_and_init_cpus()'s loop): a hardware id
/// within MPIDR_HWID_BITMASK and a well-formed `numa-node-id`, or why the CPU is unusable.
pub fn of_cpus<'a>(fdt: &Fdt<'a>) -> impl Iterator<Item = Result<OfCpu<'a>, Diagnostic<'a>>> {
    for_each_of_cpu_node(fdt).map(|cpu| {
        let mpidr = of_get_cpu_hwid(&cpu)?;
        if mpidr & !MPIDR_HWID_BITMASK != 0 {
            let p = Problem::InvalidMpidr(mpidr);
            return Err(cpu.node.diag(Severity::Error, "reg", p));
        }
        Ok(OfCpu {
            mpidr,
            numa_node_id: of_node_to_nid(&cpu.node)?,
            enable_method: cpu_read_enable_method(&cpu.node),
        })
    })
}

/// The CPUs the kernel knows (Linux: cpu_logical_map, cpu_possible_mask, nr_cpu_ids): the
/// first NR_CPUS usable CPU nodes, logical CPU n being the n-th.
#[derive(Clone, Copy, Debug)]
pub struct SmpCpus<'a> {
    cpus: [OfCpu<'a>; NR_CPUS],
    /// Usable CPU nodes kept in `cpus` (at most NR_CPUS).
    nr: usize,
    /// Usable CPU nodes in the tree, including those past NR_CPUS.
    total: usize,
}

impl<'a> SmpCpus<'a> {
    /// Linux: of_parse_and_init_cpus() — one walk of `/cpus`.
    pub fn of_parse_and_init_cpus(fdt: &Fdt<'a>) -> Self {
        let mut s = Self {
            cpus: [OfCpu::default(); NR_CPUS],
            nr: 0,
            total: 0,
        };
        for cpu in of_cpus(fdt).filter_map(|c| c.ok()) {
            if let Some(slot) = s.cpus.get_mut(s.total) {
                *slot = cpu;
                s.nr += 1;
            }
            s.total += 1;
        }
        s
    }

    /// The usable CPUs, logical CPU 0 first.
    pub fn cpus(&self) -> &[OfCpu<'a>] {
        &self.cpus[..self.nr]
    }

    /// Usable CPU nodes in the tree, including those past NR_CPUS.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Linux: nr_cpu_ids — the CPUs the device tree lists (at least the boot CPU).
    pub fn nr_cpu_ids(&self) -> usize {
        self.nr.clamp(1, NR_CPUS)
    }

    /// Linux: smp_init_cpus()'s early_map_cpu_to_node() for each CPU — each on its
    /// `numa-node-id` (NUMA_NO_NODE if none). Secondary CPUs are not started yet.
    pub fn smp_init_cpus(&self, numa: &mut NumaInfo) {
        for (cpu, c) in self.cpus().iter().enumerate() {
            let nid = c.numa_node_id.map_or(NUMA_NO_NODE, |n| n as i32);
            numa.early_map_cpu_to_node(cpu, nid);
        }
    }
}

pub use crate::arch::aarch64::percpu::{cpu_number, set_my_cpu_offset, smp_processor_id};

/// Linux: smp_prepare_boot_cpu()'s set_my_cpu_offset(per_cpu_offset(0)), and
/// smp_prepare_cpus()'s `per_cpu(cpu_number, cpu) = cpu` for every possible CPU.
pub fn smp_prepare_cpus(nr_cpu_ids: usize) {
    for cpu in 0..nr_cpu_ids {
        let off = crate::mm::percpu::per_cpu_offset(cpu);
        let p = (core::ptr::addr_of!(cpu_number) as u64).wrapping_add(off);
        // SAFETY: `p` is `cpu`'s copy of `cpu_number` in its per-CPU unit (linear map),
        // written before that CPU runs.
        unsafe { (*(p as *const AtomicU64)).store(cpu as u64, Ordering::Relaxed) };
    }
    set_my_cpu_offset(crate::mm::percpu::per_cpu_offset(0));
}

/// Linux: THREAD_SIZE — each secondary's (idle task's) stack.
const THREAD_SIZE: u64 = 16 * 1024;

/// Linux: secondary_data — what head.S's `__secondary_switched` loads: the stack top and the
/// per-CPU offset. One slot per CPU (indexed by CPU_ON's context id), so a CPU that comes
/// up late never finds another CPU's values.
#[repr(C)]
pub struct SecondaryData {
    stack_top: AtomicU64,
    percpu_offset: AtomicU64,
}

/// head.S reads `secondary_data + cpu * 16`.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static secondary_data: [SecondaryData; NR_CPUS] = [const {
    SecondaryData {
        stack_top: AtomicU64::new(0),
        percpu_offset: AtomicU64::new(0),
    }
}; NR_CPUS];

/// What a secondary CPU reports once it runs (Linux: set_cpu_online() and the values its
/// `Booted secondary processor` line prints).
pub struct SecondaryState {
    online: AtomicBool,
    mpidr: AtomicU64,
    midr: AtomicU64,
    /// CurrentEL at entry (as __boot_cpu_mode).
    boot_mode: AtomicU64,
    /// `cpu_number` as the CPU read it through TPIDR_EL1.
    cpu_number: AtomicU64,
}

/// One slot per CPU, written only by that CPU (before it sets `online`).
pub static SECONDARY_STATE: [SecondaryState; NR_CPUS] = [const {
    SecondaryState {
        online: AtomicBool::new(false),
        mpidr: AtomicU64::new(0),
        midr: AtomicU64::new(0),
        boot_mode: AtomicU64::new(0),
        cpu_number: AtomicU64::new(0),
    }
}; NR_CPUS];

extern "C" {
    /// head.S: where CPU_ON starts a secondary (physical address, in `.idmap.text`).
    fn secondary_entry();
}

/// Linux: secondary_start_kernel() — a secondary CPU at the kernel's virtual address on its
/// own stack, TPIDR_EL1 set: drop the identity map, report, go online, park.
#[no_mangle]
pub extern "C" fn secondary_start_kernel(cpu: u64, boot_mode: u64) -> ! {
    crate::arch::aarch64::mm::mmu::cpu_uninstall_idmap();
    let st = &SECONDARY_STATE[cpu as usize % NR_CPUS];
    let mpidr: u64;
    let midr: u64;
    // SAFETY: reading the ID registers has no side effects.
    unsafe {
        core::arch::asm!("mrs {0}, mpidr_el1", out(reg) mpidr, options(nomem, nostack));
        core::arch::asm!("mrs {0}, midr_el1", out(reg) midr, options(nomem, nostack));
    }
    st.mpidr
        .store(mpidr & MPIDR_HWID_BITMASK, Ordering::Relaxed);
    st.midr.store(midr & 0xffff_ffff, Ordering::Relaxed);
    st.boot_mode.store(boot_mode, Ordering::Relaxed);
    st.cpu_number
        .store(smp_processor_id() as u64, Ordering::Relaxed);
    // Linux: set_cpu_online(cpu, true); complete(&cpu_running).
    set_cpu_online(cpu as usize, true);
    st.online.store(true, Ordering::Release);
    // SAFETY: `sev` wakes CPUs waiting in `wfe`; it touches no memory.
    unsafe { core::arch::asm!("dsb sy", "sev", options(nostack)) };
    // Linux: cpu_startup_entry(CPUHP_AP_ONLINE_IDLE) — idle until handed work.
    super::smp_call::cpu_idle_loop()
}

pub use crate::kernel::cpu::{cpu_online, num_online_cpus, set_cpu_online};

/// The `cpu_number` an online secondary read through its TPIDR_EL1 (None if not online).
pub fn secondary_cpu_number(cpu: usize) -> Option<u64> {
    let st = SECONDARY_STATE.get(cpu)?;
    st.online
        .load(Ordering::Acquire)
        .then(|| st.cpu_number.load(Ordering::Relaxed))
}

/// Linux: __cpu_up()'s wait — 5 s for the CPU to come online.
const CPU_UP_TIMEOUT_MS: u64 = 5000;

/// Linux: __cpu_up() with cpu_psci_cpu_boot() — the CPU's stack and per-CPU offset in its
/// `secondary_data` slot, CPU_ON, then a bounded wait for it to come online. On failure
/// the CPU is reported and left out.
fn __cpu_up(cpu: usize, c: &OfCpu, nid: i32) -> bool {
    use super::psci::{psci_cpu_on, psci_to_linux_errno};
    if c.enable_method != Some("psci") {
        pr_err!("CPU{}: failed to boot: {}", cpu, -95);
        return false;
    }
    let Some(stack) = crate::mm::vmalloc::api::vmalloc_node(THREAD_SIZE, nid) else {
        pr_err!("CPU{}: failed to boot: {}", cpu, -12);
        return false;
    };
    let sd = &secondary_data[cpu];
    sd.stack_top.store(stack.0 + THREAD_SIZE, Ordering::Relaxed);
    sd.percpu_offset
        .store(crate::mm::percpu::per_cpu_offset(cpu), Ordering::Relaxed);
    // The stack's page tables and the slot are visible before the CPU starts.
    // SAFETY: a barrier; it touches no memory.
    unsafe { core::arch::asm!("dsb ish", options(nostack)) };
    let entry = crate::arch::aarch64::memory::pa_symbol(secondary_entry as *const u8);
    let err = psci_to_linux_errno(psci_cpu_on(c.mpidr, entry.as_u64(), cpu as u64));
    if err != 0 {
        // The stack is not freed: a CPU that answers late must not run on reused memory.
        pr_err!("psci: failed to boot CPU{} ({})", cpu, err);
        if err != -1 {
            pr_err!("CPU{}: failed to boot: {}", cpu, err);
        }
        return false;
    }
    let st = &SECONDARY_STATE[cpu];
    let t = super::time::counter;
    let deadline = t() + super::time::frequency() * CPU_UP_TIMEOUT_MS / 1000;
    while !st.online.load(Ordering::Acquire) {
        if t() >= deadline {
            pr_crit!("CPU{}: failed to come online", cpu);
            return false;
        }
        // YIELD, not just a spin hint: under single-threaded TCG (and -icount) QEMU switches
        // to the next vCPU on it, so the CPU being started gets to run.
        // SAFETY: a hint instruction; no memory or register effects.
        unsafe { core::arch::asm!("yield", options(nomem, nostack, preserves_flags)) };
    }
    // Printed here for the secondary (see the module docs), with what it read itself.
    pr_info!(
        "CPU{}: Booted secondary processor {:#012x} [{:#010x}]",
        cpu,
        st.mpidr.load(Ordering::Relaxed),
        st.midr.load(Ordering::Relaxed)
    );
    let seen = st.cpu_number.load(Ordering::Relaxed);
    if seen != cpu as u64 {
        pr_warn!("CPU{}: reads cpu_number {} through TPIDR_EL1", cpu, seen);
    }
    true
}

/// Linux: smp_init() with bringup_nonboot_cpus() and smp_cpus_done() — start every other
/// CPU of the machine description's `cpus`, then Linux's summary lines; `boot_cpu_mode` is
/// the boot CPU's CurrentEL at entry (`__boot_cpu_mode`). Returns the online count.
pub fn smp_init(cpus: &SmpCpus, boot_cpu_mode: u64) -> usize {
    let nr = cpus.nr_cpu_ids().min(cpus.cpus().len().max(1));
    pr_info!("smp: Bringing up secondary CPUs ...");
    let mut online = 1;
    let mut all_el2 = boot_cpu_mode == 2 << 2;
    let mut mixed = false;
    for (cpu, c) in cpus.cpus().iter().enumerate().take(nr).skip(1) {
        let nid = crate::mm::numa::cpu_to_node(cpu);
        if __cpu_up(cpu, c, nid) {
            online += 1;
            let el2 = SECONDARY_STATE[cpu].boot_mode.load(Ordering::Relaxed) == 2 << 2;
            mixed |= el2 != all_el2;
            all_el2 &= el2;
        }
    }
    let nodes = crate::mm::numa::numa_publish().nr_online_nodes();
    pr_info!(
        "smp: Brought up {} node{}, {} CPU{}",
        nodes,
        if nodes > 1 { "s" } else { "" },
        online,
        if online > 1 { "s" } else { "" }
    );
    // Linux: smp_cpus_done() and hyp_mode_check().
    pr_info!("SMP: Total of {} processors activated.", online);
    if mixed {
        pr_warn!("CPU: CPUs started in inconsistent modes");
    } else {
        pr_info!(
            "CPU: All CPU(s) started at EL{}",
            if all_el2 { 2 } else { 1 }
        );
    }
    online
}
