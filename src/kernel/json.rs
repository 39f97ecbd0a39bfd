//! A small streaming JSON writer over `fmt::Write`, for reports written to the host (the
//! memory report of `mm_report=`). Linux has no equivalent. It keeps no tree: values go out
//! as they are given, with commas and string escapes handled here; the caller nests
//! objects and arrays properly (a debug assertion checks the depth).

use core::fmt::{self, Write};

/// The deepest nesting the writer tracks (one bit per level says "a value came already").
const MAX_DEPTH: u32 = 64;

/// Writes JSON to `W`. Keys and values are separated and escaped here.
pub struct JsonWriter<'w, W: Write + ?Sized> {
    out: &'w mut W,
    depth: u32,
    /// Bit d: the container at depth d already holds a value (the next needs a comma).
    nonempty: u64,
    /// A key was just written: the next value follows it without a comma.
    after_key: bool,
}

impl<'w, W: Write + ?Sized> JsonWriter<'w, W> {
    pub fn new(out: &'w mut W) -> Self {
        Self {
            out,
            depth: 0,
            nonempty: 0,
            after_key: false,
        }
    }

    /// The separator before a value (or a key) in the current container.
    fn sep(&mut self) -> fmt::Result {
        if self.after_key {
            self.after_key = false;
            return Ok(());
        }
        if self.depth > 0 {
            let bit = 1u64 << (self.depth - 1);
            if self.nonempty & bit != 0 {
                self.out.write_char(',')?;
            }
            self.nonempty |= bit;
        }
        Ok(())
    }

    fn open(&mut self, c: char) -> fmt::Result {
        self.sep()?;
        debug_assert!(self.depth < MAX_DEPTH, "JSON nested too deeply");
        self.depth += 1;
        self.nonempty &= !(1u64 << (self.depth - 1));
        self.out.write_char(c)
    }

    fn close(&mut self, c: char) -> fmt::Result {
        debug_assert!(self.depth > 0 && !self.after_key, "unbalanced JSON");
        self.depth -= 1;
        self.out.write_char(c)
    }

    pub fn begin_object(&mut self) -> fmt::Result {
        self.open('{')
    }

    pub fn end_object(&mut self) -> fmt::Result {
        self.close('}')
    }

    pub fn begin_array(&mut self) -> fmt::Result {
        self.open('[')
    }

    pub fn end_array(&mut self) -> fmt::Result {
        self.close(']')
    }

    /// An object key; the next call writes its value.
    pub fn key(&mut self, k: &str) -> fmt::Result {
        self.sep()?;
        self.escaped(k)?;
        self.out.write_char(':')?;
        self.after_key = true;
        Ok(())
    }

    fn escaped(&mut self, s: &str) -> fmt::Result {
        self.out.write_char('"')?;
        for c in s.chars() {
            match c {
                '"' => self.out.write_str("\\\"")?,
                '\\' => self.out.write_str("\\\\")?,
                '\n' => self.out.write_str("\\n")?,
                '\r' => self.out.write_str("\\r")?,
                '\t' => self.out.write_str("\\t")?,
                c if (c as u32) < 0x20 => write!(self.out, "\\u{:04x}", c as u32)?,
                c => self.out.write_char(c)?,
            }
        }
        self.out.write_char('"')
    }

    pub fn string(&mut self, s: &str) -> fmt::Result {
        self.sep()?;
        self.escaped(s)
    }

    pub fn uint(&mut self, v: u64) -> fmt::Result {
        self.sep()?;
        write!(self.out, "{}", v)
    }

    pub fn int(&mut self, v: i64) -> fmt::Result {
        self.sep()?;
        write!(self.out, "{}", v)
    }

    pub fn boolean(&mut self, v: bool) -> fmt::Result {
        self.sep()?;
        self.out.write_str(if v { "true" } else { "false" })
    }

    /// `"k": "v"`.
    pub fn field_str(&mut self, k: &str, v: &str) -> fmt::Result {
        self.key(k)?;
        self.string(v)
    }

    /// `"k": v`.
    pub fn field_uint(&mut self, k: &str, v: u64) -> fmt::Result {
        self.key(k)?;
        self.uint(v)
    }

    /// `"k": v`.
    pub fn field_int(&mut self, k: &str, v: i64) -> fmt::Result {
        self.key(k)?;
        self.int(v)
    }

    /// `"k": true|false`.
    pub fn field_bool(&mut self, k: &str, v: bool) -> fmt::Result {
        self.key(k)?;
        self.boolean(v)
    }

    /// Is every container closed?
    pub fn is_complete(&self) -> bool {
        self.depth == 0 && !self.after_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::String;

    #[test]
    fn nesting_commas_and_escapes() {
        let mut s = String::new();
        let mut j = JsonWriter::new(&mut s);
        j.begin_object().unwrap();
        j.field_str("a\"b", "x\\y\n\u{1}").unwrap();
        j.key("list").unwrap();
        j.begin_array().unwrap();
        j.uint(1).unwrap();
        j.int(-2).unwrap();
        j.begin_object().unwrap();
        j.end_object().unwrap();
        j.begin_array().unwrap();
        j.end_array().unwrap();
        j.boolean(true).unwrap();
        j.end_array().unwrap();
        j.field_uint("n", 18446744073709551615).unwrap();
        j.end_object().unwrap();
        assert!(j.is_complete());
        assert_eq!(
            s,
            r#"{"a\"b":"x\\y\n\u0001","list":[1,-2,{},[],true],"n":18446744073709551615}"#
        );
    }

    #[test]
    fn incomplete_is_seen() {
        let mut s = String::new();
        let mut j = JsonWriter::new(&mut s);
        j.begin_array().unwrap();
        assert!(!j.is_complete());
        j.end_array().unwrap();
        assert!(j.is_complete());
    }
}
