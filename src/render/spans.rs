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

/// Frame of the block-YAML scanner: a mapping key or a sequence item, at an indent.
struct Frame {
    indent: usize,
    ptr: String,
    is_item: bool,
    items: usize,
}

impl Spans {
    /// Scans block-style YAML. A heuristic, good for configs as people write them: mapping keys
    /// (plain or quoted) and `- ` sequence items are tracked by indentation; flow collections
    /// and block scalars are not entered (their values resolve to the enclosing key).
    pub fn scan_yaml(text: &str) -> Spans {
        let mut map = HashMap::new();
        let mut stack = vec![Frame {
            indent: 0,
            ptr: String::new(),
            is_item: false,
            items: 0,
        }];
        map.insert(
            String::new(),
            Span {
                key: None,
                key_len: 0,
                value: 0,
            },
        );
        let mut line_start = 0;
        // A key whose value starts on a later line: (pointer, indent of the key).
        let mut pending: Option<(String, usize)> = None;
        for raw in text.split_inclusive('\n') {
            let start = line_start;
            line_start += raw.len();
            let line = raw.trim_end_matches(['\n', '\r']);
            let body = line.trim_start_matches(' ');
            if body.is_empty() || body.starts_with('#') || body.starts_with("---") {
                continue;
            }
            let mut col = line.len() - body.len();
            if let Some((ptr, indent)) = pending.take()
                && (col > indent || body.starts_with('-'))
                && let Some(span) = map.get_mut(&ptr)
            {
                span.value = start + col;
            }
            let mut rest = body;
            // `- ` items open frames of their own; what follows on the line is scanned again.
            while rest == "-" || rest.starts_with("- ") {
                match sequence_item(&mut stack, &mut map, start, col, rest) {
                    Some((value_col, after)) => (col, rest) = (value_col, after),
                    None => break,
                }
            }
            if rest != "-"
                && !rest.starts_with("- ")
                && let Some(ptr) = mapping_key(&mut stack, &mut map, start, col, rest)
            {
                pending = Some((ptr, col));
            }
        }
        Spans { map }
    }
}

/// A `- ` sequence item at `col` of the line starting at byte `start`: closes the frames it
/// leaves, records the item's span and opens its frame. Hands on the column and text after the
/// dash, or `None` when the line ends there.
fn sequence_item<'a>(
    stack: &mut Vec<Frame>,
    map: &mut HashMap<String, Span>,
    start: usize,
    col: usize,
    rest: &'a str,
) -> Option<(usize, &'a str)> {
    while stack.len() > 1 {
        let top = &stack[stack.len() - 1];
        if top.indent > col || (top.indent == col && top.is_item) {
            stack.pop();
        } else {
            break;
        }
    }
    let parent = stack.last_mut()?;
    let ptr = format!("{}/{}", parent.ptr, parent.items);
    parent.items += 1;
    let after = rest[1..].trim_start_matches(' ');
    let value_col = col + (rest.len() - after.len());
    map.insert(
        ptr.clone(),
        Span {
            key: None,
            key_len: 0,
            value: start + value_col,
        },
    );
    stack.push(Frame {
        indent: col,
        ptr,
        is_item: true,
        items: 0,
    });
    (!after.is_empty()).then_some((value_col, after))
}

/// A mapping key at `col` of the line starting at byte `start`: records its span and opens its
/// frame. Hands on its pointer when its value starts on a later line.
fn mapping_key(
    stack: &mut Vec<Frame>,
    map: &mut HashMap<String, Span>,
    start: usize,
    col: usize,
    rest: &str,
) -> Option<String> {
    let (key, key_len, value_off) = yaml_key(rest)?;
    while stack.len() > 1 && stack[stack.len() - 1].indent >= col {
        stack.pop();
    }
    let parent = stack.last()?;
    let ptr = format!("{}/{}", parent.ptr, escape_token(&key));
    map.insert(
        ptr.clone(),
        Span {
            key: Some(start + col),
            key_len,
            value: start + col + value_off,
        },
    );
    stack.push(Frame {
        indent: col,
        ptr: ptr.clone(),
        is_item: false,
        items: 0,
    });
    (value_off == 0).then_some(ptr)
}

/// A mapping key at the start of `s`: (key, length of the key text, offset of the value or,
/// when the value is on later lines, of the key).
fn yaml_key(s: &str) -> Option<(String, usize, usize)> {
    let (key, key_len) = match s.chars().next()? {
        q @ ('"' | '\'') => {
            let end = s[1..].find(q)? + 2;
            (s[1..end - 1].to_string(), end)
        }
        _ => {
            let end = s.find(": ").or_else(|| s.strip_suffix(':').map(str::len))?;
            let k = s[..end].trim_end();
            if k.is_empty() || k.starts_with(['{', '[', '#', '&', '*', '!', '|', '>']) {
                return None;
            }
            (k.to_string(), k.len())
        }
    };
    let after = s[key_len..].trim_start_matches(' ');
    let after = after.strip_prefix(':')?;
    let value = after.trim_start_matches(' ');
    let value_off = if value.is_empty() || value.starts_with('#') {
        0
    } else {
        s.len() - value.len()
    };
    Some((key, key_len, value_off))
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

    #[test]
    fn yaml_keys_and_items() {
        let text = "region: us-east-1\nplugins:\n- name: tfstate\n  config:\n    url: \"s3://b/k\"\n- name: ssm\nignore:\n  tags:\n    - a\n    - 'b'\n\"quoted key\": 1\n";
        let s = Spans::scan_yaml(text);
        let at = |p: &str| {
            let sp = s.get(p).unwrap_or_else(|| panic!("no span for {p}"));
            &text[sp.value..]
        };
        assert!(at("/region").starts_with("us-east-1"));
        assert!(at("/plugins/0").starts_with("name: tfstate"));
        assert!(at("/plugins/0/config/url").starts_with("\"s3://b/k\""));
        assert!(at("/plugins/1/name").starts_with("ssm"));
        assert!(at("/ignore/tags/1").starts_with("'b'"));
        assert!(at("/quoted key").starts_with('1'));
        assert!(at("/plugins").starts_with("- name: tfstate"));
        assert!(at("/plugins/0/config").starts_with("url:"));
        let k = s.get("/plugins/1/name").unwrap();
        assert_eq!(&text[k.key.unwrap()..k.key.unwrap() + k.key_len], "name");
    }
}
