//! In-kernel test support for the QEMU tests (`tests/*.rs`): each test is its own kernel;
//! its `kernel_init` runs checks with `check!` and ends with `finish()`, whose semihosting
//! exit status is the verdict. `qemu_test!` embeds the QEMU runs and expectations that
//! `scripts/qemu-runner` reads from the ELF.

use core::sync::atomic::{AtomicU32, Ordering};

static PASSED: AtomicU32 = AtomicU32::new(0);
static FAILED: AtomicU32 = AtomicU32::new(0);

/// Records one check; prints `ok - what` or `FAIL - what (at file:line)`.
pub fn check(ok: bool, what: core::fmt::Arguments, loc: &core::panic::Location) {
    if ok {
        PASSED.fetch_add(1, Ordering::Relaxed);
        pr_info!("ok - {}", what);
    } else {
        FAILED.fetch_add(1, Ordering::Relaxed);
        pr_err!("FAIL - {} (at {}:{})", what, loc.file(), loc.line());
    }
}

/// The checks that failed so far (a test may count its own failures, e.g. per run).
pub fn failed() -> u32 {
    FAILED.load(Ordering::Relaxed)
}

/// Prints the closing line (`N passed, M failed`) and exits QEMU: 0 if nothing failed.
#[cfg(target_os = "none")]
pub fn finish() -> ! {
    let (p, f) = (
        PASSED.load(Ordering::Relaxed),
        FAILED.load(Ordering::Relaxed),
    );
    pr_info!("ktest: {} passed, {} failed", p, f);
    crate::kernel::panic::machine_exit(if f == 0 && p > 0 { 0 } else { 1 })
}

/// `check!(cond, "what {}", x)`: one named check.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($arg:tt)*) => {
        $crate::kernel::ktest::check($cond, format_args!($($arg)*), core::panic::Location::caller())
    };
}

/// Embeds the test's QEMU runs in the ELF's `.qemu_test` section (not loaded). Lines:
/// `run <scripts/run options>` starts a boot; the `expect-exit N`, `expect-output TEXT`
/// and `expect-no-output TEXT` lines after it apply to that boot.
#[macro_export]
macro_rules! qemu_test {
    ($spec:literal) => {
        const _: () = {
            const SPEC: &[u8] = $spec.as_bytes();
            #[used]
            #[link_section = ".qemu_test"]
            static QEMU_TEST_SPEC: [u8; SPEC.len()] = {
                let mut a = [0u8; SPEC.len()];
                let mut i = 0;
                while i < SPEC.len() {
                    a[i] = SPEC[i];
                    i += 1;
                }
                a
            };
        };
    };
}
