//! Where each value of a JSON document stands (line and column), keyed by the same path
//! syntax serde_path_to_error prints (`backends[0].servers[1].addr`), so semantic errors
//! found after parsing can point at the text as precisely as syntax errors do.

use std::collections::HashMap;

/// Line and column (both from 1) of the first character of every value in a document.
#[derive(Debug, Default)]
pub struct SpanIndex {
    positions: HashMap<String, (usize, usize)>,
}

impl SpanIndex {
    /// Indexes a document. Meant for text serde_json already accepted; on malformed text it
    /// stops early and simply knows fewer positions.
    pub fn new(text: &str) -> Self {
        let mut scanner = Scanner {
            bytes: text.as_bytes(),
            pos: 0,
            line: 1,
            line_start: 0,
            index: SpanIndex::default(),
        };
        let mut path = String::new();
        scanner.value(&mut path);
        scanner.index
    }

    /// Position of the value at `path`, or of its closest indexed ancestor.
    pub fn locate(&self, path: &str) -> Option<(usize, usize)> {
        let mut path = path;
        loop {
            if let Some(pos) = self.positions.get(path) {
                return Some(*pos);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    line_start: usize,
    index: SpanIndex,
}

impl Scanner<'_> {
    fn skip_ws(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    self.line_start = self.pos;
                }
                b' ' | b'\t' | b'\r' => self.pos += 1,
                _ => break,
            }
        }
    }

    fn column(&self) -> usize {
        // Columns count characters, as serde_json's do.
        let line = &self.bytes[self.line_start..self.pos];
        line.iter().filter(|&&b| b & 0xC0 != 0x80).count() + 1
    }

    fn value(&mut self, path: &mut String) -> Option<()> {
        self.skip_ws();
        let at = (self.line, self.column());
        self.index.positions.insert(path.clone(), at);
        match *self.bytes.get(self.pos)? {
            b'{' => self.object(path),
            b'[' => self.array(path),
            b'"' => self.string().map(drop),
            _ => {
                while let Some(&b) = self.bytes.get(self.pos) {
                    if matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace() {
                        break;
                    }
                    self.pos += 1;
                }
                Some(())
            }
        }
    }

    fn object(&mut self, path: &mut String) -> Option<()> {
        self.pos += 1;
        loop {
            self.skip_ws();
            match *self.bytes.get(self.pos)? {
                b'}' => {
                    self.pos += 1;
                    return Some(());
                }
                b',' => self.pos += 1,
                b'"' => {
                    let key = self.string()?;
                    self.skip_ws();
                    if self.bytes.get(self.pos) != Some(&b':') {
                        return None;
                    }
                    self.pos += 1;
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&key);
                    self.value(path)?;
                    path.truncate(len);
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, path: &mut String) -> Option<()> {
        self.pos += 1;
        let mut i = 0;
        loop {
            self.skip_ws();
            match *self.bytes.get(self.pos)? {
                b']' => {
                    self.pos += 1;
                    return Some(());
                }
                b',' => self.pos += 1,
                _ => {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.value(path)?;
                    path.truncate(len);
                    i += 1;
                }
            }
        }
    }

    /// Reads a string starting at its opening quote; returns its raw contents (escapes
    /// are kept as written: config keys never need them).
    fn string(&mut self) -> Option<String> {
        let start = self.pos + 1;
        let mut i = start;
        loop {
            match *self.bytes.get(i)? {
                b'\\' => i += 2,
                b'"' => break,
                _ => i += 1,
            }
        }
        self.pos = i + 1;
        Some(String::from_utf8_lossy(&self.bytes[start..i]).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_nested_values() {
        let text = "{\n  \"a\": [1, {\"b\": \"x\"}],\n  \"c\": { \"d\": true }\n}";
        let idx = SpanIndex::new(text);
        assert_eq!(idx.locate("a"), Some((2, 8)));
        assert_eq!(idx.locate("a[0]"), Some((2, 9)));
        assert_eq!(idx.locate("a[1].b"), Some((2, 18)));
        assert_eq!(idx.locate("c.d"), Some((3, 15)));
        // Unknown leaf falls back to the closest ancestor.
        assert_eq!(idx.locate("c.zz"), Some((3, 8)));
        assert_eq!(idx.locate("a[7]"), Some((2, 8)));
    }

    #[test]
    fn malformed_text_does_not_panic() {
        for text in ["", "{", "{\"a\"", "[1,", "{\"a\":\"\\", "\"", "{\"a\" 1}"] {
            let _ = SpanIndex::new(text).locate("a");
        }
    }
}
