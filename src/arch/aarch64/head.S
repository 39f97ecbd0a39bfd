/*
 * The kernel entry, after Linux 6.1's arch/arm64/kernel/head.S.
 *
 * QEMU (like any arm64 boot loader) jumps to the start of the Image with the MMU off,
 * x0 = physical address of the device tree, x1..x3 = 0, at EL2 or EL1. From here to
 * __primary_switched the code runs at its *physical* address while linked at its virtual
 * one, so it only uses PC-relative addressing (adr/adrp) for data and literal-pool loads
 * (ldr =sym) for the link-time virtual addresses it jumps to.
 *
 * Register use through primary_entry (callee-saved, as in Linux):
 *   x19 = boot mode (CurrentEL at entry)
 *   x20..x23 = boot x0..x3 (x21 = the FDT pointer, as Linux names it)
 *   x24 = physical address of _text
 */

/*
 * Constants, all defined once in Rust and passed in as `global_asm!` const operands
 * (arch/aarch64/mod.rs): the memory types and MAIR value, TCR and SCTLR values
 * (arch/aarch64/sysreg.rs), the early block descriptor (mm/pgtable.rs), semihosting's exit
 * call (kernel/semihosting.rs).
 */
.equ MAIR_EL1_SET,         {MAIR_EL1_SET}
.equ TCR_EL1_SET,          {TCR_EL1_SET}
.equ TCR_IPS_SHIFT,        {TCR_IPS_SHIFT}
.equ INIT_SCTLR_EL1_MMU_OFF, {INIT_SCTLR_EL1_MMU_OFF}
.equ INIT_SCTLR_EL1_MMU_ON,  {INIT_SCTLR_EL1_MMU_ON}
.equ HCR_HOST_NVHE_FLAGS,  {HCR_HOST_NVHE_FLAGS}
.equ CPTR_EL2_DEFAULT,     {CPTR_EL2_DEFAULT}
.equ INIT_PSTATE_EL1,      {INIT_PSTATE_EL1}
.equ CPACR_EL1_FPEN,       {CPACR_EL1_FPEN}

/* Table descriptor, and the block descriptor for the image: AttrIndx = MT_NORMAL, AF, SH. */
.equ PMD_TYPE_TABLE,       {PMD_TYPE_TABLE}
.equ PMD_SECT_KERNEL,      {SWAPPER_MM_MMUFLAGS}
.equ SWAPPER_BLOCK_SHIFT,  {SWAPPER_BLOCK_SHIFT}
.equ SWAPPER_BLOCK_SIZE,   (1 << SWAPPER_BLOCK_SHIFT)
.equ PAGE_SIZE,            {PAGE_SIZE}

/* The spin-table holding pen: the MPIDR affinity bits, the size of its CPU map. */
.equ MPIDR_HWID_BITMASK,   {MPIDR_HWID_BITMASK}
.equ NR_CPUS,              {NR_CPUS}

/* Where the image is linked: an absolute symbol for linker.ld (`. = KIMAGE_VADDR`). */
    .global KIMAGE_VADDR
    .set    KIMAGE_VADDR, {KIMAGE_VADDR}

/* Semihosting SYS_EXIT_EXTENDED with ADP_Stopped_ApplicationExit. */
.equ SYS_EXIT_EXTENDED,    {SYS_EXIT_EXTENDED}
.equ ADP_STOPPED_APP_EXIT, {ADP_STOPPED_APP_EXIT}

.macro mov_q_sctlr_off, reg
    movz    \reg, #(INIT_SCTLR_EL1_MMU_OFF & 0xffff)
    movk    \reg, #(INIT_SCTLR_EL1_MMU_OFF >> 16), lsl #16
.endm

    .section .head.text, "ax"
    .global _head
_head:
    /* Linux arm64 Image header (Documentation/arm64/booting.rst). */
    b       primary_entry               // code0: branch to the kernel start
    .long   0                           // code1
    .quad   0                           // text_offset: load at a 2 MiB boundary + 0
    .quad   _kernel_size_le             // image_size: non-zero, so QEMU honours text_offset
    .quad   0xa                         // flags: LE, 4 KiB pages, placeable anywhere
    .quad   0                           // res2
    .quad   0                           // res3
    .quad   0                           // res4
    .ascii  "ARM\x64"                   // magic
    .long   0                           // res5 (no PE/COFF header: not an EFI stub)

    .section .idmap.text, "ax"

/* Linux: primary_entry */
    .global primary_entry
primary_entry:
    mov     x20, x0
    mov     x21, x0
    mov     x22, x1
    mov     x23, x2
    mov     x25, x3
    adrp    x24, _text
    bl      init_kernel_el
    mov     x19, x0
    bl      __check_granule
    /* FP/SIMD: the Rust target uses NEON registers, so CPACR_EL1.FPEN must allow them. */
    mov     x0, #CPACR_EL1_FPEN
    msr     cpacr_el1, x0
    isb
    bl      __create_page_tables
    bl      __cpu_setup
    ldr     x8, =__primary_switched
    adrp    x1, init_pg_dir
    adrp    x2, init_idmap_pg_dir
    bl      __enable_mmu
    br      x8

/*
 * Linux: secondary_entry / secondary_startup — where PSCI CPU_ON starts a secondary CPU
 * (x0 = the context id: its logical CPU number), MMU off, at EL2 or EL1. The same steps as
 * the primary's: EL2 -> EL1, FP/SIMD on, __cpu_setup's MAIR/TCR, then the MMU on through
 * init_idmap_pg_dir (still there: smp_init runs before free_initmem) with swapper_pg_dir in
 * TTBR1, and on to __secondary_switched at the kernel's virtual address.
 */
    .global secondary_entry
secondary_entry:
    mov     x20, x0
    bl      init_kernel_el
    mov     x21, x0                      // the entry EL, as x19 for the primary
secondary_startup:                       // x20 = logical CPU number, x21 = entry EL
    mov     x0, #CPACR_EL1_FPEN
    msr     cpacr_el1, x0
    isb
    bl      __cpu_setup
    ldr     x8, =__secondary_switched
    adrp    x1, swapper_pg_dir
    adrp    x2, init_idmap_pg_dir
    bl      __enable_mmu
    br      x8

/*
 * Linux: secondary_holding_pen — where a spin-table CPU's firmware jumps once
 * smp_spin_table_cpu_prepare() wrote this address to its cpu-release-addr (MMU off, at EL2
 * or EL1). To EL1 as secondary_entry, then wait in wfe until secondary_holding_pen_release
 * holds this CPU's MPIDR (smp_spin_table_cpu_boot), look its logical CPU number up in
 * secondary_holding_pen_map (Linux reads it later from secondary_data.task) and join
 * secondary_entry's path. An MPIDR the map does not hold parks here.
 */
    .global secondary_holding_pen
secondary_holding_pen:
    bl      init_kernel_el
    mov     x21, x0                      // the entry EL
    mrs     x2, mpidr_el1
    ldr     x1, =MPIDR_HWID_BITMASK
    and     x2, x2, x1
    adrp    x3, secondary_holding_pen_release
    add     x3, x3, :lo12:secondary_holding_pen_release
1:  ldr     x4, [x3]
    cmp     x4, x2
    b.eq    2f
    wfe
    b       1b
2:  adrp    x3, secondary_holding_pen_map
    add     x3, x3, :lo12:secondary_holding_pen_map
    mov     x20, #0
3:  ldr     x4, [x3, x20, lsl #3]
    cmp     x4, x2
    b.eq    secondary_startup
    add     x20, x20, #1
    cmp     x20, #NR_CPUS
    b.lo    3b
4:  wfe
    b       4b

/*
 * Linux: init_kernel_el — drop from EL2 to EL1 (non-VHE), returning the entry EL in x0.
 */
init_kernel_el:
    mrs     x0, CurrentEL
    cmp     x0, #(2 << 2)
    b.eq    1f
    mov_q_sctlr_off x1
    msr     sctlr_el1, x1
    isb
    ret
1:  mov_q_sctlr_off x1
    msr     sctlr_el1, x1
    mov     x1, #HCR_HOST_NVHE_FLAGS
    msr     hcr_el2, x1
    isb
    /* EL1 may read the physical and virtual counters (generic timer). */
    mrs     x1, cnthctl_el2
    orr     x1, x1, #3
    msr     cnthctl_el2, x1
    msr     cntvoff_el2, xzr
    mov     x1, #CPTR_EL2_DEFAULT
    msr     cptr_el2, x1
    msr     hstr_el2, xzr
    /* EL1 reads of MIDR/MPIDR see the real values. */
    mrs     x1, midr_el1
    msr     vpidr_el2, x1
    mrs     x1, mpidr_el1
    msr     vmpidr_el2, x1
    msr     vttbr_el2, xzr
    mov     x1, #INIT_PSTATE_EL1
    msr     spsr_el2, x1
    msr     elr_el2, lr
    eret

/* Linux: __no_granule_support — 4 KiB pages are required. Exit through semihosting (2). */
__check_granule:
    mrs     x0, id_aa64mmfr0_el1
    ubfx    x0, x0, #28, #4             // TGran4: 0b1111 means not supported
    cmp     x0, #0xf
    b.eq    1f
    ret
1:  mov     x0, #2
    b       __early_exit

/*
 * Exit QEMU with status x0 (semihosting). With semihosting off the hlt traps; with the MMU
 * off and no vectors that loops, which the runner's timeout reports.
 */
__early_exit:
    adr     x1, __early_exit_block
    mov     x2, #ADP_STOPPED_APP_EXIT & 0xffff
    movk    x2, #ADP_STOPPED_APP_EXIT >> 16, lsl #16
    stp     x2, x0, [x1]
    mov     x0, #SYS_EXIT_EXTENDED
    hlt     #0xf000
1:  wfi
    b       1b

    .balign 16
__early_exit_block:
    .quad   0, 0

/*
 * Zero the pages [x0, x1).
 */
__clear_pages:
1:  stp     xzr, xzr, [x0], #16
    cmp     x0, x1
    b.lo    1b
    ret

/*
 * map_image l0, va, pa_start, pa_end: map [pa_start, pa_end) at va with 2 MiB blocks through
 * the three pages at l0 (L0, L1, L2). The range must not cross a 1 GiB boundary (checked).
 * Clobbers x9-x15.
 */
.macro map_image, l0, va, pa_start, pa_end
    add     x9, \l0, #PAGE_SIZE          // L1 table
    add     x10, \l0, #2 * PAGE_SIZE     // L2 table
    ubfx    x11, \va, #39, #9
    orr     x12, x9, #PMD_TYPE_TABLE
    str     x12, [\l0, x11, lsl #3]
    ubfx    x11, \va, #30, #9
    orr     x12, x10, #PMD_TYPE_TABLE
    str     x12, [x9, x11, lsl #3]
    /* The image must stay within the one L2 table: same 1 GiB slot at both ends. */
    sub     x13, \pa_end, \pa_start
    add     x13, x13, \va
    sub     x13, x13, #1
    lsr     x14, x13, #30
    lsr     x15, \va, #30
    cmp     x14, x15
    b.ne    __map_too_big
    ubfx    x11, \va, #21, #9            // first L2 index
    ubfx    x13, x13, #21, #9            // last L2 index
    mov     x14, \pa_start
    bic     x14, x14, #(SWAPPER_BLOCK_SIZE - 1)
    mov     x15, #PMD_SECT_KERNEL
    orr     x14, x14, x15
99: str     x14, [x10, x11, lsl #3]
    add     x14, x14, #SWAPPER_BLOCK_SIZE
    add     x11, x11, #1
    cmp     x11, x13
    b.ls    99b
.endm

__map_too_big:
    mov     x0, #3
    b       __early_exit

/*
 * Linux: create_idmap + create_kernel_mapping. Two sets of L0/L1/L2 tables:
 *   init_idmap_pg_dir (TTBR0): the image at its physical address, for the MMU switch;
 *   init_pg_dir (TTBR1): the image at KIMAGE_VADDR, where the kernel runs.
 * The device tree is mapped later, from Rust, through the fixmap (Linux: fixmap_remap_fdt).
 */
__create_page_tables:
    mov     x28, lr
    adrp    x0, init_idmap_pg_dir
    adrp    x1, init_idmap_pg_end
    bl      __clear_pages
    adrp    x0, init_pg_dir
    adrp    x1, init_pg_end
    bl      __clear_pages

    adrp    x3, _text                    // physical start
    adrp    x4, _end                     // physical end (_end is 64 KiB aligned)
    adrp    x0, init_idmap_pg_dir
    map_image x0, x3, x3, x4

    adrp    x0, init_pg_dir
    ldr     x5, =_text                   // virtual start
    map_image x0, x5, x3, x4

    /*
     * The tables were written with the MMU and caches off; drop any stale lines the CPU may
     * have fetched speculatively so the walker sees what is in memory.
     */
    adrp    x0, init_idmap_pg_dir
    adrp    x1, init_idmap_pg_end
    bl      __dcache_inval_poc
    adrp    x0, init_pg_dir
    adrp    x1, init_pg_end
    bl      __dcache_inval_poc
    mov     lr, x28
    ret

/* Linux: dcache_inval_poc over [x0, x1), 64-byte lines (the CTR_EL0 minimum on QEMU's CPUs). */
__dcache_inval_poc:
    dmb     sy
1:  dc      ivac, x0
    add     x0, x0, #64
    cmp     x0, x1
    b.lo    1b
    dsb     sy
    ret

/*
 * Linux: __cpu_setup (arch/arm64/mm/proc.S) — MAIR, TCR with IPS from the CPU's PA range.
 * Returns the SCTLR_EL1 value to enable in x0.
 */
__cpu_setup:
    tlbi    vmalle1
    dsb     nsh
    ldr     x0, =MAIR_EL1_SET
    msr     mair_el1, x0
    ldr     x0, =TCR_EL1_SET
    mrs     x1, id_aa64mmfr0_el1
    ubfx    x1, x1, #0, #3               // PARange
    cmp     x1, #5                       // clamp at 48 bits (this kernel uses 4 levels)
    mov     x2, #5
    csel    x1, x1, x2, ls
    bfi     x0, x1, #TCR_IPS_SHIFT, #3
    msr     tcr_el1, x0
    isb
    ldr     x0, =INIT_SCTLR_EL1_MMU_ON
    ret

/*
 * Linux: __enable_mmu — x0 = SCTLR value, x1 = TTBR1 table, x2 = TTBR0 table (physical).
 */
__enable_mmu:
    msr     ttbr0_el1, x2
    msr     ttbr1_el1, x1
    isb
    msr     sctlr_el1, x0
    isb
    /* Instructions fetched with the MMU off may be stale. */
    ic      iallu
    dsb     nsh
    isb
    ret

    .ltorg

    .section .text, "ax"
/*
 * Linux: __primary_switched — running at the kernel's virtual address with the MMU on.
 */
__primary_switched:
    ldr     x0, =init_stack_top
    mov     sp, x0
    msr     tpidr_el1, xzr               // per-CPU accesses reach the static image

    mov     x29, xzr
    mov     x30, xzr
    ldr     x0, =vectors
    msr     vbar_el1, x0
    isb

    /* Linux: __pi_memset(__bss_start, 0, __bss_stop - __bss_start). */
    ldr     x0, =__bss_start
    ldr     x1, =__bss_stop
1:  cmp     x0, x1
    b.hs    2f
    stp     xzr, xzr, [x0], #16
    b       1b
2:
    /* The boot stack's bottom, for the vectors' overflow check (the static per-CPU image). */
    ldr     x0, =init_stack
    ldr     x1, =kernel_stack_lo
    str     x0, [x1]
    /* Linux: kimage_voffset = VA(_text) - PA(_text); __fdt_pointer; boot_args[]. */
    ldr     x0, =_text
    sub     x0, x0, x24
    ldr     x1, =kimage_voffset
    str     x0, [x1]
    ldr     x1, =__fdt_pointer
    str     x21, [x1]
    ldr     x1, =boot_args
    stp     x20, x22, [x1]
    stp     x23, x25, [x1, #16]
    ldr     x1, =__boot_cpu_mode
    str     x19, [x1]

    /*
     * Linux: the final frame record — a zeroed fp, lr pair that x29 points to, so frame-pointer
     * walks (and GDB's prologue unwinder: a saved lr of 0 is the outermost frame) end here.
     */
__primary_switched_call:                 // a symbol, so GDB's prologue analysis starts here
    stp     x29, x30, [sp, #-16]!
    mov     x29, sp
    mov     x0, x21
    bl      start_kernel
3:  wfi
    b       3b

    .ltorg

/*
 * Linux: __secondary_switched — a secondary CPU at the kernel's virtual address with the MMU
 * on: the kernel vectors, the stack and per-CPU offset the primary left in secondary_data
 * (Linux: secondary_data.task's stack, and set_this_cpu_offset), then
 * secondary_start_kernel(cpu), which does not return.
 */
__secondary_switched:
    ldr     x0, =vectors
    msr     vbar_el1, x0
    isb
    ldr     x1, =secondary_data
    add     x1, x1, x20, lsl #4          // this CPU's slot (16 bytes each)
    ldr     x2, [x1]                     // stack top
    mov     sp, x2
    ldr     x3, [x1, #8]                 // this CPU's per-CPU offset
    msr     tpidr_el1, x3
    mov     x29, xzr
    mov     x30, xzr
__secondary_switched_call:               // the final frame record, as in __primary_switched
    stp     x29, x30, [sp, #-16]!
    mov     x29, sp
    mov     x0, x20                      // the logical CPU number (CPU_ON's context id)
    mov     x1, x21                      // its entry EL
    bl      secondary_start_kernel
4:  wfe
    b       4b

    .ltorg
