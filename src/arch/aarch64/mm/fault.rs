//! Kernel faults (Linux: arch/arm64/mm/fault.c): decode the ESR, try an exception-table
//! fixup, otherwise report the fault with Linux's text and die.

use crate::arch::aarch64::esr::{
    esr_elx_ec_raw, esr_elx_il, esr_elx_iss, esr_get_class_string, esr_is_data_abort, fault_info,
    EsrAbt, ESR_ELX_ABT,
};
use crate::arch::aarch64::kernel::extable;
use crate::arch::aarch64::kernel::traps::die;
use crate::arch::aarch64::ptrace::PtRegs;
use crate::mm::PAGE_SIZE;

use crate::arch::aarch64::esr::{FaultInfo, FaultKind};

/// Linux: mem_abort_decode() and data_abort_decode().
pub fn mem_abort_decode(esr: u64) {
    let abt = EsrAbt::new(esr);
    let fsc = abt.read(ESR_ELX_ABT::FSC);
    pr_alert!("Mem abort info:");
    pr_alert!("  ESR = {:#018x}", esr);
    pr_alert!(
        "  EC = {:#04x}: {}, IL = {} bits",
        esr_elx_ec_raw(esr),
        esr_get_class_string(esr),
        if esr_elx_il(esr) { 32 } else { 16 }
    );
    pr_alert!(
        "  SET = {}, FnV = {}",
        abt.read(ESR_ELX_ABT::SET),
        abt.read(ESR_ELX_ABT::FNV)
    );
    pr_alert!(
        "  EA = {}, S1PTW = {}",
        abt.read(ESR_ELX_ABT::EA),
        abt.read(ESR_ELX_ABT::S1PTW)
    );
    pr_alert!("  FSC = {:#04x}: {}", fsc, fault_info(fsc).0);
    if esr_is_data_abort(esr) {
        pr_alert!("Data abort info:");
        if abt.is_set(ESR_ELX_ABT::ISV) {
            pr_alert!(
                "  Access size = {} byte(s)",
                1u32 << abt.read(ESR_ELX_ABT::SAS)
            );
            pr_alert!(
                "  SSE = {}, SRT = {}",
                abt.read(ESR_ELX_ABT::SSE),
                abt.read(ESR_ELX_ABT::SRT)
            );
            pr_alert!(
                "  SF = {}, AR = {}",
                abt.read(ESR_ELX_ABT::SF),
                abt.read(ESR_ELX_ABT::AR)
            );
        } else {
            pr_alert!("  ISV = 0, ISS = {:#010x}", esr_elx_iss(esr));
        }
        pr_alert!(
            "  CM = {}, WnR = {}",
            abt.read(ESR_ELX_ABT::CM),
            abt.read(ESR_ELX_ABT::WNR)
        );
    }
}

/// Linux: do_mem_abort() for faults taken from EL1 — there is no user space, so every
/// fault is a kernel fault: fixed up if the faulting instruction has an exception-table
/// entry, fatal otherwise.
pub fn do_mem_abort(far: u64, esr: u64, regs: &mut PtRegs) {
    if extable::fixup_exception(regs, FaultInfo::decode(esr, far)) {
        return;
    }
    // Linux: __do_kernel_fault()'s `kfence_handle_page_fault(addr, esr & ESR_ELx_WNR,
    // regs)` for a fault that is neither a permission fault nor a NULL dereference: if it
    // was KFENCE's, the report is out and the page mapped again; the access completes.
    let info = FaultInfo::decode(esr, far);
    if info.kind != FaultKind::Permission && far >= PAGE_SIZE && kfence_fault(far, info.write, regs)
    {
        return;
    }
    die_kernel_fault(far, esr, regs);
}

/// kfence_handle_page_fault() with the faulting context's stack (stack_trace_save_regs()).
fn kfence_fault(addr: u64, is_write: bool, regs: &PtRegs) -> bool {
    if !crate::mm::kfence::is_kfence_address(addr as usize) {
        return false;
    }
    let mut stack = [0u64; crate::mm::kfence::core::KFENCE_STACK_DEPTH];
    let n = crate::arch::aarch64::kernel::stacktrace::stack_trace_save_regs(regs, &mut stack);
    crate::mm::kfence::kfence_handle_page_fault(addr as usize, is_write, &stack[..n])
}

/// Linux: __do_kernel_fault() + die_kernel_fault().
fn die_kernel_fault(addr: u64, esr: u64, regs: &mut PtRegs) -> ! {
    let info = FaultInfo::decode(esr, addr);
    let msg = if info.kind == FaultKind::Permission {
        if info.write {
            "write to read-only memory"
        } else if info.instruction {
            "execute from non-executable memory"
        } else {
            "read from unreadable memory"
        }
    } else if addr < PAGE_SIZE {
        "NULL pointer dereference"
    } else {
        "paging request"
    };
    // SAFETY: we are on the way down; whatever held the log lock will not run again.
    unsafe { crate::kernel::printk::bust_spinlocks() };
    pr_alert!(
        "Unable to handle kernel {} at virtual address {:016x}",
        msg,
        addr
    );
    mem_abort_decode(esr);
    if let Some((start, end)) = crate::mm::vmalloc::api::vmalloc_guard_area(addr) {
        pr_alert!(
            "[{:016x}] vmalloc guard page of the area {:#x}-{:#x}",
            addr,
            start,
            end
        );
    }
    show_pte(addr);
    report_free_page(addr);
    die("Oops", regs, esr)
}

/// With debug_pagealloc, a fault on the linear map is most often a use after free: free
/// pages are unmapped there. If the page under `addr` is free, dump_page() says so (and
/// with page_owner, who had it last and who freed it). Not a Linux line: Linux's Oops
/// leaves finding the page to the reader (KASAN, which we do not have, would name it).
fn report_free_page(addr: u64) {
    use crate::arch::aarch64::memory::{PAGE_END, PAGE_OFFSET};
    if !(PAGE_OFFSET..PAGE_END).contains(&addr) {
        return;
    }
    let Some(pa) = crate::mm::page_alloc::page_alloc() else {
        return;
    };
    let phys = crate::arch::aarch64::memory::__pa(crate::mm::VirtAddr(addr));
    // Memory only (a struct page exists); try_lock: the faulting code may hold memblock.
    let is_memory = crate::mm::memblock::MEMBLOCK
        .try_lock()
        .is_some_and(|mb| mb.is_memory(phys));
    if is_memory {
        pa.report_free_page_fault(phys.pfn_down());
    }
}

/// Linux: show_pte() — which half of the address space the fault is in, and for the
/// kernel half, which page tables were live.
fn show_pte(addr: u64) {
    use crate::arch::aarch64::memory::{PAGE_OFFSET, VA_BITS};
    use aarch64_cpu::registers::TTBR1_EL1;
    // Linux: is_ttbr0_addr() is below TASK_SIZE (2^VA_BITS); is_ttbr1_addr() from
    // PAGE_OFFSET.
    if addr < 1 << VA_BITS {
        pr_alert!("[{:016x}] user address but active_mm is swapper", addr);
    } else if addr < PAGE_OFFSET {
        pr_alert!(
            "[{:016x}] address between user and kernel address ranges",
            addr
        );
    } else {
        pr_alert!(
            "swapper pgtable: 4k pages, 48-bit VAs, pgdp={:016x}",
            TTBR1_EL1.get_baddr()
        );
    }
}
