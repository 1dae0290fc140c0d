//! Terraform state lookups for the `tfstate` plugin.
//!
//! Receives the text of a Terraform state file (format version 4, written by Terraform 0.12
//! and later) and addresses as Terraform prints them; hands on the value at the address as
//! template text, or a [`FuncError`] naming the address, the part that did not match and, when
//! one is close, the address that was probably meant.
//!
//! Addresses:
//!
//! - `aws_iam_role.task.arn`: attribute `arn` of managed resource `aws_iam_role.task`;
//! - `data.aws_vpc.main.id`: a data source;
//! - `module.web.aws_lb.main.dns_name`, `module.a.module.b["x"].aws_x.y.id`: inside modules
//!   (module instances of `count`/`for_each` take their index as in Terraform);
//! - `aws_subnet.private[0].id`, `aws_subnet.private["az-a"].id` (or `['az-a']`): one instance
//!   of a `count` / `for_each` resource;
//! - `aws_lb.main.tags.Name`, `aws_sg.x.ingress[0].cidr_blocks[0]`: nested attributes;
//! - `output.vpc_id` (or `outputs.vpc_id`), `output.subnets[1]`: root module outputs.
//!
//! Strings come out as they are, numbers in their JSON form, booleans as `true`/`false`, lists
//! and objects as compact JSON. A null value is an error (it is what a missing attribute looks
//! like in a state).

use serde_json::Value;

use super::template::FuncError;
use crate::error::did_you_mean;

/// The largest state read (local file or S3 object). States are larger than the definitions
/// cortado's 10 MiB input limit is made for.
pub(crate) const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;

/// A parsed state file.
#[derive(Debug, Clone)]
pub(crate) struct State {
    resources: Vec<Value>,
    outputs: serde_json::Map<String, Value>,
}

/// One index in an address: `[0]` or `["key"]`.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Int(i64),
    Str(String),
}

impl Key {
    fn matches(&self, v: &Value) -> bool {
        match (self, v) {
            (Key::Int(i), Value::Number(n)) => n.as_i64() == Some(*i),
            (Key::Str(s), Value::String(t)) => s == t,
            _ => false,
        }
    }

    /// Terraform's spelling: `[0]`, `["key"]`.
    fn show(&self) -> String {
        match self {
            Key::Int(i) => format!("[{i}]"),
            Key::Str(s) => format!("[{}]", Value::String(s.clone())),
        }
    }

    fn of_json(v: &Value) -> Option<Key> {
        match v {
            Value::Number(n) => n.as_i64().map(Key::Int),
            Value::String(s) => Some(Key::Str(s.clone())),
            _ => None,
        }
    }
}

/// One dot-separated step of an address, with its indexes: `private["az-a"]`.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    name: String,
    keys: Vec<Key>,
}

impl Step {
    fn show(&self) -> String {
        let mut s = self.name.clone();
        for k in &self.keys {
            s.push_str(&k.show());
        }
        s
    }
}

impl State {
    /// Parses a state file's text; `source` names it in errors.
    pub(crate) fn parse(text: &str, source: &str) -> Result<State, FuncError> {
        let root: Value = serde_json::from_str(text).map_err(|e| {
            FuncError::input(format!(
                "tfstate: {source} is not a Terraform state file: invalid JSON: {e}"
            ))
            .hint("point the plugin's `path` or `url` at a terraform.tfstate file")
        })?;
        let Value::Object(mut root) = root else {
            return Err(FuncError::input(format!(
                "tfstate: {source} is not a Terraform state file (not a JSON object)"
            )));
        };
        // `.terraform/terraform.tfstate` only says where the state is kept.
        if let Some(backend) = root
            .get("backend")
            .filter(|_| !root.contains_key("resources"))
        {
            let kind = backend.get("type").and_then(Value::as_str).unwrap_or("?");
            let conf = |k: &str| {
                backend
                    .get("config")
                    .and_then(|c| c.get(k))
                    .and_then(Value::as_str)
            };
            let hint = match (kind, conf("bucket"), conf("key")) {
                ("s3", Some(b), Some(k)) => {
                    format!("use the state it points to: `config: {{url: s3://{b}/{k}}}`")
                }
                _ => "point the plugin at the state itself: `terraform state pull > terraform.tfstate` writes it to a file".to_string(),
            };
            return Err(FuncError::input(format!(
                "tfstate: {source} is Terraform's pointer to a {kind} backend, not a state"
            ))
            .hint(hint));
        }
        match root.get("version").and_then(Value::as_i64) {
            Some(4) => {}
            Some(v) => {
                return Err(FuncError::input(format!(
                    "tfstate: {source} is a Terraform state of format version {v}; cortado reads version 4 (Terraform 0.12 and later)"
                ))
                .hint("upgrade the state with a current Terraform (`terraform apply` rewrites it)"));
            }
            None => {
                return Err(FuncError::input(format!(
                    "tfstate: {source} is not a Terraform state file (no \"version\")"
                ))
                .hint("point the plugin's `path` or `url` at a terraform.tfstate file"));
            }
        }
        let resources = match root.remove("resources") {
            Some(Value::Array(r)) => r,
            _ => Vec::new(),
        };
        let outputs = match root.remove("outputs") {
            Some(Value::Object(o)) => o,
            _ => serde_json::Map::new(),
        };
        Ok(State { resources, outputs })
    }

    /// The value at `address`, as template text, and whether Terraform marks it sensitive (a
    /// sensitive output, or an attribute listed in the instance's `sensitive_attributes`).
    pub(crate) fn lookup(&self, address: &str) -> Result<(String, bool), FuncError> {
        let (value, sensitive) = self.resolve(address)?;
        let text = match value {
            Value::Null => {
                return Err(
                    FuncError::input(format!("tfstate: {address} is null in the state")).hint(
                        "check the attribute name; Terraform stores unset attributes as null",
                    ),
                );
            }
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Ok((text, sensitive))
    }

    fn resolve(&self, address: &str) -> Result<(&Value, bool), FuncError> {
        let steps = parse_address(address)?;
        if let [first, name, tail @ ..] = steps.as_slice()
            && matches!(first.name.as_str(), "output" | "outputs")
            && first.keys.is_empty()
        {
            return self.output(address, name, tail);
        }
        let (resource, base, name, tail) = self.resource(address, &steps)?;
        let instance = instance_of(resource, name, &base, address)?;
        let at = name
            .keys
            .first()
            .map_or(base.clone(), |k| base.clone() + &k.show());
        let attributes = instance.get("attributes").ok_or_else(|| {
            FuncError::input(format!(
                "tfstate: {address}: {at} has no \"attributes\" in the state"
            ))
            .hint("cortado reads states written by Terraform 0.12 and later")
        })?;
        let value = walk(attributes, tail, address, &at)?;
        Ok((value, is_sensitive(instance, tail)))
    }

    /// `output.NAME...`: a root module output, and whether it is sensitive.
    fn output(
        &self,
        address: &str,
        name: &Step,
        tail: &[Step],
    ) -> Result<(&Value, bool), FuncError> {
        let Some(out) = self.outputs.get(&name.name) else {
            let known: Vec<&str> = self.outputs.keys().map(String::as_str).collect();
            return Err(not_found(
                address,
                &format!("output \"{}\" is not in the state", name.name),
                close(&name.name, &known)
                    .map(|m| format!("output.{m}"))
                    .as_deref(),
                &known,
            ));
        };
        let value = out.get("value").unwrap_or(&Value::Null);
        let at = format!("output.{}", name.name);
        let value = index(value, &name.keys, address, &at)?;
        let sensitive = out.get("sensitive") == Some(&Value::Bool(true));
        Ok((walk(value, tail, address, &at)?, sensitive))
    }

    /// The resource an address names (after its `module.M` prefix): the resource, its
    /// address as Terraform prints it, the step naming it (with its index) and the steps
    /// after it (the attribute path).
    fn resource<'s, 'a>(
        &'s self,
        address: &str,
        steps: &'a [Step],
    ) -> Result<(&'s Value, String, &'a Step, &'a [Step]), FuncError> {
        let bad = |why: &str| {
            FuncError::input(format!("tfstate: invalid address {address}: {why}")).hint(
                "write TYPE.NAME.ATTR, data.TYPE.NAME.ATTR, module.M.TYPE.NAME.ATTR or output.NAME",
            )
        };
        let mut rest = steps;
        // module.NAME[KEY]... prefix.
        let mut module = String::new();
        while let [m, name, tail @ ..] = rest
            && m.name == "module"
            && m.keys.is_empty()
        {
            if !module.is_empty() {
                module.push('.');
            }
            module.push_str("module.");
            module.push_str(&name.show());
            rest = tail;
        }
        let (mode, kind, name, tail) = match rest {
            [d, kind, name, tail @ ..] if d.name == "data" && d.keys.is_empty() => {
                ("data", kind, name, tail)
            }
            [kind, name, tail @ ..] => ("managed", kind, name, tail),
            _ => return Err(bad("it names no resource (TYPE.NAME)")),
        };
        if !kind.keys.is_empty() {
            return Err(bad(&format!(
                "an index belongs after the resource name, not after its type {}",
                kind.name
            )));
        }
        if name.keys.len() > 1 {
            return Err(bad(&format!("{} has more than one index", name.show())));
        }
        let resource = self.resources.iter().find(|r| {
            r.get("module").and_then(Value::as_str).unwrap_or("") == module
                && r.get("mode").and_then(Value::as_str) == Some(mode)
                && r.get("type").and_then(Value::as_str) == Some(kind.name.as_str())
                && r.get("name").and_then(Value::as_str) == Some(name.name.as_str())
        });
        let mut base = String::new();
        if !module.is_empty() {
            base.push_str(&module);
            base.push('.');
        }
        if mode == "data" {
            base.push_str("data.");
        }
        base.push_str(&kind.name);
        base.push('.');
        base.push_str(&name.name);
        let Some(resource) = resource else {
            let known = self.addresses();
            let wanted = format!(
                "{base}{}",
                name.keys.first().map(Key::show).unwrap_or_default()
            );
            let refs: Vec<&str> = known.iter().map(String::as_str).collect();
            return Err(not_found(
                address,
                &format!("resource {base} is not in the state"),
                suggest_address(&wanted, &refs),
                &refs,
            ));
        };
        Ok((resource, base, name, tail))
    }

    /// Every resource instance address in the state, as Terraform prints them.
    pub(crate) fn addresses(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.resources {
            let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
            let mut base = String::new();
            if !s("module").is_empty() {
                base = format!("{}.", s("module"));
            }
            if s("mode") == "data" {
                base.push_str("data.");
            }
            base.push_str(&format!("{}.{}", s("type"), s("name")));
            let keys: Vec<Key> = r
                .get("instances")
                .and_then(Value::as_array)
                .map(|is| {
                    is.iter()
                        .filter_map(|i| i.get("index_key").and_then(Key::of_json))
                        .collect()
                })
                .unwrap_or_default();
            if keys.is_empty() {
                out.push(base);
            } else {
                out.extend(keys.iter().map(|k| format!("{base}{}", k.show())));
            }
        }
        out
    }
}

/// Whether the attribute at `steps` of `instance` is (or holds) one Terraform marks
/// sensitive: `sensitive_attributes` lists paths of `{"type": "get_attr", "value": NAME}`
/// steps; the first attribute name decides.
fn is_sensitive(instance: &Value, steps: &[Step]) -> bool {
    let Some(paths) = instance
        .get("sensitive_attributes")
        .and_then(Value::as_array)
    else {
        return false;
    };
    paths.iter().any(|path| {
        let first = path
            .as_array()
            .and_then(|p| p.first())
            .and_then(|step| step.get("value"))
            .and_then(Value::as_str);
        match (first, steps.first()) {
            (Some(name), Some(step)) => name == step.name,
            // The whole attributes object holds the sensitive one.
            (Some(_), None) => true,
            (None, _) => false,
        }
    })
}

/// The instance of `resource` that `name`'s index picks (`count` / `for_each`), or its only
/// instance when it takes no index.
fn instance_of<'v>(
    resource: &'v Value,
    name: &Step,
    base: &str,
    address: &str,
) -> Result<&'v Value, FuncError> {
    let instances = resource
        .get("instances")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let keys: Vec<Key> = instances
        .iter()
        .filter_map(|i| i.get("index_key").and_then(Key::of_json))
        .collect();
    let shown = || {
        keys.iter()
            .map(|k| format!("{base}{}", k.show()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let instance = match name.keys.first() {
        Some(k) => instances
            .iter()
            .find(|i| i.get("index_key").is_some_and(|v| k.matches(v)))
            .ok_or_else(|| {
                let msg = if keys.is_empty() {
                    format!("{base} has no count or for_each, so it takes no index")
                } else {
                    format!("{base}{} is not in the state", k.show())
                };
                FuncError::input(format!("tfstate: {address}: {msg}")).hint(if keys.is_empty() {
                    format!("drop the index: {base}.ATTR")
                } else {
                    format!("instances in the state: {}", shown())
                })
            })?,
        None if !keys.is_empty() => {
            return Err(FuncError::input(format!(
                "tfstate: {address}: {base} is a count or for_each resource: name its instance"
            ))
            .hint(format!("instances in the state: {}", shown())));
        }
        None => instances.first().ok_or_else(|| {
            FuncError::input(format!(
                "tfstate: {address}: {base} has no instance in the state"
            ))
            .hint("run `terraform apply`, or check the state file")
        })?,
    };
    Ok(instance)
}

/// Follows attribute steps from `value`; `at` is the address walked so far (for messages).
fn walk<'v>(
    mut value: &'v Value,
    steps: &[Step],
    address: &str,
    at: &str,
) -> Result<&'v Value, FuncError> {
    let mut at = at.to_string();
    for step in steps {
        let next = match value {
            Value::Object(m) => m.get(&step.name).ok_or_else(|| {
                let known: Vec<&str> = m.keys().map(String::as_str).collect();
                not_found(
                    address,
                    &format!("{at} has no attribute \"{}\"", step.name),
                    close(&step.name, &known)
                        .map(|k| format!("{at}.{k}"))
                        .as_deref(),
                    &known,
                )
            })?,
            other => {
                return Err(FuncError::input(format!(
                    "tfstate: {address}: {at} is {}, it has no attribute \"{}\"",
                    crate::model::json_type(other),
                    step.name
                ))
                .hint(format!("use {at} itself")));
            }
        };
        at = format!("{at}.{}", step.name);
        value = index(next, &step.keys, address, &at)?;
        at.push_str(&step.keys.iter().map(Key::show).collect::<String>());
    }
    Ok(value)
}

/// Applies `[0]` / `["k"]` indexes to a value.
fn index<'v>(
    mut value: &'v Value,
    keys: &[Key],
    address: &str,
    at: &str,
) -> Result<&'v Value, FuncError> {
    let mut at = at.to_string();
    for k in keys {
        let next = match (value, k) {
            (Value::Array(a), Key::Int(i)) => usize::try_from(*i).ok().and_then(|i| a.get(i)),
            (Value::Object(m), Key::Str(s)) => m.get(s),
            _ => None,
        };
        value = next.ok_or_else(|| {
            let size = match value {
                Value::Array(a) => format!("a list of {} element(s)", a.len()),
                Value::Object(m) => format!(
                    "an object with keys {}",
                    m.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
                other => crate::model::json_type(other).to_string(),
            };
            FuncError::input(format!(
                "tfstate: {address}: {at}{} is not in the state: {at} is {size}",
                k.show()
            ))
            .hint("lists take [N] (from 0), objects [\"key\"] or .key")
        })?;
        at.push_str(&k.show());
    }
    Ok(value)
}

/// The known address the user probably meant: the same resource in (or out of) a module,
/// else the closest spelling.
fn suggest_address<'a>(wanted: &str, known: &[&'a str]) -> Option<&'a str> {
    let wanted_bare = bare_owned(wanted);
    known
        .iter()
        .copied()
        .find(|k| bare_owned(k) == wanted_bare)
        .or_else(|| close(wanted, known))
}

/// The known name closest to `name`: a close spelling, or the same letters in another order
/// (`ran` for `arn`).
fn close<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let sorted = |s: &str| {
        let mut c: Vec<char> = s.to_ascii_lowercase().chars().collect();
        c.sort_unstable();
        c
    };
    did_you_mean(name, known.iter().copied())
        .or_else(|| known.iter().copied().find(|k| sorted(k) == sorted(name)))
}

/// An address without its `module.M.` prefixes.
fn bare_owned(a: &str) -> String {
    let mut rest = a;
    while let Some(r) = rest.strip_prefix("module.") {
        match split_step(r) {
            Some(after) => rest = after,
            None => break,
        }
    }
    rest.to_string()
}

/// What follows the first step (`name[...]`) and its dot, quotes respected.
fn split_step(s: &str) -> Option<&str> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '.') => return Some(&s[i + 1..]),
            _ => {}
        }
    }
    None
}

fn not_found(address: &str, what: &str, suggestion: Option<&str>, known: &[&str]) -> FuncError {
    let e = FuncError::input(format!("tfstate: {address}: {what}"));
    match suggestion {
        Some(s) => e.hint(format!("did you mean {s}?")),
        None if known.is_empty() => e.hint("the state has none"),
        None => {
            let mut list: Vec<&str> = known.to_vec();
            let more = list.len().saturating_sub(10);
            list.truncate(10);
            let mut h = format!("the state has: {}", list.join(", "));
            if more > 0 {
                h.push_str(&format!(" (and {more} more)"));
            }
            e.hint(h)
        }
    }
}

/// Splits an address into steps: `module.a["x"].aws_s.n[0].tags.Name`.
fn parse_address(address: &str) -> Result<Vec<Step>, FuncError> {
    let bad = |why: String| {
        FuncError::input(format!("tfstate: invalid address {address:?}: {why}"))
            .hint("write TYPE.NAME.ATTR, data.TYPE.NAME.ATTR, module.M.TYPE.NAME.ATTR or output.NAME; indexes as [0] or [\"key\"]")
    };
    let chars: Vec<char> = address.trim().chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    if chars.is_empty() {
        return Err(bad("it is empty".into()));
    }
    loop {
        let start = i;
        while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        if name.is_empty() {
            return Err(bad(format!("a name is missing at character {}", start + 1)));
        }
        let mut keys = Vec::new();
        while i < chars.len() && chars[i] == '[' {
            i += 1;
            let key = match chars.get(i) {
                Some(&q @ ('"' | '\'')) => {
                    i += 1;
                    let mut s = String::new();
                    loop {
                        match chars.get(i) {
                            None => return Err(bad("a quoted index is not closed".into())),
                            Some('\\') if q == '"' => {
                                i += 1;
                                match chars.get(i) {
                                    Some(c) => s.push(*c),
                                    None => {
                                        return Err(bad("a quoted index is not closed".into()));
                                    }
                                }
                            }
                            Some(c) if *c == q => break,
                            Some(c) => s.push(*c),
                        }
                        i += 1;
                    }
                    i += 1;
                    Key::Str(s)
                }
                _ => {
                    let start = i;
                    while i < chars.len() && chars[i] != ']' {
                        i += 1;
                    }
                    if i >= chars.len() {
                        return Err(bad("an index is not closed with ]".into()));
                    }
                    let text: String = chars[start..i].iter().collect();
                    Key::Int(text.trim().parse().map_err(|_| {
                        bad(format!(
                            "index [{text}] is neither a number nor a quoted key"
                        ))
                    })?)
                }
            };
            if chars.get(i) != Some(&']') {
                return Err(bad("an index is not closed with ]".into()));
            }
            i += 1;
            keys.push(key);
        }
        steps.push(Step { name, keys });
        match chars.get(i) {
            None => break,
            Some('.') => i += 1,
            Some(c) => return Err(bad(format!("unexpected {c:?} at character {}", i + 1))),
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = include_str!("../../tests/fixtures/tfstate/terraform.tfstate");

    fn state() -> State {
        State::parse(STATE, "terraform.tfstate").unwrap()
    }

    fn get(addr: &str) -> String {
        state()
            .lookup(addr)
            .unwrap_or_else(|e| panic!("{addr}: {e}"))
            .0
    }

    fn err(addr: &str) -> FuncError {
        state().lookup(addr).unwrap_err()
    }

    #[test]
    fn managed_and_data_resources() {
        assert_eq!(
            get("aws_iam_role.task.arn"),
            "arn:aws:iam::123456789012:role/web-task"
        );
        assert_eq!(get("data.aws_vpc.main.id"), "vpc-0a1b2c3d");
        assert_eq!(get("data.aws_vpc.main.cidr_block"), "10.0.0.0/16");
    }

    #[test]
    fn count_and_for_each_instances() {
        assert_eq!(get("aws_subnet.private[0].id"), "subnet-000");
        assert_eq!(get("aws_subnet.private[1].id"), "subnet-111");
        assert_eq!(get("aws_security_group.app[\"web\"].id"), "sg-web");
        assert_eq!(get("aws_security_group.app['worker'].id"), "sg-worker");
        let e = err("aws_subnet.private.id");
        assert!(e.message.contains("is a count or for_each resource"), "{e}");
        assert!(
            e.hint.as_deref().unwrap().contains("aws_subnet.private[1]"),
            "{e:?}"
        );
        let e = err("aws_subnet.private[5].id");
        assert!(
            e.message
                .contains("aws_subnet.private[5] is not in the state"),
            "{e}"
        );
        let e = err("aws_iam_role.task[0].arn");
        assert!(e.message.contains("takes no index"), "{e}");
    }

    #[test]
    fn modules_nested_and_indexed() {
        assert_eq!(
            get("module.web.aws_lb.main.dns_name"),
            "web-123.us-east-1.elb.amazonaws.com"
        );
        assert_eq!(
            get("module.env[\"prod\"].module.db.aws_db_instance.main.port"),
            "5432"
        );
        // The same type and name at the root is a different resource.
        let e = err("aws_lb.main.dns_name");
        assert!(
            e.message
                .contains("resource aws_lb.main is not in the state"),
            "{e}"
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("did you mean module.web.aws_lb.main?")
        );
    }

    #[test]
    fn nested_attributes_and_json_values() {
        assert_eq!(get("module.web.aws_lb.main.tags.Name"), "web");
        assert_eq!(
            get("aws_security_group.app[\"web\"].ingress[0].cidr_blocks[1]"),
            "10.1.0.0/16"
        );
        assert_eq!(
            get("aws_security_group.app[\"web\"].ingress[0].cidr_blocks"),
            r#"["10.0.0.0/16","10.1.0.0/16"]"#
        );
        assert_eq!(
            get("aws_security_group.app[\"web\"].ingress[0].from_port"),
            "443"
        );
        assert_eq!(
            get("aws_subnet.private[0].map_public_ip_on_launch"),
            "false"
        );
        let e = err("module.web.aws_lb.main.tags.Nmae");
        assert_eq!(
            e.hint.as_deref(),
            Some("did you mean module.web.aws_lb.main.tags.Name?")
        );
        let e = err("aws_iam_role.task.description");
        assert!(e.message.contains("is null"), "{e}");
        let e = err("aws_subnet.private[0].id.more");
        assert!(e.message.contains("is a string"), "{e}");
    }

    #[test]
    fn outputs() {
        assert_eq!(get("output.vpc_id"), "vpc-0a1b2c3d");
        assert_eq!(get("outputs.vpc_id"), "vpc-0a1b2c3d");
        assert_eq!(get("output.subnet_ids[1]"), "subnet-111");
        assert_eq!(get("output.subnet_ids"), r#"["subnet-000","subnet-111"]"#);
        let e = err("output.vpc_di");
        assert!(
            e.message.contains("output \"vpc_di\" is not in the state"),
            "{e}"
        );
        assert_eq!(e.hint.as_deref(), Some("did you mean output.vpc_id?"));
    }

    #[test]
    fn missing_addresses_suggest_a_close_one() {
        let e = err("aws_iam_role.tsak.arn");
        assert!(
            e.message.contains("aws_iam_role.tsak is not in the state"),
            "{e}"
        );
        assert_eq!(e.hint.as_deref(), Some("did you mean aws_iam_role.task?"));
        let e = err("aws_iam_role.task.ran");
        assert!(e.message.contains("has no attribute \"ran\""), "{e}");
        assert_eq!(
            e.hint.as_deref(),
            Some("did you mean aws_iam_role.task.arn?")
        );
        // Nothing close: the hint lists what there is.
        let e = err("aws_nothing.here.x");
        assert!(
            e.hint.as_deref().unwrap().starts_with("the state has: "),
            "{e:?}"
        );
    }

    #[test]
    fn sensitive_outputs_and_attributes_are_flagged() {
        let s = state();
        assert_eq!(
            s.lookup("output.db_password").unwrap(),
            ("hunter2".to_string(), true)
        );
        assert!(!s.lookup("output.vpc_id").unwrap().1);
        let (pw, sensitive) = s
            .lookup("module.env[\"prod\"].module.db.aws_db_instance.main.password")
            .unwrap();
        assert_eq!((pw.as_str(), sensitive), ("s3cr3t-db", true));
        assert!(
            !s.lookup("module.env[\"prod\"].module.db.aws_db_instance.main.port")
                .unwrap()
                .1
        );
    }

    #[test]
    fn bad_addresses_and_files() {
        for (addr, want) in [
            ("", "empty"),
            ("aws_x", "names no resource"),
            ("aws_x.y[", "not closed"),
            ("aws_x.y[\"a].id", "not closed"),
            ("aws_x.y[abc].id", "neither a number"),
            ("aws_x..id", "a name is missing"),
            ("aws_x[0].y.id", "after the resource name"),
        ] {
            let e = err(addr);
            assert!(e.message.contains(want), "{addr}: {e}");
        }
        let e = State::parse("{", "s.tfstate").unwrap_err();
        assert!(e.message.contains("invalid JSON"), "{e}");
        let e = State::parse(r#"{"version": 3, "modules": []}"#, "s.tfstate").unwrap_err();
        assert!(e.message.contains("format version 3"), "{e}");
        let e = State::parse(
            r#"{"version": 3, "backend": {"type": "s3", "config": {"bucket": "b", "key": "env/web.tfstate"}}}"#,
            ".terraform/terraform.tfstate",
        )
        .unwrap_err();
        assert!(e.message.contains("pointer to a s3 backend"), "{e}");
        assert_eq!(
            e.hint.as_deref(),
            Some("use the state it points to: `config: {url: s3://b/env/web.tfstate}`")
        );
        let e = State::parse("[]", "s.tfstate").unwrap_err();
        assert!(e.message.contains("not a Terraform state"), "{e}");
    }
}
