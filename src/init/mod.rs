//! Kernel initialisation (Linux: init/).
pub mod exit;
pub mod main;
pub mod monitor;
pub mod report;
