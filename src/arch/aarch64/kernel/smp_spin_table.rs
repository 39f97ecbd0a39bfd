//! Spin-table CPU enable method (Linux: arch/arm64/kernel/smp_spin_table.c): firmware parks
//! a secondary CPU polling its `cpu-release-addr`; the kernel writes the physical address
//! of head.S's `secondary_holding_pen` there (cpu_prepare), the CPU jumps into the pen and
//! waits in `wfe` until `secondary_holding_pen_release` names its MPIDR (cpu_boot), then
//! takes `secondary_entry`'s path.
//!
//! Difference from Linux: Linux's secondary finds its logical CPU number through
//! `secondary_data.task`; here the pen looks its MPIDR up in [`secondary_holding_pen_map`]
//! (filled by cpu_prepare), so a CPU that is released late can never take another CPU's
//! number. The release address is written through the linear map (Linux: ioremap_cache,
//! which reuses the linear map for RAM); one outside the linear map is refused with
//! -ENOMEM, as a failed ioremap_cache is.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::drivers::of::libfdt::Node;
use crate::include::numa::NR_CPUS;
use crate::mm::PhysAddr;

/// Linux: INVALID_HWID — no MPIDR.
pub const INVALID_HWID: u64 = u64::MAX;

/// Linux: secondary_holding_pen_release — the MPIDR of the CPU the pen lets go; read by
/// head.S with the MMU off, so every write is cleaned to the point of coherency.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static secondary_holding_pen_release: AtomicU64 = AtomicU64::new(INVALID_HWID);

/// Logical CPU n's MPIDR, for the pen to find its CPU number (INVALID_HWID: none). Read by
/// head.S with the MMU off, like the release word.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static secondary_holding_pen_map: [AtomicU64; NR_CPUS] =
    [const { AtomicU64::new(INVALID_HWID) }; NR_CPUS];

/// Linux: cpu_release_addr[] — each CPU's `cpu-release-addr` (0: none).
static CPU_RELEASE_ADDR: [AtomicU64; NR_CPUS] = [const { AtomicU64::new(0) }; NR_CPUS];

extern "C" {
    /// head.S: where a released spin-table CPU jumps (physical address, `.idmap.text`).
    fn secondary_holding_pen();
}

/// Linux: dcache_clean_inval_poc() for one naturally aligned u64 (it never straddles a
/// cache line, so one `dc civac` covers it), then `dsb sy`: what a CPU with its MMU and
/// caches off reads is in memory.
fn clean_inval_poc_u64(p: *const u64) {
    // SAFETY: `dc civac` on a mapped kernel address only cleans and invalidates its line;
    // the barrier touches no memory.
    unsafe { core::arch::asm!("dc civac, {0}", "dsb sy", in(reg) p, options(nostack)) };
}

/// Linux: of_property_read_u64() — the first 8 bytes, big-endian; -EINVAL if absent,
/// -EOVERFLOW if shorter.
fn of_property_read_u64(dn: &Node, name: &str) -> Result<u64, i32> {
    let v = dn.property(name).ok_or(-22)?;
    let b: [u8; 8] = v.get(..8).and_then(|b| b.try_into().ok()).ok_or(-75)?;
    Ok(u64::from_be_bytes(b))
}

/// Linux: smp_spin_table_cpu_init() — read the CPU node's `cpu-release-addr`.
pub fn smp_spin_table_cpu_init(cpu: usize, dn: &Node) -> Result<(), i32> {
    match of_property_read_u64(dn, "cpu-release-addr") {
        Ok(addr) => {
            CPU_RELEASE_ADDR[cpu].store(addr, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => {
            pr_err!("CPU {}: missing or invalid cpu-release-addr property", cpu);
            Err(e)
        }
    }
}

/// Linux: smp_spin_table_cpu_prepare() — write the pen's physical address to the CPU's
/// release address (little-endian, as the boot protocol mandates), clean it to the point
/// of coherency and `sev`, so firmware polling there jumps into the pen. `mpidr` is the
/// CPU's (Linux: cpu_logical_map(cpu)), entered in the pen's map first.
pub fn smp_spin_table_cpu_prepare(cpu: usize, mpidr: u64) -> Result<(), i32> {
    let addr = CPU_RELEASE_ADDR[cpu].load(Ordering::Relaxed);
    if addr == 0 {
        return Err(-19); // -ENODEV
    }
    let pa = PhysAddr(addr);
    let mapped = addr.is_multiple_of(8) && crate::mm::memblock::MEMBLOCK.lock().is_map_memory(pa);
    if !mapped {
        return Err(-12); // -ENOMEM: ioremap_cache failed
    }
    let slot = &secondary_holding_pen_map[cpu];
    slot.store(mpidr, Ordering::Relaxed);
    clean_inval_poc_u64(slot.as_ptr());
    let pen = crate::arch::aarch64::memory::pa_symbol(secondary_holding_pen as *const u8);
    let release = crate::arch::aarch64::memory::phys_to_virt(pa) as *mut u64;
    // SAFETY: `release` is the linear-map address of 8 aligned bytes of RAM that the
    // device tree gives this CPU's firmware to poll; nothing of ours lives there.
    unsafe { core::ptr::write_volatile(release, pen.as_u64().to_le()) };
    clean_inval_poc_u64(release);
    // SAFETY: `sev` wakes CPUs waiting in `wfe`; it touches no memory.
    unsafe { core::arch::asm!("sev", options(nomem, nostack)) };
    Ok(())
}

/// Linux: smp_spin_table_cpu_boot() — write_pen_release(cpu_logical_map(cpu)), then `sev`.
pub fn smp_spin_table_cpu_boot(mpidr: u64) -> Result<(), i32> {
    secondary_holding_pen_release.store(mpidr, Ordering::Release);
    clean_inval_poc_u64(secondary_holding_pen_release.as_ptr());
    // SAFETY: `sev` wakes CPUs waiting in `wfe`; it touches no memory.
    unsafe { core::arch::asm!("sev", options(nomem, nostack)) };
    Ok(())
}
