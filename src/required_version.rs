//! `required_version`: the ecspresso version a config asks for, checked the way ecspresso
//! checks it.
//!
//! The key constrains *ecspresso* (its README recommends `required_version: ">= 2.0.0, < 3"`),
//! so cortado reads it as a question about the ecspresso config format it implements:
//! [`ECSPRESSO_COMPAT`], ecspresso v2.8's. A constraint that version satisfies is accepted;
//! one it does not (`">= 3"`, `"~> 2.9"`) is refused, since the config was written for an
//! ecspresso cortado does not stand in for.
//!
//! The syntax is that of hashicorp/go-version, the library ecspresso parses the key with:
//! comma-separated constraints, each an optional operator (`=`, `!=`, `>`, `<`, `>=`, `<=`,
//! `~>`; none means `=`) and a version (`v` prefix allowed, any number of numeric segments,
//! padded to three, a pre-release after `-` or letters, build metadata after `+`). Receives the
//! constraint text; hands on whether the version satisfies it, or why the text is malformed.

/// The ecspresso release whose config format cortado implements (v2.8.7, 2026-09-13: Express
/// Mode definitions, `--wait-until ecs:STAGE`, earlySuccessCriteria).
pub const ECSPRESSO_COMPAT: &str = "2.8.7";

/// A version as go-version reads it.
#[derive(Debug, Clone, PartialEq)]
struct Version {
    /// Numeric segments, padded with zeros to at least three.
    segments: Vec<i64>,
    /// How many segments were written (`~>` looks at this).
    written: usize,
    /// The pre-release part, without its `-`.
    pre: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Pessimistic,
}

/// Operators, longest first so that `>=` is not read as `>`.
const OPS: [(&str, Op); 7] = [
    ("~>", Op::Pessimistic),
    (">=", Op::Ge),
    ("<=", Op::Le),
    ("!=", Op::Ne),
    (">", Op::Gt),
    ("<", Op::Lt),
    ("=", Op::Eq),
];

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '~'
}

/// Dot-separated non-empty parts of `[0-9A-Za-z-~]`.
fn dotted_idents(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.chars().all(is_ident))
}

fn parse_version(text: &str) -> Result<Version, String> {
    let malformed = || format!("malformed version: {text}");
    let s = text.strip_prefix('v').unwrap_or(text);
    let digits_end = s
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_digit()
                || (c == '.' && i > 0 && s[i + 1..].starts_with(|d: char| d.is_ascii_digit())))
        })
        .map_or(s.len(), |(i, _)| i);
    let (numbers, rest) = s.split_at(digits_end);
    if numbers.is_empty() {
        return Err(malformed());
    }
    let mut segments = Vec::new();
    for n in numbers.split('.') {
        segments.push(
            n.parse::<i64>()
                .map_err(|e| format!("error parsing version {text}: {e}"))?,
        );
    }
    let written = segments.len();
    while segments.len() < 3 {
        segments.push(0);
    }
    let (pre_part, meta) = match rest.split_once('+') {
        Some((p, m)) => (p, Some(m)),
        None => (rest, None),
    };
    if meta.is_some_and(|m| !dotted_idents(m)) {
        return Err(malformed());
    }
    let pre = match pre_part.strip_prefix('-') {
        Some(p) => p,
        // Without a dash a pre-release starts with a letter, `-` or `~` (go-version's regexp).
        None if pre_part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '~') => pre_part,
        None if pre_part.is_empty() => "",
        None => return Err(malformed()),
    };
    if !pre_part.is_empty() && !dotted_idents(pre) {
        return Err(malformed());
    }
    Ok(Version {
        segments,
        written,
        pre: pre.to_string(),
    })
}

/// go-version's `Compare`: segments compared with missing ones read as zeros; the pre-release
/// only decides between versions with the same number of segments.
fn compare(v: &Version, c: &Version) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let len = v.segments.len().max(c.segments.len());
    let seg = |x: &Version, i: usize| x.segments.get(i).copied().unwrap_or(0);
    for i in 0..len {
        match seg(v, i).cmp(&seg(c, i)) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    if v.segments.len() != c.segments.len() {
        return Ordering::Equal;
    }
    match (v.pre.is_empty(), c.pre.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => v.pre.cmp(&c.pre),
    }
}

/// go-version's rule: a constraint without a pre-release never matches a pre-release version;
/// one with a pre-release matches only pre-releases of the same segments (or final versions).
fn prerelease_ok(v: &Version, c: &Version) -> bool {
    match (v.pre.is_empty(), c.pre.is_empty()) {
        (false, false) => v.segments == c.segments,
        (false, true) => false,
        _ => true,
    }
}

fn satisfies(v: &Version, op: Op, c: &Version) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let ord = compare(v, c);
    match op {
        Op::Eq => ord == Equal,
        Op::Ne => ord != Equal,
        Op::Gt => prerelease_ok(v, c) && ord == Greater,
        Op::Lt => prerelease_ok(v, c) && ord == Less,
        Op::Ge => prerelease_ok(v, c) && ord != Less,
        Op::Le => prerelease_ok(v, c) && ord != Greater,
        Op::Pessimistic => {
            if !prerelease_ok(v, c) || (!c.pre.is_empty() && v.pre.is_empty()) || ord == Less {
                return false;
            }
            let n = c.segments.len();
            if n > v.segments.len() {
                return false;
            }
            // `~> 2.8` fixes the major; `~> 2.8.3` the major and minor; `~> 2` nothing.
            let fixed = c.written.saturating_sub(1);
            c.segments[..fixed] == v.segments[..fixed] && c.segments[n - 1] <= v.segments[n - 1]
        }
    }
}

/// Parses one constraint: `^\s*(op)\s*(version)\s*$`.
fn parse_constraint(text: &str) -> Result<(Op, Version), String> {
    let t = text.trim();
    let (op, rest) = OPS
        .iter()
        .find_map(|(s, op)| t.strip_prefix(s).map(|r| (*op, r)))
        .unwrap_or((Op::Eq, t));
    let rest = rest.trim_start();
    if rest.is_empty() {
        return Err(format!("malformed constraint: {text}"));
    }
    parse_version(rest)
        .map(|v| (op, v))
        .map_err(|e| format!("malformed constraint: {text} ({e})"))
}

/// Whether `version` satisfies `constraints` (go-version syntax, every comma-separated part);
/// an error says what is malformed.
pub(crate) fn matches(constraints: &str, version: &str) -> Result<bool, String> {
    let parsed: Vec<(Op, Version)> = constraints
        .split(',')
        .map(parse_constraint)
        .collect::<Result<_, _>>()?;
    let v = parse_version(version)?;
    Ok(parsed.iter().all(|(op, c)| satisfies(&v, *op, c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(req: &str, v: &str) -> bool {
        matches(req, v).unwrap_or_else(|e| panic!("{req}: {e}"))
    }

    /// Constraints ecspresso users write (its README and issues), against 2.8.7.
    #[test]
    fn what_ecspresso_users_write() {
        for req in [
            ">= 2.0.0, < 3",
            ">= 2.0.0,< 3",
            ">=2.0.0",
            ">= v2.0.0",
            "~> 2.8",
            "~> 2.0",
            "~> 2",
            "~> 2.8.0",
            "< 3.0.0",
            "2.8.7",
            "= 2.8.7",
            "!= 2.8.6",
            ">= 2.8.7-rc1",
            "> 1",
            ">= 1.99.0",
        ] {
            assert!(ok(req, ECSPRESSO_COMPAT), "{req} should accept 2.8.7");
        }
        for req in [
            ">= 3",
            ">= 3.0.0",
            "~> 2.9",
            "~> 2.8.8",
            "< 2.8",
            "!= 2.8.7",
            "= 2.8.6",
            "~> 2.8.7-rc1",
            "~> 3",
        ] {
            assert!(!ok(req, ECSPRESSO_COMPAT), "{req} should refuse 2.8.7");
        }
    }

    #[test]
    fn go_version_semantics() {
        // Missing segments are zeros; extra zero segments compare equal.
        assert!(ok("= 2.8.7.0", "2.8.7"));
        assert!(ok("= 2", "2.0.0"));
        // A pre-release version matches no constraint without a pre-release.
        assert!(!ok(">= 1.0", "2.0.0-beta"));
        assert!(ok(">= 2.0.0-alpha", "2.0.0-beta"));
        // go-version's ~> with one segment only sets a floor.
        assert!(ok("~> 1", "5.0.0"));
        // A pre-release without a dash, and build metadata.
        assert!(ok(">= 2.8.7+build.5", "2.8.7"));
        assert!(ok("< 2.8.7beta", "2.8.6"));
    }

    #[test]
    fn malformed_constraints() {
        for req in [
            "",
            ",",
            ">= 2.0.0,",
            "soon",
            "^2.0",
            "~2.0",
            ">= 2.x",
            "=> 2.0",
            ">= 2..0",
            "2.0.0+",
            "~> 18446744073709551615",
        ] {
            assert!(matches(req, ECSPRESSO_COMPAT).is_err(), "{req:?} parsed");
        }
    }
}
