//! Open Firmware / device tree (Linux: drivers/of).
pub mod fdt;
pub mod reserved_mem;

#[cfg(test)]
mod scan_tests;
#[cfg(test)]
pub(crate) mod test_builder;
