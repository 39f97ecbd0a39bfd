//! Simulated RAM for the host tests of numa.rs, free_area_init.rs and zonelist.rs:
//! host buffers standing in for a few windows of physical memory (where memblock's
//! top-down allocations land), found by a plain `fn` as memblock's `__va()` hook wants.
use crate::mm::memblock::Memblock;
use crate::mm::PhysAddr;
use std::cell::RefCell;

std::thread_local! {
    static WINDOWS: RefCell<Vec<(u64, usize, usize)>> = const { RefCell::new(Vec::new()) };
}

/// Linux's __va() over this thread's windows.
pub fn test_va(pa: PhysAddr) -> *mut u8 {
    WINDOWS.with(|w| {
        for &(base, host, size) in w.borrow().iter() {
            if pa.0 >= base && pa.0 - base < size as u64 {
                return (host + (pa.0 - base) as usize) as *mut u8;
            }
        }
        panic!("phys {:#x} is outside the simulated windows", pa.0)
    })
}

/// Backs physical `[base, base + size)` with leaked host memory (pg_data_t must live for
/// 'static), filled with 0xaa so missing zeroing shows.
pub fn add_window(base: u64, size: usize) {
    let mem: &'static mut [u8] = Vec::leak(vec![0xaau8; size + 4096]);
    let host = (mem.as_mut_ptr() as usize + 4095) & !4095;
    WINDOWS.with(|w| w.borrow_mut().push((base, host, size)));
}

/// A memblock over `ranges` (`(base, size, nid)`; `nid` None = memblock_add()), each
/// range's top `window` bytes backed by host memory.
pub fn memblock_with(ranges: &[(u64, u64, Option<i32>)], window: u64) -> Memblock {
    WINDOWS.with(|w| w.borrow_mut().clear());
    let mut mb = Memblock::new();
    // SAFETY: the hook maps only the windows below, linearly, page-aligned and unused;
    // tests reserve nothing else, and only allocate at the tops of the ranges.
    unsafe { mb.set_phys_to_virt(test_va) };
    for &(base, size, nid) in ranges {
        match nid {
            Some(n) => mb
                .add_node(
                    PhysAddr(base),
                    size,
                    n,
                    crate::mm::memblock::MemblockFlags::NONE,
                )
                .unwrap(),
            None => mb.add(PhysAddr(base), size).unwrap(),
        }
        let w = window.min(size);
        add_window(base + size - w, w as usize);
    }
    mb
}
