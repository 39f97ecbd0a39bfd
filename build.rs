//! Applies `linker.ld` to the kernel and to every QEMU test binary (bare-metal target only).
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rerun-if-changed=linker.ld");
    println!("cargo:rerun-if-changed=src/arch/aarch64/head.S");
    println!("cargo:rerun-if-changed=src/arch/aarch64/kernel/entry.S");
    if target == "aarch64-unknown-none" {
        println!("cargo:rustc-link-arg=-T{dir}/linker.ld");
        println!("cargo:rustc-link-arg=--no-relax");
    }
}
