//! The awsQuery wire format, as spoken by ELBv2.
//!
//! Receives the raw form-urlencoded request body (`Action=...&Version=...&X.member.1=...`) and
//! turns it into a flat, ordered key/value map with helpers to read `X.member.N` lists and nested
//! structures. Hands back XML documents: the `<ActionResponse>` envelope around a result, and
//! the `<ErrorResponse>` document for an [`ApiError`]. A tiny XML writer with escaping builds
//! the result bodies.

use std::collections::BTreeMap;

use crate::api::ApiError;

/// The XML namespace of ELBv2 responses.
pub const ELBV2_NAMESPACE: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";

/// Parses a form-urlencoded body into a map. Keys and values are percent-decoded and `+` means a
/// space. A key without `=` maps to the empty string; a repeated key keeps its last value.
pub fn parse_form(body: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pair in body.split('&') {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = match pair.split_once('=') {
            Some((k, v)) => (k, v),
            None => (pair, ""),
        };
        out.insert(decode_component(key), decode_component(value));
    }
    out
}

/// Decodes one form component: `+` is a space, `%XX` is a byte; malformed escapes are kept
/// literally; invalid UTF-8 is replaced rather than rejected.
fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The indices `N` present under `prefix.member.N` (as a plain value or as the start of a nested
/// structure `prefix.member.N.Field`), in ascending numeric order.
pub fn member_indices(params: &BTreeMap<String, String>, prefix: &str) -> Vec<u32> {
    let head = format!("{prefix}.member.");
    let mut indices: Vec<u32> = params
        .keys()
        .filter_map(|key| key.strip_prefix(&head))
        .filter_map(|rest| {
            let digits = rest.split('.').next().unwrap_or(rest);
            digits.parse::<u32>().ok()
        })
        .collect();
    indices.sort_unstable();
    indices.dedup();
    indices
}

/// The values of a list of scalars `prefix.member.N`, ordered by `N`.
pub fn members(params: &BTreeMap<String, String>, prefix: &str) -> Vec<String> {
    member_indices(params, prefix)
        .into_iter()
        .filter_map(|n| params.get(&format!("{prefix}.member.{n}")).cloned())
        .collect()
}

/// The key prefixes of a list of structures, `prefix.member.N`, ordered by `N`; read the fields
/// with `format!("{item}.Field")`.
pub fn member_prefixes(params: &BTreeMap<String, String>, prefix: &str) -> Vec<String> {
    member_indices(params, prefix)
        .into_iter()
        .map(|n| format!("{prefix}.member.{n}"))
        .collect()
}

/// Whether any key is `prefix` itself or lies under `prefix.` (an empty list is sent as a bare
/// `prefix=`).
pub fn is_present(params: &BTreeMap<String, String>, prefix: &str) -> bool {
    let nested = format!("{prefix}.");
    params
        .keys()
        .any(|key| key == prefix || key.starts_with(&nested))
}

/// A required parameter, or a `ValidationError` naming it.
pub fn required<'a>(params: &'a BTreeMap<String, String>, key: &str) -> Result<&'a str, ApiError> {
    match params.get(key) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(ApiError::client(
            "ValidationError",
            format!(
                "1 validation error detected: Value null at '{key}' failed to satisfy constraint: Member must not be null"
            ),
        )),
    }
}

/// An optional integer parameter; a value that is not an integer is a `ValidationError`.
pub fn optional_i32(params: &BTreeMap<String, String>, key: &str) -> Result<Option<i32>, ApiError> {
    match params.get(key) {
        None => Ok(None),
        Some(text) => text.trim().parse::<i32>().map(Some).map_err(|_| {
            ApiError::client(
                "ValidationError",
                format!("Value '{text}' at '{key}' failed to satisfy constraint: Member must be an integer"),
            )
        }),
    }
}

/// Escapes text for an XML element body or attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            other => out.push(other),
        }
    }
    out
}

/// A minimal XML writer: elements are opened, filled and closed in order by the caller.
#[derive(Debug, Default, Clone)]
pub struct XmlWriter {
    buf: String,
}

impl XmlWriter {
    pub fn new() -> Self {
        XmlWriter::default()
    }

    /// Writes `<tag>`.
    pub fn open(&mut self, tag: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    /// Writes `</tag>`.
    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.buf.push_str("</");
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    /// Writes `<tag>text</tag>` with the text escaped.
    pub fn text(&mut self, tag: &str, text: &str) -> &mut Self {
        self.open(tag);
        self.buf.push_str(&escape(text));
        self.close(tag)
    }

    /// Writes `<tag>text</tag>` when there is a value.
    pub fn opt_text(&mut self, tag: &str, text: Option<&str>) -> &mut Self {
        if let Some(text) = text {
            self.text(tag, text);
        }
        self
    }

    /// Writes any displayable value (numbers, booleans) as an element.
    pub fn value(&mut self, tag: &str, value: impl std::fmt::Display) -> &mut Self {
        self.text(tag, &value.to_string())
    }

    /// Writes a list `<tag><member>..</member>...</tag>`, each member filled by `each`.
    pub fn list<T>(
        &mut self,
        tag: &str,
        items: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut Self, T),
    ) -> &mut Self {
        self.open(tag);
        for item in items {
            self.open("member");
            each(self, item);
            self.close("member");
        }
        self.close(tag)
    }

    /// Writes a list of strings `<tag><member>s</member>...</tag>`.
    pub fn string_list<S: AsRef<str>>(
        &mut self,
        tag: &str,
        items: impl IntoIterator<Item = S>,
    ) -> &mut Self {
        self.list(tag, items, |w, s| {
            w.buf.push_str(&escape(s.as_ref()));
        })
    }

    /// Appends already-formed XML.
    pub fn raw(&mut self, xml: &str) -> &mut Self {
        self.buf.push_str(xml);
        self
    }

    pub fn finish(self) -> String {
        self.buf
    }
}

/// The success envelope of an ELBv2 action: `<{action}Response>` with `<{action}Result>` around
/// `result_inner_xml`, then the request id.
pub fn xml_response(action: &str, result_inner_xml: &str, request_id: &str) -> String {
    xml_response_ns(ELBV2_NAMESPACE, action, result_inner_xml, request_id)
}

/// [`xml_response`] for any awsQuery service namespace.
pub fn xml_response_ns(
    namespace: &str,
    action: &str,
    result_inner_xml: &str,
    request_id: &str,
) -> String {
    let mut w = XmlWriter::new();
    w.raw(&format!(
        "<{action}Response xmlns=\"{}\">",
        escape(namespace)
    ));
    w.open(&format!("{action}Result"))
        .raw(result_inner_xml)
        .close(&format!("{action}Result"));
    w.open("ResponseMetadata")
        .text("RequestId", request_id)
        .close("ResponseMetadata");
    w.close(&format!("{action}Response"));
    w.finish()
}

/// The `<ErrorResponse>` document for an error, with `Sender` or `Receiver` as its type.
pub fn xml_error(error: &ApiError, request_id: &str) -> String {
    let mut w = XmlWriter::new();
    w.raw(&format!(
        "<ErrorResponse xmlns=\"{}\">",
        escape(ELBV2_NAMESPACE)
    ));
    w.open("Error")
        .text(
            "Type",
            if error.is_sender_fault() {
                "Sender"
            } else {
                "Receiver"
            },
        )
        .text("Code", &error.code)
        .text("Message", &error.message)
        .close("Error");
    w.text("RequestId", request_id);
    w.close("ErrorResponse");
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes_form() {
        let p = parse_form(
            "Action=DescribeTargetGroups&Names.member.1=a%2Fb+c&Flag&Bad=%zz%4&Utf=%C3%A9",
        );
        assert_eq!(p["Action"], "DescribeTargetGroups");
        assert_eq!(p["Names.member.1"], "a/b c");
        assert_eq!(p["Flag"], "");
        assert_eq!(p["Bad"], "%zz%4");
        assert_eq!(p["Utf"], "é");
    }

    #[test]
    fn members_are_ordered_numerically() {
        let p = parse_form("X.member.10=ten&X.member.2=two&X.member.1=one&Y.member.1=no");
        assert_eq!(members(&p, "X"), vec!["one", "two", "ten"]);
        assert!(members(&p, "Z").is_empty());
    }

    #[test]
    fn nested_member_prefixes() {
        let p = parse_form(
            "Actions.member.1.Type=forward\
             &Actions.member.1.ForwardConfig.TargetGroups.member.2.Weight=7\
             &Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight=3\
             &Actions.member.3.Type=fixed-response",
        );
        let actions = member_prefixes(&p, "Actions");
        assert_eq!(actions, vec!["Actions.member.1", "Actions.member.3"]);
        let tgs = member_prefixes(&p, &format!("{}.ForwardConfig.TargetGroups", actions[0]));
        let weights: Vec<&str> = tgs
            .iter()
            .map(|t| p[&format!("{t}.Weight")].as_str())
            .collect();
        assert_eq!(weights, vec!["3", "7"]);
        assert!(is_present(&p, "Actions"));
        assert!(!is_present(&p, "Conditions"));
        assert!(is_present(&parse_form("Conditions="), "Conditions"));
    }

    #[test]
    fn required_and_integers() {
        let p = parse_form("A=1&B=&C=x");
        assert_eq!(required(&p, "A").unwrap(), "1");
        assert_eq!(required(&p, "B").unwrap_err().code, "ValidationError");
        assert_eq!(optional_i32(&p, "A").unwrap(), Some(1));
        assert_eq!(optional_i32(&p, "D").unwrap(), None);
        assert_eq!(optional_i32(&p, "C").unwrap_err().code, "ValidationError");
    }

    #[test]
    fn writer_escapes() {
        let mut w = XmlWriter::new();
        w.text("A", "<x & \"y\" 'z'>")
            .string_list("L", ["1", "<2>"]);
        assert_eq!(
            w.finish(),
            "<A>&lt;x &amp; &quot;y&quot; &apos;z&apos;&gt;</A><L><member>1</member><member>&lt;2&gt;</member></L>"
        );
    }

    #[test]
    fn envelopes() {
        let ok = xml_response("DescribeRules", "<Rules></Rules>", "req-1");
        assert_eq!(
            ok,
            format!(
                "<DescribeRulesResponse xmlns=\"{ELBV2_NAMESPACE}\"><DescribeRulesResult><Rules></Rules></DescribeRulesResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></DescribeRulesResponse>"
            )
        );
        let err = xml_error(&ApiError::client("RuleNotFound", "no <rule>"), "req-2");
        assert!(err.contains(
            "<Type>Sender</Type><Code>RuleNotFound</Code><Message>no &lt;rule&gt;</Message>"
        ));
        assert!(err.ends_with("<RequestId>req-2</RequestId></ErrorResponse>"));
        let server = xml_error(&ApiError::server("InternalFailure", "boom"), "r");
        assert!(server.contains("<Type>Receiver</Type>"));
    }
}
