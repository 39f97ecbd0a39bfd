//! Frame-pointer unwinding (Linux: arch/arm64/kernel/stacktrace.c). The kernel is built with
//! `-C force-frame-pointers=yes`, so every frame starts with the record {x29, x30}.

use crate::kernel::kallsyms;

/// Linux: on_task_stack() — is the frame record at `fp` on this CPU's stack?
fn on_task_stack(fp: u64) -> bool {
    let (lo, hi) = crate::arch::aarch64::percpu::this_cpu_stack();
    fp >= lo && fp + 16 <= hi && fp.is_multiple_of(16)
}

fn print_frame(pc: u64) {
    match kallsyms::lookup(pc) {
        Some(sym) => pr_emerg!(" {}", sym),
        None => pr_emerg!(" 0x{:016x}", pc),
    }
}

/// Linux: dump_backtrace() — the first frame is `pc`, then each return address on the
/// frame-record chain starting at `fp`. Stops at a frame outside the stack or after 64.
pub fn dump_backtrace(pc: u64, mut fp: u64) {
    print_frame(pc);
    for _ in 0..64 {
        if !on_task_stack(fp) {
            break;
        }
        // SAFETY: `fp` is 16-byte aligned and inside the boot stack (checked above), which
        // is mapped for the kernel's lifetime; a frame record is two u64s.
        let (next, lr) = unsafe { ((fp as *const u64).read(), (fp as *const u64).add(1).read()) };
        if lr == 0 {
            break;
        }
        // The return address points after the call; report the call itself.
        print_frame(lr - 4);
        if next <= fp {
            break;
        }
        fp = next;
    }
}

/// Linux: dump_stack() — a backtrace of the caller.
#[inline(never)]
pub fn dump_stack() {
    let (fp, pc): (u64, u64);
    // SAFETY: reads two registers.
    unsafe {
        core::arch::asm!("mov {0}, x29", "adr {1}, .", out(reg) fp, out(reg) pc, options(nomem, nostack))
    };
    // Our own frame record is read now: the compiler may pop it and tail-call
    // dump_backtrace, whose frame then lies where the record was.
    // SAFETY: x29 points at this function's frame record {fp, lr} on the current stack.
    let (caller_fp, lr) = unsafe { ((fp as *const u64).read(), (fp as *const u64).add(1).read()) };
    super::setup::dump_stack_print_info();
    pr_emerg!("Call trace:");
    print_frame(pc);
    dump_backtrace(lr - 4, caller_fp);
}

/// Linux: stack_trace_save() — the return addresses on the frame-record chain: the first is
/// in the function calling this one (stack_trace_save itself is left out, as Linux's is),
/// then `skip` frames are left out; each address is the call (the return address less 4).
/// Returns how many were stored.
#[inline(never)]
pub fn stack_trace_save(entries: &mut [u64], skip: usize) -> usize {
    let mut fp: u64;
    // SAFETY: reads x29, this function's frame record.
    unsafe { core::arch::asm!("mov {0}, x29", out(reg) fp, options(nomem, nostack)) };
    let (mut n, mut skip) = (0, skip);
    while n < entries.len() && on_task_stack(fp) {
        // SAFETY: `fp` is a 16-byte aligned frame record on this CPU's stack (checked).
        let (next, lr) = unsafe { ((fp as *const u64).read(), (fp as *const u64).add(1).read()) };
        if lr == 0 {
            break;
        }
        // The first record is ours: its return address is in our caller.
        if skip > 0 {
            skip -= 1;
        } else {
            entries[n] = lr - 4;
            n += 1;
        }
        if next <= fp {
            break;
        }
        fp = next;
    }
    n
}

/// Linux: stack_trace_save_regs() — the stack of the context `regs` was saved from: its pc,
/// then the return addresses on its frame-record chain (from its x29). Returns how many
/// were stored.
pub fn stack_trace_save_regs(
    regs: &crate::arch::aarch64::ptrace::PtRegs,
    entries: &mut [u64],
) -> usize {
    if entries.is_empty() {
        return 0;
    }
    entries[0] = regs.pc;
    let (mut n, mut fp) = (1, regs.regs[29]);
    while n < entries.len() && on_task_stack(fp) {
        // SAFETY: `fp` is a 16-byte aligned frame record on this CPU's stack (checked).
        let (next, lr) = unsafe { ((fp as *const u64).read(), (fp as *const u64).add(1).read()) };
        if lr == 0 {
            break;
        }
        entries[n] = lr - 4;
        n += 1;
        if next <= fp {
            break;
        }
        fp = next;
    }
    n
}
