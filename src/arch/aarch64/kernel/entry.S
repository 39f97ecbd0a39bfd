/*
 * Exception vectors, after Linux's arch/arm64/kernel/entry.S.
 *
 * Every exception saves a `struct pt_regs` on the current stack and calls the Rust handler
 * with a pointer to it; the handler may change pc (exception-table fixups) before we return.
 * Layout (8-byte slots): x0..x30, sp, pc, pstate, esr, far = 36 slots, 288 bytes; the S_*
 * offsets are operands from Rust's `PtRegs` (arch/aarch64/ptrace.rs).
 *
 * Linux's VMAP_STACK check (kernel_ventry): before anything is stored, an SP that has run
 * off the bottom of this CPU's stack into the unmapped guard page below it (per-CPU
 * `kernel_stack_lo`, within STACK_GUARD_WINDOW under it) is not used: the frame is built on
 * this CPU's `overflow_stack` instead and handle_bad_stack() reports the overflow. Storing the
 * frame on the overflowed stack would fault again, forever. x0/x1 are parked in TPIDR_EL0 and
 * TPIDRRO_EL0 (no user space here, so nothing else uses them) while the check runs.
 */
.equ S_FRAME_SIZE, {S_FRAME_SIZE}
.equ S_LR, {S_LR}
.equ S_PC, {S_PC}
.equ S_ESR, {S_ESR}
.equ OVERFLOW_STACK_SIZE, {OVERFLOW_STACK_SIZE}
.equ STACK_GUARD_WINDOW, {STACK_GUARD_WINDOW}

.macro kernel_entry
    sub     sp, sp, #S_FRAME_SIZE
    /* Linux: the VMAP_STACK overflow check of kernel_ventry. */
    msr     tpidr_el0, x0
    msr     tpidrro_el0, x1
    ldr     x0, =kernel_stack_lo
    mrs     x1, tpidr_el1
    ldr     x0, [x0, x1]                // this CPU's stack bottom (0: not known)
    mov     x1, sp
    sub     x0, x0, x1                  // bottom - sp: 1.. when sp is below the bottom
    sub     x0, x0, #1
    cmp     x0, #STACK_GUARD_WINDOW
    b.lo    __bad_stack
    mrs     x0, tpidr_el0
    mrs     x1, tpidrro_el0
    stp     x0, x1, [sp, #16 * 0]
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    stp     x18, x19, [sp, #16 * 9]
    stp     x20, x21, [sp, #16 * 10]
    stp     x22, x23, [sp, #16 * 11]
    stp     x24, x25, [sp, #16 * 12]
    stp     x26, x27, [sp, #16 * 13]
    stp     x28, x29, [sp, #16 * 14]
    add     x21, sp, #S_FRAME_SIZE
    stp     x30, x21, [sp, #S_LR]
    mrs     x22, elr_el1
    mrs     x23, spsr_el1
    stp     x22, x23, [sp, #S_PC]
    mrs     x24, esr_el1
    mrs     x25, far_el1
    stp     x24, x25, [sp, #S_ESR]
.endm

.macro kernel_exit
    ldp     x22, x23, [sp, #S_PC]
    msr     elr_el1, x22
    msr     spsr_el1, x23
    ldp     x0, x1, [sp, #16 * 0]
    ldp     x2, x3, [sp, #16 * 1]
    ldp     x4, x5, [sp, #16 * 2]
    ldp     x6, x7, [sp, #16 * 3]
    ldp     x8, x9, [sp, #16 * 4]
    ldp     x10, x11, [sp, #16 * 5]
    ldp     x12, x13, [sp, #16 * 6]
    ldp     x14, x15, [sp, #16 * 7]
    ldp     x16, x17, [sp, #16 * 8]
    ldp     x18, x19, [sp, #16 * 9]
    ldp     x20, x21, [sp, #16 * 10]
    ldp     x22, x23, [sp, #16 * 11]
    ldp     x24, x25, [sp, #16 * 12]
    ldp     x26, x27, [sp, #16 * 13]
    ldp     x28, x29, [sp, #16 * 14]
    ldr     x30, [sp, #S_LR]
    add     sp, sp, #S_FRAME_SIZE
    eret
.endm

/* One handler per (origin, kind); `kind` is the vector slot number 0..15. */
.macro entry_handler, kind
    kernel_entry
    mov     x0, sp
    mov     x1, #\kind
    bl      el1_exception
    kernel_exit
.endm

.macro ventry, kind
    .balign 0x80
    b       __vector_\kind
.endm

    .section .entry.text, "ax"
    .balign 0x800
    .global vectors
vectors:
    ventry 0        // EL1t sync
    ventry 1        // EL1t irq
    ventry 2        // EL1t fiq
    ventry 3        // EL1t serror
    ventry 4        // EL1h sync
    ventry 5        // EL1h irq
    ventry 6        // EL1h fiq
    ventry 7        // EL1h serror
    ventry 8        // EL0 64-bit sync
    ventry 9        // EL0 64-bit irq
    ventry 10       // EL0 64-bit fiq
    ventry 11       // EL0 64-bit serror
    ventry 12       // EL0 32-bit sync
    ventry 13       // EL0 32-bit irq
    ventry 14       // EL0 32-bit fiq
    ventry 15       // EL0 32-bit serror

.irp kind, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
__vector_\kind:
    entry_handler \kind
.endr

/*
 * Linux: __bad_stack — SP is in the guard below this CPU's stack (x0/x1 parked in TPIDR_EL0 /
 * TPIDRRO_EL0, SP already lowered by S_FRAME_SIZE). Build the frame on this CPU's
 * overflow_stack and report; handle_bad_stack() does not return.
 */
__bad_stack:
    ldr     x0, =overflow_stack
    mrs     x1, tpidr_el1
    add     x0, x0, x1
    add     x0, x0, #OVERFLOW_STACK_SIZE
    mov     x1, sp                      // the interrupted sp - S_FRAME_SIZE
    mov     sp, x0
    sub     sp, sp, #S_FRAME_SIZE
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    stp     x18, x19, [sp, #16 * 9]
    stp     x20, x21, [sp, #16 * 10]
    stp     x22, x23, [sp, #16 * 11]
    stp     x24, x25, [sp, #16 * 12]
    stp     x26, x27, [sp, #16 * 13]
    stp     x28, x29, [sp, #16 * 14]
    add     x21, x1, #S_FRAME_SIZE
    stp     x30, x21, [sp, #S_LR]
    mrs     x0, tpidr_el0
    mrs     x1, tpidrro_el0
    stp     x0, x1, [sp, #16 * 0]
    mrs     x22, elr_el1
    mrs     x23, spsr_el1
    stp     x22, x23, [sp, #S_PC]
    mrs     x24, esr_el1
    mrs     x25, far_el1
    stp     x24, x25, [sp, #S_ESR]
    mov     x0, sp
    bl      handle_bad_stack
1:  wfi
    b       1b

    .ltorg
