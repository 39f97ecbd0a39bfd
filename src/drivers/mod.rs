//! Device drivers: the device-tree reader and the console.
pub mod of;
#[cfg(target_os = "none")]
pub mod tty;
