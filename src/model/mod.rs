//! Task and service definitions as SDK types.
//!
//! Receives rendered [`Document`]s (JSON values with source positions). Hands on
//! [`Loaded`] values: the aws-sdk-ecs input type (`RegisterTaskDefinitionInput`,
//! `CreateServiceInput`), the normalized JSON of it, and located diagnostics (wrong types,
//! unknown keys with a "did you mean", read-only fields that were dropped). [`validate`]
//! then checks the ECS rules across both definitions. The mapping between JSON and SDK types
//! is the SDK's own schema codec (see [`codec`]); nothing here maps fields by hand.

pub mod codec;
pub(crate) mod fargate;
pub(crate) mod validate;

use aws_sdk_ecs::operation::create_express_gateway_service::CreateExpressGatewayServiceInput;
use aws_sdk_ecs::operation::create_service::CreateServiceInput;
use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionInput;
use aws_smithy_schema::Schema;
use aws_smithy_schema::serde::{SerdeError, SerializableStruct, ShapeDeserializer};
use serde_json::{Map, Value};

use crate::error::{Diagnostic, Error, Result, did_you_mean};
use crate::render::Document;
use crate::render::spans::escape_token;
use codec::Finding;

pub use validate::validate;

/// A definition read from a document.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    /// The SDK value; `None` only when the document could not be decoded at all (an error in
    /// `diagnostics` says why). With other errors it holds what could be decoded.
    pub input: Option<T>,
    /// The SDK value as JSON (read-only fields stripped, unknown keys gone, keys sorted).
    pub json: Value,
    /// Errors, warnings and notes, located in the document.
    pub diagnostics: Vec<Diagnostic>,
    origin: Origin,
}

impl<T> Loaded<T> {
    /// The pointer in the document of `pointer` in the decoded value (they differ when the
    /// file wraps the definition, as describe-task-definition output does).
    pub fn doc_pointer(&self, pointer: &str) -> String {
        self.origin.doc_pointer(pointer)
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The SDK value and the non-error diagnostics, or every diagnostic as an error.
    pub fn into_result(self) -> Result<(T, Vec<Diagnostic>)> {
        match self.input {
            Some(input) if !self.diagnostics.iter().any(Diagnostic::is_error) => {
                Ok((input, self.diagnostics))
            }
            _ => Err(Error::findings(self.diagnostics)),
        }
    }
}

/// Where the decoded value sits in the document.
#[derive(Debug, Clone, Default)]
struct Origin {
    /// Pointer of the definition in the document ("" or "/taskDefinition").
    base: String,
    /// Top-level members taken from beside the wrapper (describe output puts `tags` there).
    beside: Vec<String>,
}

impl Origin {
    fn doc_pointer(&self, pointer: &str) -> String {
        let first = pointer
            .strip_prefix('/')
            .map(|p| p.split('/').next().unwrap_or(""));
        match first {
            Some(t) if self.beside.iter().any(|b| escape_token(b) == t) => pointer.to_string(),
            _ => format!("{}{pointer}", self.base),
        }
    }
}

#[derive(Clone, Copy)]
struct Kind {
    /// "task definition"
    what: &'static str,
    /// The describe command whose output carries read-only fields.
    describe: &'static str,
    /// The describe output shape and the input shape: their difference is read-only.
    output: &'static Schema<'static>,
    input: &'static Schema<'static>,
}

const TASK: Kind = Kind {
    what: "task definition",
    describe: "describe-task-definition",
    output: aws_sdk_ecs::types::TaskDefinition::SCHEMA,
    input: RegisterTaskDefinitionInput::SCHEMA,
};

const SERVICE: Kind = Kind {
    what: "service definition",
    describe: "describe-services",
    output: aws_sdk_ecs::types::Service::SCHEMA,
    input: CreateServiceInput::SCHEMA,
};

const EXPRESS: Kind = Kind {
    what: "express definition",
    describe: "describe-express-gateway-service",
    // The file is the CreateExpressGatewayService input; nothing is read-only in it.
    output: CreateExpressGatewayServiceInput::SCHEMA,
    input: CreateExpressGatewayServiceInput::SCHEMA,
};

/// Reads an Express Mode service definition (`express_definition:`, ecspresso's key): the
/// CreateExpressGatewayService input (`primaryContainer`, `executionRoleArn`,
/// `infrastructureRoleArn`, `cpu`, `memory`, `scalingTarget`, ...); `serviceName` and
/// `cluster` come from the config.
pub fn express_definition(doc: &Document) -> Loaded<CreateExpressGatewayServiceInput> {
    let mut diagnostics = Vec::new();
    let Some(root) = root_object(doc, EXPRESS, &mut diagnostics) else {
        return failed(diagnostics);
    };
    load(
        doc,
        EXPRESS,
        root.clone(),
        Origin::default(),
        diagnostics,
        CreateExpressGatewayServiceInput::deserialize,
    )
}

/// Reads a task definition: bare (`register-task-definition --cli-input-json` shape) or
/// wrapped as describe-task-definition prints it (`{"taskDefinition": {...}, "tags": [...]}`).
pub fn task_definition(doc: &Document) -> Loaded<RegisterTaskDefinitionInput> {
    let mut diagnostics = Vec::new();
    let mut origin = Origin::default();
    let Some(root) = root_object(doc, TASK, &mut diagnostics) else {
        return failed(diagnostics);
    };
    let wrapped = root.get("taskDefinition").is_some_and(Value::is_object)
        && !root.contains_key("family")
        && !root.contains_key("containerDefinitions");
    let value = if wrapped {
        origin.base = "/taskDefinition".into();
        let mut inner = match root.get("taskDefinition") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        for (k, v) in root {
            match k.as_str() {
                "taskDefinition" => {}
                "tags" if inner.contains_key("tags") => diagnostics.push(
                    Diagnostic::error("tags are given both inside and beside \"taskDefinition\"")
                        .at(doc.locate_key("/tags"))
                        .hint("keep one list of tags: remove this one or the one inside taskDefinition"),
                ),
                "tags" => {
                    inner.insert(k.clone(), v.clone());
                    origin.beside.push(k.clone());
                }
                _ => diagnostics.push(unknown_key(
                    doc,
                    &format!("/{}", escape_token(k)),
                    k,
                    "beside \"taskDefinition\"",
                    &["taskDefinition".to_string(), "tags".to_string()],
                )),
            }
        }
        inner
    } else {
        root.clone()
    };
    load(
        doc,
        TASK,
        value,
        origin,
        diagnostics,
        RegisterTaskDefinitionInput::deserialize,
    )
}

/// Reads a service definition: CreateService input, possibly with the read-only fields of
/// describe-services output (ecspresso writes those), which are dropped with a note.
pub fn service_definition(doc: &Document) -> Loaded<CreateServiceInput> {
    let mut diagnostics = Vec::new();
    let Some(root) = root_object(doc, SERVICE, &mut diagnostics) else {
        return failed(diagnostics);
    };
    let value = root.clone();
    load(
        doc,
        SERVICE,
        value,
        Origin::default(),
        diagnostics,
        CreateServiceInput::deserialize,
    )
}

/// The task definition as camelCase JSON, keys sorted. Members the SDK holds as plain
/// numbers or booleans come out even when unset, with ECS's default (container `cpu: 0`), as
/// ECS itself returns them.
pub fn task_definition_to_json(input: &RegisterTaskDefinitionInput) -> Result<Value> {
    to_json(input, TASK, "family")
}

/// The service definition as camelCase JSON, keys sorted.
pub fn service_definition_to_json(input: &CreateServiceInput) -> Result<Value> {
    to_json(input, SERVICE, "serviceName")
}

/// Encodes, leaving out the required name the SDK sets to "" when a file omits it.
fn to_json(input: &dyn SerializableStruct, kind: Kind, name: &str) -> Result<Value> {
    let mut json = codec::encode(input)
        .map_err(|e| Error::internal(format!("cannot encode the {}: {e}", kind.what)))?;
    if let Value::Object(m) = &mut json
        && m.get(name).is_some_and(|v| v.as_str() == Some(""))
    {
        m.remove(name);
    }
    Ok(json)
}

fn root_object<'d>(
    doc: &'d Document,
    kind: Kind,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<&'d Map<String, Value>> {
    match &doc.value {
        Value::Object(m) => Some(m),
        other => {
            diagnostics.push(
                Diagnostic::error(format!(
                    "the {} must be a JSON object, not {}",
                    kind.what,
                    json_type(other)
                ))
                .at(doc.locate(""))
                .hint(format!("write the {} as an object: {{ ... }}", kind.what)),
            );
            None
        }
    }
}

fn failed<T>(diagnostics: Vec<Diagnostic>) -> Loaded<T> {
    Loaded {
        input: None,
        json: Value::Null,
        diagnostics,
        origin: Origin::default(),
    }
}

fn load<T: SerializableStruct>(
    doc: &Document,
    kind: Kind,
    mut value: Map<String, Value>,
    origin: Origin,
    mut diagnostics: Vec<Diagnostic>,
    read: fn(&mut dyn ShapeDeserializer) -> std::result::Result<T, SerdeError>,
) -> Loaded<T> {
    // Read-only fields: members of the describe output that the input does not have.
    let stripped: Vec<String> = value
        .keys()
        .filter(|k| kind.output.member_schema(k).is_some() && kind.input.member_schema(k).is_none())
        .cloned()
        .collect();
    if let Some(first) = stripped.first() {
        for k in &stripped {
            value.remove(k);
        }
        diagnostics.push(
            Diagnostic::note(format!(
                "ignored read-only fields from {} output: {}",
                kind.describe,
                stripped.join(", ")
            ))
            .at(doc.locate_key(&origin.doc_pointer(&format!("/{}", escape_token(first))))),
        );
    }
    let value = Value::Object(value);
    let decoded = codec::decode(&value, read);
    let mut findings = decoded.findings;
    let mut json = Value::Null;
    if let Some(input) = &decoded.value {
        match codec::encode(input) {
            Ok(mut out) => {
                findings.extend(codec::lost_in_round_trip(&value, &out, &findings));
                drop_filled_defaults(&value, &mut out);
                json = out;
            }
            Err(e) => findings.push(Finding::Failed {
                pointer: String::new(),
                message: format!("cannot encode the decoded value: {e}"),
            }),
        }
    }
    diagnostics.extend(findings.iter().map(|f| diagnostic(doc, kind, &origin, f)));
    // In file order, as a reader goes through the file.
    diagnostics.sort_by_key(|d| d.location.as_ref().map(|l| (l.line, l.col)));
    Loaded {
        input: decoded.value,
        json,
        diagnostics,
        origin,
    }
}

/// The SDK fills required members the file left out with empty values (`family: ""`); keep
/// them out of the JSON so it shows what the file says.
fn drop_filled_defaults(input: &Value, out: &mut Value) {
    if let (Value::Object(i), Value::Object(o)) = (input, out) {
        o.retain(|k, v| {
            i.contains_key(k)
                || !matches!(v, Value::String(s) if s.is_empty())
                    && !matches!(v, Value::Array(a) if a.is_empty())
        });
    }
}

fn diagnostic(doc: &Document, kind: Kind, origin: &Origin, finding: &Finding) -> Diagnostic {
    match finding {
        Finding::WrongType {
            pointer,
            expected,
            found,
        } => {
            let path = display_path(pointer);
            Diagnostic::error(format!(
                "wrong type for {path}: expected {expected}, found {}",
                describe_value(found)
            ))
            .at(doc.locate(&origin.doc_pointer(pointer)))
            .hint(type_hint(pointer, expected, found))
        }
        Finding::UnknownKey {
            pointer,
            key,
            known,
        } => {
            let place = if pointer.is_empty() {
                format!("in the {}", kind.what)
            } else {
                format!("in {}", display_path(pointer))
            };
            let child = format!("{pointer}/{}", escape_token(key));
            unknown_key(doc, &origin.doc_pointer(&child), key, &place, known)
        }
        Finding::Dropped { pointer } => Diagnostic::warning(format!(
            "{} was lost when converting the {} to the ECS API type; it will not be sent",
            display_path(pointer),
            kind.what
        ))
        .at(doc.locate_key(&origin.doc_pointer(pointer)))
        .hint(
            "check the value against the ECS API reference; report this to cortado if it is valid",
        ),
        Finding::Failed { pointer, message } => {
            Diagnostic::error(format!("cannot read the {}: {message}", kind.what))
                .at(doc.locate(&origin.doc_pointer(pointer)))
                .hint("fix the value at the marker; run `cortado render` to see the rendered file")
        }
    }
}

fn unknown_key(
    doc: &Document,
    doc_pointer: &str,
    key: &str,
    place: &str,
    known: &[String],
) -> Diagnostic {
    let d =
        Diagnostic::error(format!("unknown key \"{key}\" {place}")).at(doc.locate_key(doc_pointer));
    match did_you_mean(key, known.iter().map(String::as_str)) {
        Some(m) => d.hint(format!("did you mean \"{m}\"?")),
        None => d.hint(format!(
            "the ECS API has no such field here and would ignore it; remove it. Known keys here: {}",
            known.join(", ")
        )),
    }
}

fn type_hint(pointer: &str, expected: &str, found: &Value) -> String {
    let tokens: Vec<&str> = pointer.split('/').skip(1).collect();
    let container_size = tokens.len() == 3
        && tokens[0] == "containerDefinitions"
        && matches!(tokens[2], "cpu" | "memory" | "memoryReservation");
    let task_size = matches!(tokens.as_slice(), ["cpu" | "memory"]);
    match (expected, found) {
        (e, Value::String(s)) if e.starts_with("an integer") || e == "a number" => {
            let t = s.trim();
            if t.parse::<f64>().is_ok() {
                let mut h = format!("write {t} without quotes");
                if container_size {
                    h.push_str(": container-level cpu and memory are integers (only the task-level cpu and memory are strings)");
                }
                h
            } else {
                "use a number here; the value was left out".to_string()
            }
        }
        ("a string", Value::Number(n)) => {
            if task_size {
                format!(
                    "write \"{n}\" in quotes: task-level cpu and memory are strings in the ECS API (e.g. \"256\", \"0.25 vCPU\", \"1 GB\")"
                )
            } else {
                format!("write \"{n}\" in quotes")
            }
        }
        ("true or false", Value::String(s)) if matches!(s.as_str(), "true" | "false") => {
            format!("write {s} without quotes")
        }
        ("a list", _) => "write a list: [ ... ] (a single item goes in a list too)".to_string(),
        _ => format!("change the value to {expected}; the value was left out"),
    }
}

/// `containerDefinitions[1].portMappings[0].hostPort` for a JSON pointer.
fn display_path(pointer: &str) -> String {
    let mut out = String::new();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{token}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&token);
        }
    }
    if out.is_empty() {
        "the root".to_string()
    } else {
        out
    }
}

/// A JSON value's kind, for messages ("a list", "an object").
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn describe_value(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() <= 40 => format!("the string \"{s}\""),
        Value::Number(n) => format!("the number {n}"),
        Value::Bool(b) => format!("{b}"),
        other => json_type(other).to_string(),
    }
}

/// Every model finding for a rendered task definition and (optional) service definition:
/// decoding diagnostics of both, then the validation rules.
pub fn check(task: Option<&Document>, service: Option<&Document>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let service = service.map(|doc| (service_definition(doc), doc));
    if let Some((loaded, _)) = &service {
        out.extend(loaded.diagnostics.iter().cloned());
    }
    if let Some(doc) = task {
        let loaded = task_definition(doc);
        out.extend(loaded.diagnostics.iter().cloned());
        out.extend(validate(
            (&loaded, doc),
            service.as_ref().map(|(l, d)| (l, *d)),
        ));
    }
    out
}

#[cfg(test)]
mod tests;
