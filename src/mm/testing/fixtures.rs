//! The device trees QEMU generated for the reference machines (tests/fixtures/dtb, dumped
//! with `-machine dumpdtb`), and the crafted `/reserved-memory` tree, for host tests.

/// `-m 128M -smp 1`.
pub const A_128M: &[u8] = include_bytes!("../../../tests/fixtures/dtb/a_128M_smp1.dtb");
/// `-m 4G -smp 2`.
pub const C_4G: &[u8] = include_bytes!("../../../tests/fixtures/dtb/c_4G_smp2.dtb");
/// `-m 4G -smp 2`, two NUMA nodes.
pub const F_NUMA2: &[u8] = include_bytes!("../../../tests/fixtures/dtb/f_4G_numa2.dtb");
/// A crafted tree with `/memreserve/` entries and a `/reserved-memory` node.
pub const G_RSV: &[u8] = include_bytes!("../../../tests/fixtures/dtb/g_reserved_mem.dtb");
