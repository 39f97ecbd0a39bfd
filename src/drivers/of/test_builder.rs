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
