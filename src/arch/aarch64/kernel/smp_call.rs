//! Work handed to other CPUs, and stopping them. Mirrors Linux 6.1's kernel/smp.c
//! (`smp_call_function_single()`, `smp_call_function_many()`, `smp_call_function()`,
//! `on_each_cpu()`, `generic_smp_call_function_single_interrupt()`) and the IPI half of
//! arch/arm64/kernel/smp.c (`smp_cross_call()`, `do_handle_IPI()`'s IPI_CALL_FUNC and
//! IPI_CPU_STOP, `smp_send_stop()`, `local_cpu_stop()`, `cpu_park_loop()`).
//!
//! # How a call reaches another CPU
//! Each CPU has one `call_single_data` slot in its per-CPU area (Linux: the per-CPU
//! `csd_data`). A sender claims the target's slot (Linux: `csd_lock()`), writes the function
//! and its argument, marks it queued and raises the "IPI". There is no interrupt controller
//! driver and every CPU runs with interrupts masked, so the IPI is `dsb ishst; sev`: a
//! secondary CPU waits in `wfe` in [`cpu_idle_loop`] (Linux: `do_idle()`, where the IPI's
//! interrupt would wake `wfi`), and the event wakes it to run the call. A CPU that waits —
//! for a slot to free up, or for its call to finish — runs its own slot meanwhile, since no
//! interrupt would do it for it; so two CPUs calling each other cannot deadlock.
//!
//! Calls complete in the order queued on each CPU; `wait` returns once the target has run
//! the call (Linux: `csd_lock_wait()`). A CPU busy in a long function runs its calls only
//! when it next waits or goes idle (Linux's would be interrupted).
//!
//! # Stopping
//! [`smp_send_stop`] asks every other online CPU to stop (Linux: IPI_CPU_STOP): each, when
//! next idle or waiting on a call, marks itself offline and parks in `wfe`/`wfi` with
//! interrupts masked; the sender waits up to
//! one second, as Linux does, and names the CPUs that did not stop. The power-off path and
//! panic() call it first, so no CPU is running when the machine goes down.
//!
//! What is different from Linux: one slot per CPU instead of a lock-free list of
//! `call_single_data` (a second sender waits for the slot, running its own queue), and no
//! `smp_call_function_any()` or conditional variants: nothing here needs them.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::arch::aarch64::percpu::{smp_processor_id, this_cpu_ptr};
use crate::include::numa::NR_CPUS;
use crate::kernel::cpu::{cpu_online, for_each_online_cpu, set_cpu_online};
use crate::mm::percpu::per_cpu_ptr;

/// Linux: smp_call_func_t — the function run on the other CPU, with its `info`.
pub type SmpCallFunc = fn(usize);

const CSD_FREE: u32 = 0;
const CSD_CLAIMED: u32 = 1;
const CSD_QUEUED: u32 = 2;

/// Linux: struct __call_single_data, one per CPU, plus the IPI_CPU_STOP flag.
pub struct CallSingleData {
    /// CSD_FREE, CSD_CLAIMED (a sender is writing), CSD_QUEUED.
    state: AtomicU32,
    func: AtomicUsize,
    info: AtomicUsize,
    /// Calls queued to this CPU so far: a sender's ticket.
    queued: AtomicU64,
    /// Calls this CPU has finished: a waiting sender watches it pass its ticket.
    done: AtomicU64,
    /// IPI_CPU_STOP is pending.
    stop: AtomicBool,
}

/// Linux: DEFINE_PER_CPU_SHARED_ALIGNED(call_single_data_t, csd_data).
#[link_section = ".data..percpu"]
#[allow(non_upper_case_globals)]
static csd_data: CallSingleData = CallSingleData {
    state: AtomicU32::new(CSD_FREE),
    func: AtomicUsize::new(0),
    info: AtomicUsize::new(0),
    queued: AtomicU64::new(0),
    done: AtomicU64::new(0),
    stop: AtomicBool::new(false),
};

fn csd(cpu: usize) -> &'static CallSingleData {
    // SAFETY: `csd_data` is a `.data..percpu` static of atomics and `cpu` is possible:
    // callers reach only online CPUs (and this one).
    unsafe { per_cpu_ptr(&csd_data, cpu) }
}

/// Linux: smp_cross_call() / arch_send_call_function_single_ipi() — make the slot's
/// writes visible, then wake CPUs waiting in `wfe`.
fn smp_cross_call() {
    // SAFETY: barrier and event hint; no memory is touched.
    unsafe { core::arch::asm!("dsb ishst", "sev", options(nostack, preserves_flags)) };
}

/// What a waiting CPU does each turn: its own calls, then a spin hint. `yield` (not just
/// a spin loop) lets single-threaded TCG and -icount switch to the vCPU being waited on.
fn wait_turn() {
    flush_smp_call_function_queue();
    let cpu = smp_processor_id();
    if csd(cpu).stop.load(Ordering::Acquire) {
        local_cpu_stop(cpu);
    }
    // SAFETY: a hint instruction; no memory or register effects.
    unsafe { core::arch::asm!("yield", options(nomem, nostack, preserves_flags)) };
}

/// Queue `func(info)` on `cpu` (online, not this CPU); returns the call's ticket.
fn queue_call(cpu: usize, func: SmpCallFunc, info: usize) -> u64 {
    let c = csd(cpu);
    // Linux: csd_lock().
    while c
        .state
        .compare_exchange_weak(CSD_FREE, CSD_CLAIMED, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        wait_turn();
    }
    c.func.store(func as usize, Ordering::Relaxed);
    c.info.store(info, Ordering::Relaxed);
    let ticket = c.queued.fetch_add(1, Ordering::Relaxed) + 1;
    c.state.store(CSD_QUEUED, Ordering::Release);
    smp_cross_call();
    ticket
}

/// Linux: csd_lock_wait() — until `cpu` has run the call with `ticket`.
fn wait_call(cpu: usize, ticket: u64) {
    while csd(cpu).done.load(Ordering::Acquire) < ticket {
        wait_turn();
    }
}

/// Linux: __flush_smp_call_function_queue() — run the call queued to this CPU, if any.
/// Returns whether one ran.
pub fn flush_smp_call_function_queue() -> bool {
    // SAFETY: `csd_data` is a `.data..percpu` static of atomics.
    let c = unsafe { this_cpu_ptr(&csd_data) };
    if c.state.load(Ordering::Acquire) != CSD_QUEUED {
        return false;
    }
    let f = c.func.load(Ordering::Relaxed);
    let info = c.info.load(Ordering::Relaxed);
    // Linux: csd_unlock() before running a call nobody waits for; here the slot is free
    // for the next sender as soon as its contents are read.
    c.state.store(CSD_FREE, Ordering::Release);
    // SAFETY: `f` was stored from a `SmpCallFunc` by queue_call before its Release store
    // of CSD_QUEUED, which the Acquire load above observed.
    let func: SmpCallFunc = unsafe { core::mem::transmute::<usize, SmpCallFunc>(f) };
    func(info);
    c.done.fetch_add(1, Ordering::Release);
    true
}

/// Why a cross-CPU call was refused (Linux returns -ENXIO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuOffline(pub usize);

/// Linux: smp_call_function_single() — run `func(info)` on `cpu` (here if it is this CPU);
/// with `wait`, return once it ran.
pub fn smp_call_function_single(
    cpu: usize,
    func: SmpCallFunc,
    info: usize,
    wait: bool,
) -> Result<(), CpuOffline> {
    if cpu == smp_processor_id() {
        func(info);
        return Ok(());
    }
    if !cpu_online(cpu) {
        return Err(CpuOffline(cpu));
    }
    let ticket = queue_call(cpu, func, info);
    if wait {
        wait_call(cpu, ticket);
    }
    Ok(())
}

/// Queues `func(info)` on every online CPU but `me`; each queued CPU's ticket (0: none).
fn queue_on_others(me: usize, func: SmpCallFunc, info: usize) -> [u64; NR_CPUS] {
    let mut tickets = [0u64; NR_CPUS];
    for cpu in for_each_online_cpu().filter(|&c| c != me) {
        tickets[cpu] = queue_call(cpu, func, info);
    }
    tickets
}

/// Waits for every call [`queue_on_others`] queued.
fn wait_calls(tickets: &[u64; NR_CPUS]) {
    for (cpu, &t) in tickets.iter().enumerate().filter(|(_, &t)| t != 0) {
        wait_call(cpu, t);
    }
}

/// Linux: smp_call_function_many() with `cpu_online_mask` — `func(info)` on every other
/// online CPU, queued to all before waiting for any.
pub fn smp_call_function(func: SmpCallFunc, info: usize, wait: bool) {
    let tickets = queue_on_others(smp_processor_id(), func, info);
    if wait {
        wait_calls(&tickets);
    }
}

/// Linux: on_each_cpu() — `func(info)` on every online CPU, this one included (the others
/// are started first, so all run at once), and wait for all.
pub fn on_each_cpu(func: SmpCallFunc, info: usize) {
    let tickets = queue_on_others(smp_processor_id(), func, info);
    func(info);
    wait_calls(&tickets);
}

/// Linux: do_idle() for a secondary CPU with nothing scheduled — run what other CPUs hand
/// this one, stop when told, otherwise wait for an event.
pub fn cpu_idle_loop() -> ! {
    let cpu = smp_processor_id();
    loop {
        flush_smp_call_function_queue();
        if csd(cpu).stop.load(Ordering::Acquire) {
            local_cpu_stop(cpu);
        }
        // SAFETY: `wfe` waits for an event (a sender's `sev`); it touches no memory.
        unsafe { core::arch::asm!("wfe", options(nomem, nostack, preserves_flags)) };
    }
}

/// Linux: local_cpu_stop() — offline, interrupts masked, parked for good.
fn local_cpu_stop(cpu: usize) -> ! {
    set_cpu_online(cpu, false);
    // SAFETY: masking every exception; the CPU runs nothing after this.
    unsafe { core::arch::asm!("msr daifset, #0xf", options(nomem, nostack)) };
    // Linux: cpu_park_loop().
    loop {
        // SAFETY: wait hints; no memory is touched.
        unsafe { core::arch::asm!("wfe", "wfi", options(nomem, nostack, preserves_flags)) };
    }
}

/// Online CPUs other than this one (Linux: num_other_online_cpus()).
fn other_online_cpus(me: usize) -> usize {
    for_each_online_cpu().filter(|&c| c != me).count()
}

/// Linux: smp_send_stop() — stop every other online CPU, waiting up to a second. `loud`
/// is Linux's `system_state <= SYSTEM_RUNNING`: the panic path says what it does, the
/// power-off path (SYSTEM_POWER_OFF) does not. Returns how many CPUs did not stop.
pub fn smp_send_stop(loud: bool) -> usize {
    let me = smp_processor_id();
    if other_online_cpus(me) > 0 {
        if loud {
            pr_crit!("SMP: stopping secondary CPUs");
        }
        for cpu in for_each_online_cpu().filter(|&c| c != me) {
            csd(cpu).stop.store(true, Ordering::Release);
        }
        smp_cross_call();
    }
    // Linux: wait up to one second for the other CPUs to stop.
    let t = super::time::counter;
    let deadline = t() + super::time::frequency();
    while other_online_cpus(me) > 0 && t() < deadline {
        // SAFETY: a hint instruction; no memory or register effects.
        unsafe { core::arch::asm!("yield", options(nomem, nostack, preserves_flags)) };
    }
    let left = other_online_cpus(me);
    if left > 0 {
        let online = crate::kernel::printk::BitmapList(cpu_online, NR_CPUS);
        pr_warn!("SMP: failed to stop secondary CPUs {}", online);
    }
    left
}
