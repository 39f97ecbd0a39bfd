//! The kernel binary. All of the kernel is in the library; this file only says what
//! happens at the end of boot (Linux: kernel_init() running /sbin/init).
#![no_std]
#![no_main]

use arm64_mm::init::exit::{boot_finished, BootEnd};

/// Linux: kernel_init(). With `batch` on the command line the machine powers off (status
/// 0); otherwise the `mm> ` monitor runs on the console (src/init/monitor.rs), so the user
/// can look around (`poweroff`, or Ctrl-A X, leaves QEMU).
#[no_mangle]
pub fn kernel_init() -> ! {
    boot_finished(BootEnd::PowerOffIfBatch)
}
