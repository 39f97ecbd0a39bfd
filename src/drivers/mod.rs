//! Device drivers: the device-tree reader and the console.
pub mod of;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod tty;
