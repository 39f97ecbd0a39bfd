//! The end of boot: what the kernel does once start_kernel's stages are done.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::kernel::panic::machine_exit;
use crate::kernel::params::SetupResult;

static BATCH: AtomicBool = AtomicBool::new(false);

/// `batch`: power off at the end of boot instead of idling (what `scripts/run --batch`
/// passes). Our own parameter; Linux has no equivalent.
fn batch_setup(_val: Option<&str>) -> SetupResult {
    BATCH.store(true, Ordering::Relaxed);
    Ok(())
}
early_param!("batch", batch_setup);

pub fn is_batch() -> bool {
    BATCH.load(Ordering::Relaxed)
}

/// How the boot ends.
pub enum BootEnd {
    /// Power off with `batch`, otherwise idle.
    PowerOffIfBatch,
}

/// Linux: kernel_init()'s end, for a kernel without user space: report and stop or idle.
pub fn boot_finished(how: BootEnd) -> ! {
    crate::kernel::stages::print_stage_costs();
    pr_info!("mm: init complete");
    match how {
        BootEnd::PowerOffIfBatch if is_batch() => {
            pr_info!("reboot: Power down");
            crate::arch::aarch64::kernel::process::machine_power_off();
            // No PSCI conduit: semihosting, else halt.
            machine_exit(0)
        }
        BootEnd::PowerOffIfBatch => {
            pr_info!("mm: boot done; the monitor runs on the console (Ctrl-A X quits QEMU)");
            crate::init::monitor::run()
        }
    }
}
