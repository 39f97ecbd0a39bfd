//! A tiny flattened-device-tree writer for host tests: crafted trees read better next to the
//! test that uses them than as binary fixtures, and a test can also write malformed ones.

/// Big-endian cells as bytes.
pub fn cells(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|c| c.to_be_bytes()).collect()
}

/// Builds a version-17 blob: header, /memreserve/ list, structure block, strings block.
#[derive(Default)]
pub struct FdtBuilder {
    structs: Vec<u8>,
    strings: Vec<u8>,
    rsv: Vec<(u64, u64)>,
}

impl FdtBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    fn word(&mut self, w: u32) -> &mut Self {
        self.structs.extend_from_slice(&w.to_be_bytes());
        self
    }

    fn pad(&mut self) {
        while !self.structs.len().is_multiple_of(4) {
            self.structs.push(0);
        }
    }

    pub fn memreserve(&mut self, base: u64, size: u64) -> &mut Self {
        self.rsv.push((base, size));
        self
    }

    pub fn begin(&mut self, name: &str) -> &mut Self {
        self.word(1);
        self.structs.extend_from_slice(name.as_bytes());
        self.structs.push(0);
        self.pad();
        self
    }

    pub fn end(&mut self) -> &mut Self {
        self.word(2)
    }

    pub fn nop(&mut self) -> &mut Self {
        self.word(4)
    }

    /// A raw token word (for malformed blobs).
    pub fn raw(&mut self, w: u32) -> &mut Self {
        self.word(w)
    }

    fn name_off(&mut self, name: &str) -> u32 {
        let mut at = 0;
        while at < self.strings.len() {
            let end = at + self.strings[at..].iter().position(|&b| b == 0).unwrap();
            if &self.strings[at..end] == name.as_bytes() {
                return at as u32;
            }
            at = end + 1;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        off
    }

    pub fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let off = self.name_off(name);
        self.word(3).word(value.len() as u32).word(off);
        self.structs.extend_from_slice(value);
        self.pad();
        self
    }

    pub fn prop_u32s(&mut self, name: &str, v: &[u32]) -> &mut Self {
        self.prop(name, &cells(v))
    }

    /// `#address-cells` and `#size-cells` of the node being written.
    pub fn addr_size_cells(&mut self, address: u32, size: u32) -> &mut Self {
        self.prop_u32s("#address-cells", &[address])
            .prop_u32s("#size-cells", &[size])
    }

    pub fn prop_str(&mut self, name: &str, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.prop(name, &v)
    }

    /// Appends FDT_END and lays out the blob.
    pub fn finish(&mut self) -> Vec<u8> {
        self.word(9);
        let off_rsv = 40usize;
        let off_struct = off_rsv + 16 * (self.rsv.len() + 1);
        let off_strings = off_struct + self.structs.len();
        let total = off_strings + self.strings.len();
        let mut b = Vec::with_capacity(total);
        for w in [
            0xd00d_feed,
            total as u32,
            off_struct as u32,
            off_strings as u32,
            off_rsv as u32,
            17,
            16,
            0,
            self.strings.len() as u32,
            self.structs.len() as u32,
        ] {
            b.extend_from_slice(&u32::to_be_bytes(w));
        }
        for &(a, s) in self.rsv.iter().chain([(0, 0)].iter()) {
            b.extend_from_slice(&a.to_be_bytes());
            b.extend_from_slice(&s.to_be_bytes());
        }
        b.extend_from_slice(&self.structs);
        b.extend_from_slice(&self.strings);
        b
    }
}

/// A QEMU-virt-like tree for NUMA tests: memory banks (`Some(nid)`: with `numa-node-id`),
/// CPUs (likewise), and a `/distance-map` if `dist` (triples) is not empty.
pub fn numa_machine_fdt(
    mems: &[(u64, u64, Option<u32>)],
    cpus: &[Option<u32>],
    dist: &[u32],
) -> Vec<u8> {
    let mut b = FdtBuilder::new();
    b.begin("").addr_size_cells(2, 2);
    for &(base, size, nid) in mems {
        b.begin(&format!("memory@{base:x}"))
            .prop_str("device_type", "memory")
            .prop_u32s(
                "reg",
                &[
                    (base >> 32) as u32,
                    base as u32,
                    (size >> 32) as u32,
                    size as u32,
                ],
            );
        if let Some(n) = nid {
            b.prop_u32s("numa-node-id", &[n]);
        }
        b.end();
    }
    b.begin("cpus").addr_size_cells(1, 0);
    for (i, nid) in cpus.iter().enumerate() {
        b.begin(&format!("cpu@{i}"))
            .prop_str("device_type", "cpu")
            .prop_u32s("reg", &[i as u32]);
        if let Some(n) = nid {
            b.prop_u32s("numa-node-id", &[*n]);
        }
        b.end();
    }
    b.end();
    if !dist.is_empty() {
        b.begin("distance-map")
            .prop_str("compatible", "numa-distance-map-v1")
            .prop_u32s("distance-matrix", dist)
            .end();
    }
    b.end();
    b.finish()
}

// ---------------------------------------------------------------------------------------------
// Helpers the device-tree tests share.

use super::fdt::MemoryScanItem;
use super::libfdt::{Diagnostic, Fdt};

/// The memory ranges of `fdt` as (path, base, size, hotpluggable, nid).
pub fn ranges(fdt: &Fdt) -> Vec<(String, u64, u64, bool, Option<u32>)> {
    fdt.memory_ranges()
        .map(|r| {
            (
                r.node.path().to_string(),
                r.base.0,
                r.size,
                r.hotpluggable,
                r.nid,
            )
        })
        .collect()
}

/// The memory scan's diagnostics.
pub fn diags<'a>(fdt: &Fdt<'a>) -> Vec<Diagnostic<'a>> {
    fdt.memory_scan()
        .filter_map(|i| match i {
            MemoryScanItem::Diag(d) => Some(d),
            MemoryScanItem::Range(_) => None,
        })
        .collect()
}

/// A root with the given cells and whatever `body` adds.
pub fn tree(addr: u32, size: u32, body: impl FnOnce(&mut FdtBuilder)) -> Vec<u8> {
    let mut b = FdtBuilder::new();
    b.begin("").addr_size_cells(addr, size);
    body(&mut b);
    b.end();
    b.finish()
}

/// A `device_type = "memory"` node with this `reg`.
pub fn mem_node(b: &mut FdtBuilder, name: &str, reg: &[u32]) {
    b.begin(name)
        .prop_str("device_type", "memory")
        .prop_u32s("reg", reg)
        .end();
}

use super::base::{for_each_of_cpu_node, of_get_cpu_hwid};
use super::of_numa::{of_node_to_nid, of_numa_init};
use crate::include::numa::NUMA_NO_NODE;
use crate::mm::memblock::Memblock;
use crate::mm::numa::{NumaError, NumaInfo};

/// The `numa-node-id` of each CPU node with a readable id and node id, in `/cpus` order:
/// what the arch's probing keeps for crafted trees (whose ids are valid MPIDRs).
fn cpu_nids<'a>(fdt: &Fdt<'a>) -> impl Iterator<Item = Option<u32>> + 'a {
    for_each_of_cpu_node(fdt)
        .filter(|c| of_get_cpu_hwid(c).is_ok())
        .filter_map(|c| of_node_to_nid(&c.node).ok())
}

/// of_numa_init() over `fdt`, as the arch hands it to arch_numa_init().
pub fn of_numa_init_fn<'a>(
    fdt: &'a Fdt<'a>,
) -> impl FnMut(&mut NumaInfo, &mut Memblock) -> Result<(), NumaError> + 'a {
    move |numa, mb| of_numa_init(numa, fdt, cpu_nids(fdt), mb)
}

/// The arch's smp_init_cpus(): logical CPU n on the node of the n-th CPU node.
pub fn of_map_cpus_to_nodes(numa: &mut NumaInfo, fdt: &Fdt) {
    for (cpu, nid) in cpu_nids(fdt).enumerate() {
        numa.early_map_cpu_to_node(cpu, nid.map_or(NUMA_NO_NODE, |n| n as i32));
    }
}
