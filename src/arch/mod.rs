//! Architecture code. Only arm64 exists; generic code names what it needs, arm64 supplies it.
pub mod aarch64;
