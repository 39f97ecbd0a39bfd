//! The CPUs the device tree describes and their bring-up (Linux: arch/arm64/kernel/smp.c —
//! of_parse_and_init_cpus(), smp_init_cpus(), smp_cpu_setup(), smp_prepare_cpus(),
//! __cpu_up(), secondary_start_kernel(), smp_cpus_done(), the arch's smp_processor_id();
//! kernel/smp.c — nr_cpu_ids, setup_max_cpus, the `nr_cpus=`, `maxcpus=` and `nosmp`
//! early parameters, setup_nr_cpu_ids(), smp_init(); kernel/cpu.c —
//! bringup_nonboot_cpus()). The CPUs are listed, numbered and put on their NUMA nodes;
//! smp_init_cpus() makes possible each CPU below nr_cpu_ids whose `enable-method` names
//! operations this kernel has (cpu_ops.rs: `psci`, `spin-table`) and whose cpu_init
//! accepts it, which sizes the per-CPU areas and the allocators' per-CPU state
//! (nr_cpu_ids is then one past the last possible CPU). smp_init() prepares each possible
//! secondary (cpu_prepare: it becomes present) and starts present CPUs in order (cpu_boot:
//! PSCI `CPU_ON` into head.S's `secondary_entry`, or the spin-table pen's release) until
//! setup_max_cpus are online.
//!
//! `nr_cpus=N` lowers nr_cpu_ids (with Linux's `Number of cores (%d) exceeds configured
//! maximum of %u - clipping` when the tree lists more CPU nodes); `maxcpus=N` keeps every
//! CPU possible but stops bringing CPUs up once N are online; `nosmp` is `maxcpus=0`. Bad
//! values do what Linux's get_option() makes of them: `nr_cpus=x` and `nr_cpus=` change
//! nothing, `maxcpus=` changes nothing, `maxcpus=y` stores 0 (so it is `nosmp`).
//!
//! A secondary CPU reports its MPIDR, MIDR, boot EL and the CPU number it read through
//! TPIDR_EL1 in its own slot of [`SECONDARY_STATE`], marks itself online (kernel/cpu.rs)
//! and goes idle in smp_call.rs's `cpu_idle_loop`, where it runs the work other CPUs hand
//! it (smp_call_function_single, on_each_cpu) and stops when told (smp_send_stop). The
//! boot CPU prints its `CPUn: Booted secondary processor` line on its behalf, in order. A CPU
//! not online 5 s (Linux's wait, on the architected counter) after cpu_boot is reported as
//! Linux does — `CPUn: failed to come online`, then the boot status it left decoded
//! (`CPUn: failed in unknown state : 0x0` for one that never ran) — and left out.
//!
//! Differences from Linux: logical CPU n is the n-th usable CPU node in `/cpus` order (Linux
//! gives 0 to the boot CPU wherever it is listed, rejects duplicate MPIDRs and prints
//! `missing boot CPU MPIDR` when the boot CPU is not listed); a CPU node with an unusable
//! `reg` or `numa-node-id` is left out silently (it still counts in the clipping warning's
//! number, as in Linux). A CPU that is not possible below the last possible one gets no
//! per-CPU unit (as Linux's per-CPU groups skip it) but keeps its index in the per-CPU
//! page and slab arrays (sized by nr_cpu_ids, as Linux's SLUB line is). CPU_ON's context id is the logical CPU number (Linux passes 0 and hands
//! over one CPU at a time through a single `secondary_data`); here each CPU has its own
//! slot, so one that answers after its timeout cannot take the next CPU's stack (a
//! spin-table CPU finds its number in the pen's MPIDR map, smp_spin_table.rs). The idle
//! stack is a THREAD_SIZE vmalloc area on the CPU's node (Linux: VMAP_STACK), so the
//! unmapped guard page of the area below (or unmapped vmalloc space) lies under it.
//! Nothing in this kernel writes a failure status yet (Linux's secondaries do when their
//! granule or VA size is unsupported), so the timeout always reports `unknown state : 0x0`.
//! tests/smp.rs checks the PSCI path, the timeout (a spin-table CPU that QEMU's PSCI keeps
//! powered off, so nothing polls its release address) and the spin-table path end to end
//! (the test parks that CPU in a firmware-like polling loop first; it enters the pen
//! through the release address and comes online).

// Without `alloc` a diagnostic cannot be boxed; it is returned by value on cold paths only.
#![allow(clippy::result_large_err)]

use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::cpu_ops::{cpu_read_enable_method, get_cpu_ops, init_cpu_ops};
use crate::drivers::of::base::{for_each_of_cpu_node, of_get_cpu_hwid, CpuNode};
use crate::drivers::of::libfdt::{Diagnostic, Fdt, Node, Problem, Severity};
use crate::drivers::of::of_numa::of_node_to_nid;
use crate::include::numa::NR_CPUS;
use crate::include::numa::NUMA_NO_NODE;
use crate::kernel::params::{self, get_option};
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
    for_each_of_cpu_node(fdt).map(|cpu| of_cpu(&cpu))
}

/// One CPU node as [`of_cpus`] reads it.
fn of_cpu<'a>(cpu: &CpuNode<'a>) -> Result<OfCpu<'a>, Diagnostic<'a>> {
    let mpidr = of_get_cpu_hwid(cpu)?;
    if mpidr & !MPIDR_HWID_BITMASK != 0 {
        let p = Problem::InvalidMpidr(mpidr);
        return Err(cpu.node.diag(Severity::Error, "reg", p));
    }
    Ok(OfCpu {
        mpidr,
        numa_node_id: of_node_to_nid(&cpu.node)?,
        enable_method: cpu_read_enable_method(&cpu.node),
    })
}

/// The CPUs the device tree lists (Linux: of_parse_and_init_cpus()'s cpu_logical_map and
/// cpu_count): the first NR_CPUS usable CPU nodes, logical CPU n being the n-th.
/// Which of them are possible is smp_init_cpus()'s to say (after the early parameters).
#[derive(Clone, Copy, Debug)]
pub struct SmpCpus<'a> {
    cpus: [OfCpu<'a>; NR_CPUS],
    /// Usable CPU nodes kept in `cpus` (at most NR_CPUS).
    nr: usize,
    /// Usable CPU nodes in the tree, including those past NR_CPUS.
    total: usize,
    /// Linux: cpu_count — every CPU node, usable or not.
    cpu_count: usize,
    /// The tree, for of_get_cpu_node().
    fdt: Option<Fdt<'a>>,
}

impl<'a> SmpCpus<'a> {
    /// Linux: of_parse_and_init_cpus() — one walk of `/cpus`.
    pub fn of_parse_and_init_cpus(fdt: &Fdt<'a>) -> Self {
        let mut s = Self {
            cpus: [OfCpu::default(); NR_CPUS],
            nr: 0,
            total: 0,
            cpu_count: 0,
            fdt: Some(*fdt),
        };
        for cpu in of_cpus(fdt) {
            s.cpu_count += 1;
            let Ok(cpu) = cpu else { continue };
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

    /// Linux: of_get_cpu_node() — logical CPU `cpu`'s node (the cpu-th usable CPU node).
    pub fn of_get_cpu_node(&self, cpu: usize) -> Option<Node<'a>> {
        let fdt = self.fdt?;
        for_each_of_cpu_node(&fdt)
            .filter(|c| of_cpu(c).is_ok())
            .nth(cpu)
            .map(|c| c.node)
    }

    /// Linux: nr_cpu_ids — one past the highest possible CPU once smp_init_cpus() ran
    /// (setup_nr_cpu_ids()); before, NR_CPUS or `nr_cpus=`.
    pub fn nr_cpu_ids(&self) -> usize {
        NR_CPU_IDS.load(Ordering::Relaxed)
    }

    /// Linux: smp_init_cpus() with setup_arch()'s init_bootcpu_ops() before it and
    /// start_kernel()'s setup_nr_cpu_ids() after: each CPU on its `numa-node-id` (Linux:
    /// of_parse_and_init_cpus()'s early_map_cpu_to_node()), the clipping warning when the
    /// tree lists more CPUs than nr_cpu_ids, then each CPU below nr_cpu_ids possible if
    /// its enable method is known and its cpu_init accepts it (smp_cpu_setup()).
    /// Secondary CPUs are not started yet.
    pub fn smp_init_cpus(&self, numa: &mut NumaInfo) {
        for (cpu, c) in self.cpus().iter().enumerate() {
            let nid = c.numa_node_id.map_or(NUMA_NO_NODE, |n| n as i32);
            numa.early_map_cpu_to_node(cpu, nid);
        }
        if let Some(dn) = self.of_get_cpu_node(0) {
            let _ = init_cpu_ops(0, &dn);
        }
        let limit = NR_CPU_IDS.load(Ordering::Relaxed);
        if self.cpu_count > limit {
            pr_warn!(
                "Number of cores ({}) exceeds configured maximum of {} - clipping",
                self.cpu_count,
                limit
            );
        }
        CPU_POSSIBLE[0].store(true, Ordering::Relaxed);
        let mut last = 0;
        let secondaries = CPU_POSSIBLE.iter().enumerate().take(self.nr.min(limit));
        for (cpu, possible) in secondaries.skip(1) {
            if smp_cpu_setup(cpu, self.of_get_cpu_node(cpu)).is_ok() {
                possible.store(true, Ordering::Relaxed);
                last = cpu;
            }
        }
        // Linux: setup_nr_cpu_ids().
        NR_CPU_IDS.store(last + 1, Ordering::Relaxed);
    }
}

pub use crate::arch::aarch64::percpu::{cpu_number, set_my_cpu_offset, smp_processor_id};

/// Linux: smp_cpu_setup() — the CPU's operations from its enable method, then their
/// cpu_init; -ENODEV if either fails.
fn smp_cpu_setup(cpu: usize, dn: Option<Node>) -> Result<(), i32> {
    let dn = dn.ok_or(-19)?;
    init_cpu_ops(cpu, &dn).map_err(|_| -19)?;
    let ops = get_cpu_ops(cpu).ok_or(-19)?;
    ops.cpu_init(cpu, &dn).map_err(|_| -19)
}

/// Linux: nr_cpu_ids (kernel/smp.c).
static NR_CPU_IDS: AtomicUsize = AtomicUsize::new(NR_CPUS);

/// Linux: setup_max_cpus (kernel/smp.c) — `maxcpus=`, `nosmp`: how many CPUs smp_init()
/// brings online.
static SETUP_MAX_CPUS: AtomicU32 = AtomicU32::new(NR_CPUS as u32);

/// Linux: cpu_possible_mask (set by smp_init_cpus()).
static CPU_POSSIBLE: [AtomicBool; NR_CPUS] = [const { AtomicBool::new(false) }; NR_CPUS];

/// Linux: cpu_present_mask (set by smp_prepare_cpus()).
static CPU_PRESENT: [AtomicBool; NR_CPUS] = [const { AtomicBool::new(false) }; NR_CPUS];

/// Linux: cpu_possible().
pub fn cpu_possible(cpu: usize) -> bool {
    CPU_POSSIBLE
        .get(cpu)
        .is_some_and(|p| p.load(Ordering::Relaxed))
}

/// Linux: num_possible_cpus().
pub fn num_possible_cpus() -> usize {
    (0..NR_CPUS).filter(|&c| cpu_possible(c)).count()
}

/// Linux: setup_max_cpus.
pub fn setup_max_cpus() -> u32 {
    SETUP_MAX_CPUS.load(Ordering::Relaxed)
}

/// Linux: nrcpus() — `nr_cpus=N` lowers nr_cpu_ids (the possible CPUs) to N; a value that
/// is not a number, not positive or not below nr_cpu_ids changes nothing.
fn nrcpus(val: Option<&str>) -> params::SetupResult {
    let (mut s, mut nr_cpus) = (val, 0);
    let cur = NR_CPU_IDS.load(Ordering::Relaxed);
    if get_option(&mut s, &mut nr_cpus) != 0 && nr_cpus > 0 && (nr_cpus as usize) < cur {
        NR_CPU_IDS.store(nr_cpus as usize, Ordering::Relaxed);
    }
    Ok(())
}
early_param!("nr_cpus", nrcpus);

/// Linux: maxcpus() — `maxcpus=N`: smp_init() brings CPUs up until N are online (the
/// others stay possible). As Linux's get_option(), a value that does not start with a
/// number stores 0 (so `maxcpus=y` is `nosmp`); an empty one changes nothing.
fn maxcpus(val: Option<&str>) -> params::SetupResult {
    let (mut s, mut v) = (val, SETUP_MAX_CPUS.load(Ordering::Relaxed) as i32);
    get_option(&mut s, &mut v);
    SETUP_MAX_CPUS.store(v as u32, Ordering::Relaxed);
    Ok(())
}
early_param!("maxcpus", maxcpus);

/// Linux: nosmp() — `nosmp` is `maxcpus=0` (arm64 has no arch_disable_smp_support()).
fn nosmp(_val: Option<&str>) -> params::SetupResult {
    SETUP_MAX_CPUS.store(0, Ordering::Relaxed);
    Ok(())
}
early_param!("nosmp", nosmp);

/// Linux: smp_prepare_boot_cpu()'s set_my_cpu_offset(per_cpu_offset(0)), and
/// smp_prepare_cpus()'s `per_cpu(cpu_number, cpu) = cpu` for every possible CPU.
pub fn smp_prepare_cpus(nr_cpu_ids: usize) {
    for cpu in (0..nr_cpu_ids).filter(|&c| cpu_possible(c)) {
        // SAFETY: `cpu_number` is a `.data..percpu` static (an atomic) and `cpu` is
        // possible, so it has a unit; the CPU has not run yet.
        unsafe { crate::mm::percpu::per_cpu_ptr(&cpu_number, cpu) }
            .store(cpu as u64, Ordering::Relaxed);
    }
    set_my_cpu_offset(crate::mm::percpu::per_cpu_offset(0));
}

use crate::arch::aarch64::memory::THREAD_SIZE;

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

/// Linux: CPU_MMU_OFF, CPU_KILL_ME, CPU_STUCK_IN_KERNEL, CPU_PANIC_KERNEL (asm/smp.h) — a
/// secondary's boot status, and CPU_BOOT_STATUS_MASK, CPU_STUCK_REASON_52_BIT_VA,
/// CPU_STUCK_REASON_NO_GRAN.
const CPU_MMU_OFF: i64 = -1;
const CPU_KILL_ME: i64 = 1;
const CPU_STUCK_IN_KERNEL: i64 = 2;
const CPU_PANIC_KERNEL: i64 = 3;
const CPU_BOOT_STATUS_MASK: i64 = 0xff;
const CPU_STUCK_REASON_52_BIT_VA: i64 = 1 << 8;
const CPU_STUCK_REASON_NO_GRAN: i64 = 2 << 8;

/// Linux: secondary_data.status — CPU_MMU_OFF while a secondary is being started.
static SECONDARY_BOOT_STATUS: AtomicI64 = AtomicI64::new(0);

/// Linux: __early_cpu_boot_status — what a secondary that failed with its MMU off left
/// (written with the MMU off, so read after the timeout only).
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static __early_cpu_boot_status: AtomicI64 = AtomicI64::new(0);

/// Linux: cpus_stuck_in_kernel — CPUs that did not come online and may still run kernel
/// text.
static CPUS_STUCK_IN_KERNEL: AtomicUsize = AtomicUsize::new(0);

/// Linux: cpus_stuck_in_kernel — how many CPUs __cpu_up() gave up on.
pub fn cpus_stuck_in_kernel() -> usize {
    CPUS_STUCK_IN_KERNEL.load(Ordering::Relaxed)
}

/// Linux: __cpu_up() — the CPU's stack and per-CPU offset in its `secondary_data` slot,
/// its enable method's cpu_boot, then a bounded wait for it to come online. On failure
/// the CPU is reported (with the boot status it left, as Linux decodes it) and left out.
fn __cpu_up(cpu: usize, c: &OfCpu, nid: i32) -> bool {
    let Some(ops) = get_cpu_ops(cpu) else {
        pr_err!("CPU{}: failed to boot: {}", cpu, -95);
        return false;
    };
    let Some(stack) = crate::mm::vmalloc::api::vmalloc_node(THREAD_SIZE, nid) else {
        pr_err!("CPU{}: failed to boot: {}", cpu, -12);
        return false;
    };
    let sd = &secondary_data[cpu];
    sd.stack_top.store(stack.0 + THREAD_SIZE, Ordering::Relaxed);
    // SAFETY: `kernel_stack_lo` is a `.data..percpu` static and `cpu` is possible, so it
    // has a unit; the CPU has not run yet. The vmalloc guard page lies below the stack.
    unsafe { crate::mm::percpu::per_cpu_ptr(&crate::arch::aarch64::percpu::kernel_stack_lo, cpu) }
        .store(stack.0, Ordering::Relaxed);
    sd.percpu_offset
        .store(crate::mm::percpu::per_cpu_offset(cpu), Ordering::Relaxed);
    SECONDARY_BOOT_STATUS.store(CPU_MMU_OFF, Ordering::Relaxed);
    // Another CPU may run from now on: TLB maintenance reaches every CPU.
    crate::arch::aarch64::mm::pgtable::smp_tlbi_broadcast();
    // The stack's page tables and the slot are visible before the CPU starts.
    // SAFETY: a barrier; it touches no memory.
    unsafe { core::arch::asm!("dsb ish", options(nostack)) };
    // The stack is not freed on failure: a CPU that answers late must not run on reused
    // memory.
    if let Err(ret) = ops.cpu_boot(cpu, c.mpidr) {
        if ret != -1 {
            pr_err!("CPU{}: failed to boot: {}", cpu, ret);
        }
        return false;
    }
    let st = &SECONDARY_STATE[cpu];
    let t = super::time::counter;
    let deadline = t() + super::time::frequency() * CPU_UP_TIMEOUT_MS / 1000;
    while !st.online.load(Ordering::Acquire) {
        if t() >= deadline {
            pr_crit!("CPU{}: failed to come online", cpu);
            cpu_up_failed_status(cpu);
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

/// Linux: __cpu_up()'s report after `failed to come online` — the status the CPU left:
/// secondary_data.status, or __early_cpu_boot_status if it never turned its MMU on. This
/// kernel has no CPU hotplug, so a CPU asking to be killed (op_cpu_kill(): -ENOSYS) is
/// reported as stuck, as Linux without CONFIG_HOTPLUG_CPU does.
fn cpu_up_failed_status(cpu: usize) {
    let mut status = SECONDARY_BOOT_STATUS.load(Ordering::Relaxed);
    if status == CPU_MMU_OFF {
        status = __early_cpu_boot_status.load(Ordering::Relaxed);
    }
    let stuck = match status & CPU_BOOT_STATUS_MASK {
        CPU_KILL_ME => {
            pr_crit!("CPU{}: may not have shut down cleanly", cpu);
            true
        }
        CPU_STUCK_IN_KERNEL => true,
        CPU_PANIC_KERNEL => panic!("CPU{} detected unsupported configuration", cpu),
        _ => {
            pr_err!("CPU{}: failed in unknown state : {:#x}", cpu, status);
            false
        }
    };
    if stuck {
        pr_crit!("CPU{}: is stuck in kernel", cpu);
        if status & CPU_STUCK_REASON_52_BIT_VA != 0 {
            pr_crit!("CPU{}: does not support 52-bit VAs", cpu);
        }
        if status & CPU_STUCK_REASON_NO_GRAN != 0 {
            pr_crit!(
                "CPU{}: does not support {}K granule",
                cpu,
                crate::mm::PAGE_SIZE / 1024
            );
        }
    }
    CPUS_STUCK_IN_KERNEL.fetch_add(1, Ordering::Relaxed);
}

/// Linux: smp_prepare_cpus()'s loop (kernel_init_freeable() calls it with setup_max_cpus
/// right before smp_init()) — unless `max_cpus` is 0 (`nosmp`), every possible secondary
/// whose enable method's cpu_prepare succeeds becomes present. The boot CPU is present.
fn smp_prepare_cpus_present(cpus: &SmpCpus, max_cpus: u32) {
    CPU_PRESENT[0].store(true, Ordering::Relaxed);
    if max_cpus == 0 {
        return;
    }
    for (cpu, c) in cpus
        .cpus()
        .iter()
        .enumerate()
        .take(cpus.nr_cpu_ids())
        .skip(1)
    {
        let Some(ops) = get_cpu_ops(cpu).filter(|_| cpu_possible(cpu)) else {
            continue;
        };
        if ops.cpu_prepare(cpu, c.mpidr).is_ok() {
            CPU_PRESENT[cpu].store(true, Ordering::Relaxed);
        }
    }
}

/// Linux: cpu_present().
pub fn cpu_present(cpu: usize) -> bool {
    CPU_PRESENT
        .get(cpu)
        .is_some_and(|p| p.load(Ordering::Relaxed))
}

/// Linux: smp_init() with smp_prepare_cpus() before it, bringup_nonboot_cpus() and
/// smp_cpus_done() — start the present CPUs in order until setup_max_cpus are online,
/// then Linux's summary lines; `boot_cpu_mode` is the boot CPU's CurrentEL at entry
/// (`__boot_cpu_mode`). Returns the online count.
pub fn smp_init(cpus: &SmpCpus, boot_cpu_mode: u64) -> usize {
    let max_cpus = setup_max_cpus();
    smp_prepare_cpus_present(cpus, max_cpus);
    pr_info!("smp: Bringing up secondary CPUs ...");
    let mut online = 1;
    let mut all_el2 = boot_cpu_mode == 2 << 2;
    let mut mixed = false;
    for (cpu, c) in cpus.cpus().iter().enumerate().take(cpus.nr_cpu_ids()) {
        if online >= max_cpus as usize {
            break;
        }
        if !cpu_present(cpu) || cpu_online(cpu) {
            continue;
        }
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
