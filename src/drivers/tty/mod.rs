//! TTY drivers: the PL011 console.
pub mod pl011;
