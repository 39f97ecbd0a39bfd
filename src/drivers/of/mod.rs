//! Open Firmware / device tree (Linux: drivers/of).
pub mod fdt;
