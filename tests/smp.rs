//! Secondary CPU bring-up (Linux: kernel/smp.c smp_init(), arch/arm64/kernel/smp.c
//! __cpu_up(), secondary_start_kernel(), smp_cpus_done()): every CPU of `-smp 1/2/4` is
//! started with PSCI CPU_ON and prints Linux's `CPUn: Booted secondary processor` line, with
//! Linux's summary lines; a CPU whose MPIDR no CPU has (tests/fixtures/boot/
//! smp-missing-cpu.dts) is reported with PSCI's error and left out while the others come
//! up. Each online secondary read its own CPU number through TPIDR_EL1.
#![no_std]
#![no_main]

use arm64_mm::arch::aarch64::kernel::setup::nr_cpu_ids;
use arm64_mm::arch::aarch64::kernel::smp::{
    cpu_online, num_online_cpus, secondary_cpu_number, smp_processor_id,
};
use arm64_mm::kernel::ktest;
use arm64_mm::{check, qemu_test};

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
"#
);

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
        }
    }
    ktest::finish()
}
