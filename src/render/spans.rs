//! Where each value of a JSON text stands, by JSON pointer (RFC 6901).
//!
//! serde_json keeps no positions, so findings about a parsed document ("unknown key
//! /containerDefinitions/0/imag") would have no line to show. This scanner walks text that
//! serde_json has already accepted and records, for every value, the byte offset of its key
//! (for object members) and of the value itself.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Offset of the member's key (including its opening quote), for object members.
    pub key: Option<usize>,
    /// Length of the key including quotes.
    pub key_len: usize,
    /// Offset of the value's first byte.
    pub value: usize,
}

/// Offsets of every value of a JSON text, by pointer ("" is the root).
#[derive(Debug, Default, Clone)]
pub struct Spans {
    map: HashMap<String, Span>,
}

impl Spans {
    /// Scans `text`. Text that is not valid JSON yields whatever was recorded before the fault.
    pub fn scan(text: &str) -> Spans {
        let mut s = Scanner {
            b: text.as_bytes(),
            i: 0,
            map: HashMap::new(),
        };
        s.ws();
        let _ = s.value(String::new(), None, 0);
        Spans { map: s.map }
    }

    pub fn get(&self, pointer: &str) -> Option<Span> {
        self.map.get(pointer).copied()
    }

    /// The span of `pointer` or, failing that, of its nearest recorded ancestor.
    pub fn nearest(&self, pointer: &str) -> Option<Span> {
        let mut p = pointer;
        loop {
            if let Some(s) = self.map.get(p) {
                return Some(*s);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return None,
            }
        }
    }
}

/// Escapes one reference token of a JSON pointer.
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    map: HashMap<String, Span>,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn value(&mut self, ptr: String, key: Option<(usize, usize)>, depth: usize) -> Option<()> {
        if depth > 512 {
            return None;
        }
        self.map.insert(
            ptr.clone(),
            Span {
                key: key.map(|k| k.0),
                key_len: key.map_or(0, |k| k.1),
                value: self.i,
            },
        );
        match *self.b.get(self.i)? {
            b'{' => {
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    let kstart = self.i;
                    let name = self.string()?;
                    let klen = self.i - kstart;
                    self.ws();
                    (self.b.get(self.i) == Some(&b':')).then_some(())?;
                    self.i += 1;
                    self.ws();
                    let child = format!("{ptr}/{}", escape_token(&name));
                    self.value(child, Some((kstart, klen)), depth + 1)?;
                    self.ws();
                    match *self.b.get(self.i)? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Some(());
                }
                let mut n = 0usize;
                loop {
                    self.ws();
                    self.value(format!("{ptr}/{n}"), None, depth + 1)?;
                    n += 1;
                    self.ws();
                    match *self.b.get(self.i)? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => self.string().map(|_| ()),
            _ => {
                while self.i < self.b.len()
                    && !matches!(
                        self.b[self.i],
                        b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'
                    )
                {
                    self.i += 1;
                }
                Some(())
            }
        }
    }

    /// Reads a string literal and returns its decoded value.
    fn string(&mut self) -> Option<String> {
        let start = self.i;
        (self.b.get(self.i) == Some(&b'"')).then_some(())?;
        self.i += 1;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    let raw = std::str::from_utf8(&self.b[start..self.i]).ok()?;
                    return serde_json::from_str(raw).ok();
                }
                _ => self.i += 1,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keys_and_values() {
        let text = r#"{"a": {"b/c": [1, {"d": "x\"y"}]}, "e": true}"#;
        let s = Spans::scan(text);
        let d = s.get("/a/b~1c/1/d").unwrap();
        assert_eq!(&text[d.key.unwrap()..d.key.unwrap() + d.key_len], "\"d\"");
        assert_eq!(&text[d.value..d.value + 6], "\"x\\\"y\"");
        assert_eq!(&text[s.get("/e").unwrap().value..][..4], "true");
        assert_eq!(s.get("").unwrap().value, 0);
        assert_eq!(
            s.nearest("/a/b~1c/7/zz").unwrap(),
            s.get("/a/b~1c").unwrap()
        );
    }
}
