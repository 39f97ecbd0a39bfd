//! Host unit tests of `src/kernel/kallsyms.rs` (`cargo hosttest`).

use super::*;

fn table(syms: &[(u64, u32, &str)]) -> Vec<u8> {
    let mut b = MAGIC.to_vec();
    b.extend((syms.len() as u32).to_le_bytes());
    let mut names: Vec<u8> = Vec::new();
    for (addr, size, name) in syms {
        b.extend(addr.to_le_bytes());
        b.extend(size.to_le_bytes());
        b.extend((names.len() as u32).to_le_bytes());
        names.extend(name.as_bytes());
    }
    b.extend(names);
    b.extend([0u8; 16]);
    b
}

#[test]
fn lookup_finds_containing_function() {
    let blob = table(&[
        (0x1000, 0x20, "a"),
        (0x1020, 0x10, "bb"),
        (0x2000, 0x8, "ccc"),
    ]);
    let t = SymbolTable::new(&blob).unwrap();
    assert_eq!(t.lookup(0x1024).unwrap().to_string(), "bb+0x4/0x10");
    assert_eq!(t.lookup(0x1000).unwrap().name, "a");
    assert_eq!(t.lookup(0x2004).unwrap().name, "ccc");
    assert!(t.lookup(0xfff).is_none());
    assert!(t.lookup(0x1800).is_none());
    assert!(t.lookup(0x2008).is_none());
    assert_eq!(t.find("bb"), Some(0x1020));
}

#[test]
fn rejects_missing_or_truncated_tables() {
    assert!(SymbolTable::new(&[0u8; 64]).is_none());
    let mut blob = table(&[(0x1000, 0x20, "a")]);
    blob[4] = 0xff;
    assert!(SymbolTable::new(&blob).is_none());
}
