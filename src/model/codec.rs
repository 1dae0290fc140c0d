//! JSON <-> SDK types through the SDK's own schema-driven codec.
//!
//! Receives a `serde_json::Value` in the camelCase shape of the ECS API (what
//! `aws ecs register-task-definition --cli-input-json` takes) and a generated `deserialize`
//! function of aws-sdk-ecs. Hands on the SDK value plus [`Finding`]s: values of the wrong type
//! and keys the schema does not know, each at a JSON pointer.
//!
//! The decoding itself is `aws_smithy_json::codec::JsonDeserializer`. It is driven through
//! [`Tracer`], a [`ShapeDeserializer`] that wraps it and keeps the JSON pointer of the value
//! being read. The SDK's generated code hands every structure's schema to `read_struct`, so the
//! tracer learns the member names at each object (for unknown keys and "did you mean"). Before
//! each read it checks the JSON type of the value against the read the SDK asked for; a value
//! of the wrong type is recorded, skipped in the codec and left out, so one bad value does not
//! abort the whole decode (the plain codec stops at the first type error).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use aws_smithy_json::codec::{JsonCodec, JsonCodecSettings};
use aws_smithy_schema::Schema;
use aws_smithy_schema::codec::Codec;
use aws_smithy_schema::serde::{
    SerdeError, SerializableStruct, ShapeDeserializer, ShapeSerializer,
};
use aws_smithy_types::{BigDecimal, BigInteger, Blob, DateTime, Document};
use serde_json::Value;

use crate::render::spans::escape_token;

/// The codec settings cortado uses both ways: member names as JSON keys (the ECS API uses the
/// Smithy member names on the wire), and `256.0` accepted where an integer is expected since
/// Jsonnet computes numbers as floats.
fn codec() -> JsonCodec {
    JsonCodec::new(
        JsonCodecSettings::builder()
            .use_json_name(false)
            .allow_integral_float_numbers(true)
            .build(),
    )
}

/// Something wrong with the decoded value, at a JSON pointer of the decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// The value at `pointer` has the wrong JSON type; it was left out.
    WrongType {
        pointer: String,
        expected: &'static str,
        found: Value,
    },
    /// `key` in the object at `pointer` is not a member of the shape; the codec ignored it.
    UnknownKey {
        pointer: String,
        key: String,
        known: Vec<String>,
    },
    /// A key the schema knows did not survive the round trip (a codec limitation).
    Dropped { pointer: String },
    /// The codec gave up at `pointer`; nothing was decoded.
    Failed { pointer: String, message: String },
}

/// The result of decoding one value.
#[derive(Debug)]
pub struct Decoded<T> {
    /// `None` only when the codec gave up (see [`Finding::Failed`]).
    pub value: Option<T>,
    pub findings: Vec<Finding>,
}

/// What the tracers share while one decode runs.
struct Shared<'v> {
    root: &'v Value,
    /// Member names of every object read as a structure, by pointer.
    structs: RefCell<BTreeMap<String, Vec<String>>>,
    findings: RefCell<Vec<Finding>>,
    failed: RefCell<Option<(String, String)>>,
}

impl Shared<'_> {
    fn fail(&self, pointer: &str, e: &SerdeError) {
        let mut failed = self.failed.borrow_mut();
        if failed.is_none() {
            *failed = Some((pointer.to_string(), e.to_string()));
        }
    }
}

/// Decodes `value` with a generated `deserialize` function of the SDK
/// (e.g. `RegisterTaskDefinitionInput::deserialize`).
pub fn decode<T>(
    value: &Value,
    read: fn(&mut dyn ShapeDeserializer) -> Result<T, SerdeError>,
) -> Decoded<T> {
    let bytes = match serde_json::to_vec(value) {
        Ok(b) => b,
        Err(e) => {
            return Decoded {
                value: None,
                findings: vec![Finding::Failed {
                    pointer: String::new(),
                    message: e.to_string(),
                }],
            };
        }
    };
    let codec = codec();
    let mut inner = codec.create_deserializer(&bytes);
    let shared = Shared {
        root: value,
        structs: RefCell::new(BTreeMap::new()),
        findings: RefCell::new(Vec::new()),
        failed: RefCell::new(None),
    };
    let mut tracer = Tracer {
        inner: &mut inner,
        shared: &shared,
        pointer: String::new(),
        rejected: false,
    };
    let result = read(&mut tracer);
    let mut findings = shared.findings.take();
    let structs = shared.structs.take();
    let decoded = match result {
        Ok(v) => Some(v),
        Err(e) => {
            let (pointer, message) = shared
                .failed
                .take()
                .unwrap_or((String::new(), e.to_string()));
            findings.push(Finding::Failed { pointer, message });
            None
        }
    };
    let skipped: BTreeSet<String> = findings
        .iter()
        .filter_map(|f| match f {
            Finding::WrongType { pointer, .. } => Some(pointer.clone()),
            _ => None,
        })
        .collect();
    unknown_keys(value, "", &structs, &skipped, &mut findings);
    Decoded {
        value: decoded,
        findings,
    }
}

/// Finds keys of objects read as structures that the structure's schema does not name.
fn unknown_keys(
    value: &Value,
    pointer: &str,
    structs: &BTreeMap<String, Vec<String>>,
    skipped: &BTreeSet<String>,
    out: &mut Vec<Finding>,
) {
    if skipped.contains(pointer) {
        return;
    }
    match value {
        Value::Object(map) => {
            let known = structs.get(pointer);
            for (k, v) in map {
                let child = format!("{pointer}/{}", escape_token(k));
                match known {
                    Some(names) if !names.iter().any(|n| n == k) => {
                        out.push(Finding::UnknownKey {
                            pointer: pointer.to_string(),
                            key: k.clone(),
                            known: names.clone(),
                        });
                    }
                    _ => unknown_keys(v, &child, structs, skipped, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                unknown_keys(v, &format!("{pointer}/{i}"), structs, skipped, out);
            }
        }
        _ => {}
    }
}

/// Keys present (and not null) in `input` but missing from `output`, at pointers not already
/// covered by `findings`: the round-trip check the design asks for, as a safety net behind the
/// tracer.
pub fn lost_in_round_trip(input: &Value, output: &Value, findings: &[Finding]) -> Vec<Finding> {
    let covered: BTreeSet<String> = findings
        .iter()
        .map(|f| match f {
            Finding::WrongType { pointer, .. }
            | Finding::Dropped { pointer }
            | Finding::Failed { pointer, .. } => pointer.clone(),
            Finding::UnknownKey { pointer, key, .. } => {
                format!("{pointer}/{}", escape_token(key))
            }
        })
        .collect();
    let mut out = Vec::new();
    lost(input, output, "", &covered, &mut out);
    out
}

fn lost(
    input: &Value,
    output: &Value,
    pointer: &str,
    covered: &BTreeSet<String>,
    out: &mut Vec<Finding>,
) {
    if covered.contains(pointer) {
        return;
    }
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let child = format!("{pointer}/{}", escape_token(k));
                match b.get(k) {
                    Some(w) => lost(v, w, &child, covered, out),
                    None if v.is_null() || covered.contains(&child) => {}
                    None => out.push(Finding::Dropped { pointer: child }),
                }
            }
        }
        // A list that lost an element had it reported; pairing the rest would misalign.
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                lost(v, w, &format!("{pointer}/{i}"), covered, out);
            }
        }
        _ => {}
    }
}

/// Encodes an SDK value as camelCase JSON with the SDK's codec. Object keys come out sorted
/// (as ecspresso prints definitions), which also makes maps held in `HashMap`s deterministic.
pub fn encode(value: &dyn SerializableStruct) -> Result<Value, String> {
    let codec = codec();
    let mut ser = codec.create_serializer();
    ser.write_struct(value.schema(), value)
        .map_err(|e| e.to_string())?;
    let bytes = ser.finish();
    let mut json: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    sort_keys(&mut json);
    Ok(json)
}

fn sort_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.sort_keys();
            map.values_mut().for_each(sort_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

/// A [`ShapeDeserializer`] that delegates to the codec's deserializer while tracking the JSON
/// pointer of the current value (see the module docs).
struct Tracer<'d, 's, 'v> {
    inner: &'d mut dyn ShapeDeserializer,
    shared: &'s Shared<'v>,
    pointer: String,
    /// Set when this tracer refused its value; the enclosing reader then skips it.
    rejected: bool,
}

impl Tracer<'_, '_, '_> {
    fn current(&self) -> Option<&Value> {
        self.shared.root.pointer(&self.pointer)
    }

    /// Checks the current value with `ok`; on a mismatch records it and returns the error that
    /// makes the enclosing struct or list reader skip the value.
    fn expect(&mut self, expected: &'static str, ok: fn(&Value) -> bool) -> Result<(), SerdeError> {
        match self.current() {
            // The pointer always resolves; if it ever did not, let the codec decide.
            None => Ok(()),
            Some(v) if ok(v) => Ok(()),
            Some(v) => {
                let found = v.clone();
                self.shared.findings.borrow_mut().push(Finding::WrongType {
                    pointer: self.pointer.clone(),
                    expected,
                    found,
                });
                self.rejected = true;
                Err(SerdeError::custom("value of the wrong type (reported)"))
            }
        }
    }

    fn track<T>(&self, r: Result<T, SerdeError>) -> Result<T, SerdeError> {
        if let Err(e) = &r {
            self.shared.fail(&self.pointer, e);
        }
        r
    }

    fn integer(&mut self, min: i64, max: i64) -> Result<(), SerdeError> {
        let in_range = match self.current() {
            Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => (min..=max).contains(&i),
                (None, Some(f)) => f.fract() == 0.0 && f >= min as f64 && f <= max as f64,
                _ => false,
            },
            _ => true,
        };
        self.expect("an integer", is_number)?;
        if in_range {
            Ok(())
        } else {
            self.expect(
                match max {
                    127 => "an integer from -128 to 127",
                    32767 => "an integer from -32768 to 32767",
                    2147483647 => "an integer from -2147483648 to 2147483647",
                    _ => "a 64-bit integer",
                },
                |_| false,
            )
        }
    }
}

fn is_number(v: &Value) -> bool {
    v.is_number()
}

/// Runs `consume` on the value `d` is at; when the value is refused for its type, skips it in
/// the codec so the enclosing aggregate carries on.
fn guarded(
    d: &mut dyn ShapeDeserializer,
    shared: &Shared<'_>,
    pointer: String,
    consume: impl FnOnce(&mut dyn ShapeDeserializer) -> Result<(), SerdeError>,
) -> Result<(), SerdeError> {
    let (result, rejected) = {
        let mut t = Tracer {
            inner: &mut *d,
            shared,
            pointer: pointer.clone(),
            rejected: false,
        };
        let r = consume(&mut t);
        (r, t.rejected)
    };
    match result {
        Err(_) if rejected => {
            let r = d.skip_value();
            if let Err(e) = &r {
                shared.fail(&pointer, e);
            }
            r
        }
        Err(e) => {
            // The first failure recorded is the deepest: a nested reader records before us.
            shared.fail(&pointer, &e);
            Err(e)
        }
        Ok(()) => Ok(()),
    }
}

impl ShapeDeserializer for Tracer<'_, '_, '_> {
    fn read_struct(
        &mut self,
        schema: &Schema<'_>,
        state: &mut dyn FnMut(&Schema<'_>, &mut dyn ShapeDeserializer) -> Result<(), SerdeError>,
    ) -> Result<(), SerdeError> {
        self.expect("an object", Value::is_object)?;
        let names = schema
            .members()
            .iter()
            .filter_map(|m| m.member_name().map(str::to_string))
            .collect();
        self.shared
            .structs
            .borrow_mut()
            .insert(self.pointer.clone(), names);
        let shared = self.shared;
        let base = self.pointer.clone();
        let r = self.inner.read_struct(schema, &mut |member, d| {
            // Members the schema does not know arrive without an index: leave them unread and
            // the codec skips them (they are reported from the member names recorded above).
            let (Some(_), Some(name)) = (member.member_index(), member.member_name()) else {
                return Ok(());
            };
            let pointer = format!("{base}/{}", escape_token(name));
            guarded(d, shared, pointer, |t| state(member, t))
        });
        self.track(r)
    }

    fn read_list(
        &mut self,
        schema: &Schema<'_>,
        state: &mut dyn FnMut(&mut dyn ShapeDeserializer) -> Result<(), SerdeError>,
    ) -> Result<(), SerdeError> {
        self.expect("a list", Value::is_array)?;
        let shared = self.shared;
        let base = self.pointer.clone();
        let mut index = 0usize;
        let r = self.inner.read_list(schema, &mut |d| {
            let pointer = format!("{base}/{index}");
            index += 1;
            guarded(d, shared, pointer, |t| state(t))
        });
        self.track(r)
    }

    fn read_map(
        &mut self,
        schema: &Schema<'_>,
        state: &mut dyn FnMut(String, &mut dyn ShapeDeserializer) -> Result<(), SerdeError>,
    ) -> Result<(), SerdeError> {
        self.expect("an object", Value::is_object)?;
        let shared = self.shared;
        let base = self.pointer.clone();
        let r = self.inner.read_map(schema, &mut |key, d| {
            let pointer = format!("{base}/{}", escape_token(&key));
            guarded(d, shared, pointer, |t| state(key, t))
        });
        self.track(r)
    }

    fn read_boolean(&mut self, schema: &Schema<'_>) -> Result<bool, SerdeError> {
        self.expect("true or false", Value::is_boolean)?;
        let r = self.inner.read_boolean(schema);
        self.track(r)
    }

    fn read_byte(&mut self, schema: &Schema<'_>) -> Result<i8, SerdeError> {
        self.integer(i8::MIN.into(), i8::MAX.into())?;
        let r = self.inner.read_byte(schema);
        self.track(r)
    }

    fn read_short(&mut self, schema: &Schema<'_>) -> Result<i16, SerdeError> {
        self.integer(i16::MIN.into(), i16::MAX.into())?;
        let r = self.inner.read_short(schema);
        self.track(r)
    }

    fn read_integer(&mut self, schema: &Schema<'_>) -> Result<i32, SerdeError> {
        self.integer(i32::MIN.into(), i32::MAX.into())?;
        let r = self.inner.read_integer(schema);
        self.track(r)
    }

    fn read_long(&mut self, schema: &Schema<'_>) -> Result<i64, SerdeError> {
        self.integer(i64::MIN, i64::MAX)?;
        let r = self.inner.read_long(schema);
        self.track(r)
    }

    fn read_float(&mut self, schema: &Schema<'_>) -> Result<f32, SerdeError> {
        self.expect("a number", is_number)?;
        let r = self.inner.read_float(schema);
        self.track(r)
    }

    fn read_double(&mut self, schema: &Schema<'_>) -> Result<f64, SerdeError> {
        self.expect("a number", is_number)?;
        let r = self.inner.read_double(schema);
        self.track(r)
    }

    fn read_big_integer(&mut self, schema: &Schema<'_>) -> Result<BigInteger, SerdeError> {
        let r = self.inner.read_big_integer(schema);
        self.track(r)
    }

    fn read_big_decimal(&mut self, schema: &Schema<'_>) -> Result<BigDecimal, SerdeError> {
        let r = self.inner.read_big_decimal(schema);
        self.track(r)
    }

    fn read_string(&mut self, schema: &Schema<'_>) -> Result<String, SerdeError> {
        self.expect("a string", Value::is_string)?;
        let r = self.inner.read_string(schema);
        self.track(r)
    }

    fn read_blob(&mut self, schema: &Schema<'_>) -> Result<Blob, SerdeError> {
        self.expect("a base64 string", Value::is_string)?;
        let r = self.inner.read_blob(schema);
        self.track(r)
    }

    fn read_timestamp(&mut self, schema: &Schema<'_>) -> Result<DateTime, SerdeError> {
        self.expect("a timestamp (seconds or an RFC 3339 string)", |v| {
            v.is_number() || v.is_string()
        })?;
        let r = self.inner.read_timestamp(schema);
        self.track(r)
    }

    fn read_document(&mut self, schema: &Schema<'_>) -> Result<Document, SerdeError> {
        let r = self.inner.read_document(schema);
        self.track(r)
    }

    fn is_null(&self) -> bool {
        self.inner.is_null()
    }

    fn read_null(&mut self) -> Result<(), SerdeError> {
        let r = self.inner.read_null();
        self.track(r)
    }

    fn skip_value(&mut self) -> Result<(), SerdeError> {
        let r = self.inner.skip_value();
        self.track(r)
    }

    fn container_size(&self) -> Option<usize> {
        self.inner.container_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionInput;
    use serde_json::json;

    /// Reads like the SDK but fails on the value of "cpu" in a container.
    fn failing_reader(d: &mut dyn ShapeDeserializer) -> Result<u32, SerdeError> {
        let mut count = 0;
        d.read_struct(RegisterTaskDefinitionInput::SCHEMA, &mut |member, d| {
            if member.member_name() == Some("containerDefinitions") {
                d.read_list(member, &mut |d| {
                    d.read_struct(
                        aws_sdk_ecs::types::ContainerDefinition::SCHEMA,
                        &mut |m, d| {
                            count += 1;
                            if m.member_name() == Some("cpu") {
                                return Err(SerdeError::custom("boom"));
                            }
                            d.skip_value()
                        },
                    )
                })
            } else {
                d.skip_value()
            }
        })?;
        Ok(count)
    }

    #[test]
    fn a_codec_failure_is_located_at_the_deepest_value() {
        let v = json!({"family": "f", "containerDefinitions": [{"name": "a"}, {"name": "b", "cpu": 1}]});
        let decoded = decode(&v, failing_reader);
        assert!(decoded.value.is_none());
        assert_eq!(
            decoded.findings,
            vec![Finding::Failed {
                pointer: "/containerDefinitions/1/cpu".into(),
                message: "boom".into()
            }]
        );
    }

    #[test]
    fn a_reader_that_succeeds_reports_nothing() {
        let v = json!({"family": "f", "containerDefinitions": [{"name": "a"}, {"name": "b"}]});
        let decoded = decode(&v, failing_reader);
        assert_eq!(decoded.value, Some(2));
        assert!(decoded.findings.is_empty());
    }
}
