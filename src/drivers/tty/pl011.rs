//! The Arm PL011 UART as the boot console (Linux: drivers/tty/serial/amba-pl011.c, its
//! `pl011_early_write` earlycon). Like Linux's earlycon it does not program the UART: the
//! firmware (QEMU) left it enabled, and a boot console must work before anything else does.
//!
//! The UART's physical base comes from `earlycon=pl011,<addr>`, else `/chosen/stdout-path`,
//! else QEMU virt's 0x0900_0000. The caller maps it (the arch, through its fixmap slot
//! FIX_EARLYCON_MEM_BASE with device attributes: Linux's earlycon_map()) and hands this
//! driver the virtual address; the driver names nothing of the architecture.

use core::sync::atomic::{AtomicU64, Ordering};

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use crate::kernel::printk::{self, Console};
use crate::mm::PhysAddr;

/// QEMU virt's UART0, the fallback when the device tree names none.
pub const DEFAULT_PL011_BASE: u64 = 0x0900_0000;

register_bitfields! {u32,
    /// Flag register.
    FR [
        TXFE OFFSET(7) NUMBITS(1) [],
        RXFF OFFSET(6) NUMBITS(1) [],
        TXFF OFFSET(5) NUMBITS(1) [],
        RXFE OFFSET(4) NUMBITS(1) [],
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    /// Control register.
    CR [
        RXE OFFSET(9) NUMBITS(1) [],
        TXE OFFSET(8) NUMBITS(1) [],
        UARTEN OFFSET(0) NUMBITS(1) []
    ]
}

register_structs! {
    #[allow(non_snake_case)]
    pub RegisterBlock {
        (0x00 => DR: ReadWrite<u32>),
        (0x04 => _reserved0),
        (0x18 => FR: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x30 => CR: ReadWrite<u32, CR::Register>),
        (0x34 => _reserved2),
        (0x44 => ICR: WriteOnly<u32>),
        (0x48 => @END),
    }
}

/// The boot console. `base` is the UART's virtual address, 0 until mapped.
pub struct Pl011 {
    base: AtomicU64,
    phys: AtomicU64,
}

static PL011: Pl011 = Pl011 {
    base: AtomicU64::new(0),
    phys: AtomicU64::new(0),
};

impl Pl011 {
    fn regs(&self) -> Option<&RegisterBlock> {
        let base = self.base.load(Ordering::Acquire);
        // SAFETY: a non-zero base is the fixmap (or later ioremap) mapping of the UART's
        // registers with device attributes, valid for the kernel's lifetime.
        (base != 0).then(|| unsafe { &*(base as *const RegisterBlock) })
    }

    fn putc(regs: &RegisterBlock, c: u8) {
        // Bounded wait: a stuck FIFO must not hang the kernel in printk.
        for _ in 0..1_000_000 {
            if !regs.FR.is_set(FR::TXFF) {
                break;
            }
            core::hint::spin_loop();
        }
        regs.DR.set(c as u32);
    }

    /// Linux: pl011_get_poll_char() — a received byte, if the receive FIFO has one (the
    /// kernel monitor polls it; no receive interrupt is used).
    pub fn getc(&self) -> Option<u8> {
        let regs = self.regs()?;
        (!regs.FR.is_set(FR::RXFE)).then(|| (regs.DR.get() & 0xff) as u8)
    }

    /// Writes bytes as they are (no `\n` translation), for the monitor's line editor.
    pub fn write_raw(&self, bytes: &[u8]) {
        if let Some(regs) = self.regs() {
            for &b in bytes {
                Self::putc(regs, b);
            }
        }
    }

    /// The physical base of the UART in use.
    pub fn phys_base(&self) -> PhysAddr {
        PhysAddr(self.phys.load(Ordering::Relaxed))
    }
}

impl Console for Pl011 {
    fn name(&self) -> &'static str {
        "pl11"
    }

    /// Linux: pl011_early_write() — with the `\n` → `\r\n` of uart_console_write().
    fn write(&self, s: &str) {
        if let Some(regs) = self.regs() {
            for b in s.bytes() {
                if b == b'\n' {
                    Self::putc(regs, b'\r');
                }
                Self::putc(regs, b);
            }
        }
    }
}

/// Linux: setup_earlycon() + register_console() — the UART at `phys`, mapped with device
/// attributes at `virt` (the caller's earlycon_map()), becomes the console; the log so far
/// is replayed on it.
pub fn earlycon_setup(phys: PhysAddr, virt: u64, options: &str) {
    PL011.phys.store(phys.as_u64(), Ordering::Relaxed);
    PL011.base.store(virt, Ordering::Release);
    pr_info!(
        "earlycon: {} at MMIO {:#018x} (options '{}')",
        PL011.name(),
        phys.as_u64(),
        options
    );
    printk::register_console(&PL011);
    pr_info!("printk: bootconsole [{}] enabled", PL011.name());
}

/// The registered PL011, for the tests.
pub fn console() -> &'static Pl011 {
    &PL011
}
