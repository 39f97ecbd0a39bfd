//! arm64: everything that touches the CPU (Linux: arch/arm64).

core::arch::global_asm!(
    include_str!("head.S"),
    MAIR_EL1_SET = const sysreg::MAIR_EL1_SET,
    TCR_EL1_SET = const sysreg::TCR_EL1_SET,
    TCR_IPS_SHIFT = const sysreg::TCR_IPS_SHIFT,
    INIT_SCTLR_EL1_MMU_OFF = const sysreg::INIT_SCTLR_EL1_MMU_OFF,
    INIT_SCTLR_EL1_MMU_ON = const sysreg::INIT_SCTLR_EL1_MMU_ON,
    HCR_HOST_NVHE_FLAGS = const sysreg::HCR_HOST_NVHE_FLAGS,
    CPTR_EL2_DEFAULT = const sysreg::CPTR_EL2_DEFAULT,
    INIT_PSTATE_EL1 = const sysreg::INIT_PSTATE_EL1,
    CPACR_EL1_FPEN = const sysreg::CPACR_EL1_FPEN,
    PMD_TYPE_TABLE = const mm::pgtable::PMD_TYPE_TABLE,
    SWAPPER_MM_MMUFLAGS = const mm::pgtable::SWAPPER_MM_MMUFLAGS,
    SWAPPER_BLOCK_SHIFT = const mm::pgtable::SWAPPER_BLOCK_SHIFT,
    PAGE_SIZE = const crate::mm::PAGE_SIZE,
    MPIDR_HWID_BITMASK = const sysreg::MPIDR_HWID_BITMASK,
    NR_CPUS = const crate::include::numa::NR_CPUS,
    KIMAGE_VADDR = const memory::KIMAGE_VADDR,
    SYS_EXIT_EXTENDED = const kernel::semihosting::SYS_EXIT_EXTENDED,
    ADP_STOPPED_APP_EXIT = const kernel::semihosting::ADP_STOPPED_APPLICATION_EXIT,
);
core::arch::global_asm!(
    include_str!("kernel/entry.S"),
    S_FRAME_SIZE = const ptrace::S_FRAME_SIZE,
    S_LR = const ptrace::S_LR,
    S_PC = const ptrace::S_PC,
    S_ESR = const ptrace::S_ESR,
    OVERFLOW_STACK_SIZE = const kernel::traps::OVERFLOW_STACK_SIZE,
    STACK_GUARD_WINDOW = const kernel::traps::STACK_GUARD_WINDOW,
);

pub mod esr;
pub mod fixmap;
pub mod kernel;
pub mod memory;
pub mod mm;
pub mod percpu;
pub mod ptrace;
pub mod sysreg;
