//! Secondary CPU bring-up (Linux: kernel/smp.c smp_init(), arch/arm64/kernel/smp.c
//! smp_init_cpus(), __cpu_up(), secondary_start_kernel(), smp_cpus_done()): every CPU of
//! `-smp 1/2/4` is started with PSCI CPU_ON and prints Linux's `CPUn: Booted secondary
//! processor` line, with Linux's summary lines; a CPU whose MPIDR no CPU has (tests/fixtures/
//! boot/smp-missing-cpu.dts) is reported with PSCI's error and left out while the others come
//! up. Each online secondary read its own CPU number through TPIDR_EL1.
//!
//! `nr_cpus=`, `maxcpus=` and `nosmp`, good and bad values, print what Linux 6.1 printed for
//! the same machine and command line (`expect-linux-lines`: the clipping warning, the
//! pcpu-alloc groups, the smp: lines; tests/fixtures/linux-6.1/t..z), with SLUB's `CPUs=`.
//! A spin-table CPU (tests/fixtures/boot/smp-spin-table.dts) that never leaves its firmware
//! times out after Linux's 5 s with Linux's two lines, an unknown enable-method and a
//! missing cpu-release-addr are reported and those CPUs are not possible.
//!
//! A tree whose CPU 1 has an unknown enable method leaves a hole in the possible CPUs
//! (tests/fixtures/boot/smp-cpu-hole.dts): no per-CPU unit for it, CPUs 2 and 3 come up.
//!
//! A second boot of the spin-table tree parks CPU 2 in a spin-table firmware loop first
//! (`test.spinfw`): it then takes the kernel's real path — the release address written
//! by cpu_prepare, head.S's secondary_holding_pen, the pen's release by cpu_boot — and
//! comes online.
//!
//! kernel_init checks what the boot left against the run's `test.online=`, `test.ids=`,
//! `test.possible=` and `test.stuck=` (num_online_cpus(), nr_cpu_ids, num_possible_cpus(),
//! cpus_stuck_in_kernel), and with
//! `test.release=ADDR` that the spin-table CPU's release address holds the physical address
//! of head.S's `secondary_holding_pen` and the pen's release word that CPU's MPIDR.
#![no_std]
#![no_main]

use core::sync::atomic::Ordering;

use arm64_mm::arch::aarch64::kernel::psci::psci_cpu_on;
use arm64_mm::arch::aarch64::kernel::setup::nr_cpu_ids;
use arm64_mm::arch::aarch64::kernel::smp::{
    cpu_online, cpu_possible, cpus_stuck_in_kernel, num_online_cpus, num_possible_cpus,
    secondary_cpu_number, smp_processor_id,
};
use arm64_mm::arch::aarch64::kernel::smp_spin_table::secondary_holding_pen_release;
use arm64_mm::arch::aarch64::memory::{pa_symbol, phys_to_virt};
use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::{boot_command_line, parse_args, parse_u64, SetupResult};
use arm64_mm::mm::PhysAddr;
use arm64_mm::{check, qemu_test, setup_param};

qemu_test!(
    r#"
run --smp 1
expect-output smp: Bringing up secondary CPUs ...
expect-output smp: Brought up 1 node, 1 CPU
expect-output SMP: Total of 1 processors activated.
expect-output CPU: All CPU(s) started at EL1
expect-no-output Booted secondary processor
run --smp 2
expect-output smp: Bringing up secondary CPUs ...
expect-output CPU1: Booted secondary processor 0x0000000001 [0x410fd083]
expect-output smp: Brought up 1 node, 2 CPUs
expect-output SMP: Total of 2 processors activated.
expect-output CPU: All CPU(s) started at EL1
run --smp 4
expect-output CPU1: Booted secondary processor 0x0000000001 [0x410fd083]
expect-output CPU2: Booted secondary processor 0x0000000002 [0x410fd083]
expect-output CPU3: Booted secondary processor 0x0000000003 [0x410fd083]
expect-output smp: Brought up 1 node, 4 CPUs
expect-output SMP: Total of 4 processors activated.
run --smp 4 -m 1G --dtb tests/fixtures/boot/smp-missing-cpu.dtb
expect-output CPU1: Booted secondary processor 0x0000000001 [0x410fd083]
expect-output psci: failed to boot CPU2 (-22)
expect-output CPU2: failed to boot: -22
expect-output CPU3: Booted secondary processor 0x0000000003 [0x410fd083]
expect-output smp: Brought up 1 node, 3 CPUs
expect-output SMP: Total of 3 processors activated.
expect-no-output CPU2: Booted secondary processor
run -m 1G --smp 4 --append "nr_cpus=1 loglevel=8 test.online=1 test.ids=1 test.possible=1"
expect-linux-lines tests/fixtures/linux-6.1/t_1G_smp4_nrcpus1.log
expect-output ] Number of cores (4) exceeds configured maximum of 1 - clipping
expect-output ] SLUB: HWalign=64, Order=0-3, MinObjects=0, CPUs=1, Nodes=1
expect-no-output Booted secondary processor
run -m 1G --smp 4 --append "maxcpus=2 loglevel=8 test.online=2 test.ids=4 test.possible=4"
expect-linux-lines tests/fixtures/linux-6.1/u_1G_smp4_maxcpus2.log
expect-output ] SLUB: HWalign=64, Order=0-3, MinObjects=0, CPUs=4, Nodes=1
expect-no-output CPU2: Booted secondary processor
expect-no-output clipping
run -m 1G --smp 4 --append "nosmp loglevel=8 test.online=1 test.ids=4 test.possible=4"
expect-linux-lines tests/fixtures/linux-6.1/v_1G_smp4_nosmp.log
expect-output ] SLUB: HWalign=64, Order=0-3, MinObjects=0, CPUs=4, Nodes=1
expect-no-output Booted secondary processor
run -m 1G --smp 4 --append "maxcpus=y loglevel=8 test.online=1 test.ids=4 test.possible=4"
expect-linux-lines tests/fixtures/linux-6.1/w_1G_smp4_maxcpusy.log
expect-output ] SLUB: HWalign=64, Order=0-3, MinObjects=0, CPUs=4, Nodes=1
expect-no-output Booted secondary processor
expect-no-output Malformed
run -m 1G --smp 4 --append "nr_cpus=x loglevel=8 test.online=4 test.ids=4 test.possible=4"
expect-linux-lines tests/fixtures/linux-6.1/y_1G_smp4_nrcpusx.log
expect-output ] SLUB: HWalign=64, Order=0-3, MinObjects=0, CPUs=4, Nodes=1
expect-no-output Malformed
run -m 1G --smp 4 --append "nr_cpus=3 maxcpus= loglevel=8 test.online=3 test.ids=3 test.possible=3"
expect-linux-lines tests/fixtures/linux-6.1/z_1G_smp4_nrcpus3_maxcpusempty.log
expect-output ] SLUB: HWalign=64, Order=0-3, MinObjects=0, CPUs=3, Nodes=1
expect-no-output CPU3: Booted secondary processor
run --smp 4 -m 1G --dtb tests/fixtures/boot/smp-spin-table.dtb --append "loglevel=8 test.online=2 test.ids=3 test.possible=3 test.release=0x50000000 test.stuck=1"
expect-output ] Unsupported enable-method: acme-wakeup
expect-output ] CPU 4: missing or invalid cpu-release-addr property
expect-output ] pcpu-alloc: [0] 0 [0] 1 [0] 2 
expect-output ] SLUB: HWalign=64, Order=0-3, MinObjects=0, CPUs=3, Nodes=1
expect-output ] CPU1: Booted secondary processor 0x0000000001 [0x410fd083]
expect-output ] CPU2: failed to come online
expect-output ] CPU2: failed in unknown state : 0x0
expect-output ] smp: Brought up 1 node, 2 CPUs
expect-output ] SMP: Total of 2 processors activated.
expect-no-output CPU2: Booted secondary processor
expect-no-output CPU3:
expect-no-output failed to boot
run --smp 4 -m 1G --dtb tests/fixtures/boot/smp-cpu-hole.dtb --append "loglevel=8 test.online=3 test.ids=4 test.possible=3"
expect-output ] Unsupported enable-method: acme-wakeup
expect-output ] pcpu-alloc: [0] 0 [0] 2 [0] 3 
expect-output ] SLUB: HWalign=64, Order=0-3, MinObjects=0, CPUs=4, Nodes=1
expect-output ] CPU2: Booted secondary processor 0x0000000002 [0x410fd083]
expect-output ] CPU3: Booted secondary processor 0x0000000003 [0x410fd083]
expect-output ] smp: Brought up 1 node, 3 CPUs
expect-no-output CPU1:
run --smp 4 -m 1G --dtb tests/fixtures/boot/smp-spin-table.dtb --append "test.spinfw=0x50000000 test.online=3 test.ids=3 test.possible=3 test.release=0x50000000 test.stuck=0"
expect-output ] Unsupported enable-method: acme-wakeup
expect-output ] CPU1: Booted secondary processor 0x0000000001 [0x410fd083]
expect-output ] CPU2: Booted secondary processor 0x0000000002 [0x410fd083]
expect-output ] smp: Brought up 1 node, 3 CPUs
expect-output ] SMP: Total of 3 processors activated.
expect-no-output failed to come online
"#
);

// What spin-table firmware does with a secondary CPU, for `test.spinfw=ADDR`: with the MMU
// off, poll the 8 bytes at physical ADDR (the CPU's cpu-release-addr, in x0: CPU_ON's
// context id) in `wfe` until they are not 0, then jump there with x0 = 0 (the boot
// protocol). QEMU virt has no such firmware (its PSCI keeps the CPU powered off), so
// the test parks CPU 2 here with PSCI CPU_ON before smp_init, as a boot loader would
// have before the kernel started.
core::arch::global_asm!(
    ".pushsection .text, \"ax\"",
    ".global spin_table_firmware",
    "spin_table_firmware:",
    "1: ldr x2, [x0]",
    "   cbnz x2, 2f",
    "   wfe",
    "   b 1b",
    "2: mov x0, xzr",
    "   br x2",
    ".popsection",
);

extern "C" {
    fn spin_table_firmware();
}

/// `test.spinfw=ADDR`: park CPU 2 (MPIDR 2) in [`spin_table_firmware`] polling ADDR.
/// A `__setup` parameter: it runs in start_kernel's parse_args, after psci_dt_init and
/// before smp_init.
fn spinfw_setup(val: Option<&str>) -> SetupResult {
    let addr = val
        .and_then(parse_u64)
        .ok_or("expected a release address")?;
    // Firmware zeroes the release address before it polls it (Documentation/arm64/
    // booting.rst); the CPU reads it with its MMU off, so the zero goes to memory.
    let release = phys_to_virt(PhysAddr(addr)) as *mut u64;
    // SAFETY: the test tree reserves this page of RAM for the release address; it is in
    // the linear map; `dc civac` only cleans and invalidates the line.
    unsafe {
        core::ptr::write_volatile(release, 0);
        core::arch::asm!("dc civac, {0}", "dsb sy", in(reg) release, options(nostack));
    }
    let entry = pa_symbol(spin_table_firmware as *const u8).as_u64();
    match psci_cpu_on(2, entry, addr) {
        0 => Ok(()),
        _ => Err("PSCI CPU_ON failed"),
    }
}
setup_param!("test.spinfw", spinfw_setup);

/// The value of `test.NAME=` on the command line, if given.
fn test_param(name: &str) -> Option<u64> {
    let mut v = None;
    parse_args(boot_command_line(), |p, val| {
        if p.strip_prefix("test.") == Some(name) {
            v = val.and_then(parse_u64);
        }
    });
    v
}

extern "C" {
    fn secondary_holding_pen();
}

#[no_mangle]
pub fn kernel_init() -> ! {
    check!(
        smp_processor_id() == 0,
        "the boot CPU reads cpu_number 0 through TPIDR_EL1"
    );
    let n = num_online_cpus();
    check!(
        n >= 1 && n <= nr_cpu_ids(),
        "{} CPUs online of {} possible",
        n,
        nr_cpu_ids()
    );
    for cpu in 1..nr_cpu_ids() {
        if cpu_online(cpu) {
            let seen = secondary_cpu_number(cpu);
            check!(
                seen == Some(cpu as u64),
                "CPU{} read cpu_number {:?} through TPIDR_EL1",
                cpu,
                seen
            );
            check!(cpu_possible(cpu), "online CPU{} is possible", cpu);
        }
    }
    if let Some(want) = test_param("online") {
        check!(
            n as u64 == want,
            "num_online_cpus() = {} (expected {})",
            n,
            want
        );
    }
    if let Some(want) = test_param("ids") {
        check!(
            nr_cpu_ids() as u64 == want,
            "nr_cpu_ids = {} (expected {})",
            nr_cpu_ids(),
            want
        );
    }
    if let Some(want) = test_param("possible") {
        let p = num_possible_cpus();
        check!(
            p as u64 == want,
            "num_possible_cpus() = {} (expected {})",
            p,
            want
        );
    }
    if let Some(want) = test_param("stuck") {
        let stuck = cpus_stuck_in_kernel();
        check!(
            stuck as u64 == want,
            "cpus_stuck_in_kernel = {} (expected {})",
            stuck,
            want
        );
    }
    if let Some(addr) = test_param("release") {
        // SAFETY: the test tree reserves this page of RAM for the spin-table release
        // address; it is in the linear map.
        let v = unsafe { core::ptr::read_volatile(phys_to_virt(PhysAddr(addr)) as *const u64) };
        let pen = pa_symbol(secondary_holding_pen as *const u8).as_u64();
        check!(
            u64::from_le(v) == pen,
            "cpu-release-addr {:#x} holds {:#x}, secondary_holding_pen is at {:#x}",
            addr,
            u64::from_le(v),
            pen
        );
        let rel = secondary_holding_pen_release.load(Ordering::Relaxed);
        check!(
            rel == 2,
            "secondary_holding_pen_release = {:#x} (CPU2's MPIDR, 0x2)",
            rel
        );
    }
    ktest::finish()
}
