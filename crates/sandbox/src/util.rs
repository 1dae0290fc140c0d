//! Small helpers shared by the sandbox: the seeded PRNG, the virtual clock and JSON accessors.
//!
//! Receives seeds and wall time; hands on deterministic random draws, virtual timestamps (epoch
//! seconds as `f64`) and typed reads of request members that fail with AWS's error shape.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::api::ApiError;

/// SplitMix64: tiny, fast, good enough for IDs, IPs and fault draws. Deterministic per seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// `n` lowercase hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(n);
        s
    }

    /// `n` characters of the URL-safe base64 alphabet (`A-Z a-z 0-9 - _`).
    pub fn url_safe(&mut self, n: usize) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..n)
            .map(|_| char::from(ALPHABET[(self.next_u64() % 64) as usize]))
            .collect()
    }

    /// `n` decimal digits, the first one non-zero.
    pub fn digits(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        for i in 0..n {
            let d = self.next_u64() % if i == 0 { 9 } else { 10 };
            s.push(char::from(b'0' + d as u8 + u8::from(i == 0)));
        }
        s
    }
}

/// Wall-clock epoch seconds.
pub fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Virtual time: `base + real_elapsed * speed + skipped`.
#[derive(Debug, Clone)]
pub struct Clock {
    base: f64,
    started: Instant,
    speed: f64,
    skipped: f64,
}

impl Clock {
    pub fn new(base: f64, speed: f64) -> Self {
        let speed = if speed.is_finite() && speed > 0.0 {
            speed
        } else {
            1.0
        };
        Clock {
            base,
            started: Instant::now(),
            speed,
            skipped: 0.0,
        }
    }

    pub fn now(&self) -> f64 {
        self.base + self.started.elapsed().as_secs_f64() * self.speed + self.skipped
    }

    /// Jump virtual time forward (control endpoint `/_sandbox/advance`).
    pub fn skip(&mut self, seconds: f64) {
        if seconds.is_finite() && seconds > 0.0 {
            self.skipped += seconds;
        }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }
}

/// Round a timestamp to milliseconds for output.
pub fn ts(t: f64) -> Value {
    let ms = (t * 1000.0).round() / 1000.0;
    serde_json::Number::from_f64(ms)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

pub fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::client("InvalidParameterException", msg)
}

pub fn client(msg: impl Into<String>) -> ApiError {
    ApiError::client("ClientException", msg)
}

/// Typed reads of request members.
pub trait Get {
    fn str_opt(&self, key: &str) -> Result<Option<String>, ApiError>;
    fn str_req(&self, key: &str) -> Result<String, ApiError>;
    fn int_opt(&self, key: &str) -> Result<Option<i64>, ApiError>;
    fn bool_opt(&self, key: &str) -> Result<Option<bool>, ApiError>;
    fn str_list(&self, key: &str) -> Result<Vec<String>, ApiError>;
}

impl Get for Value {
    fn str_opt(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(format!(
                "Invalid parameter: '{key}' must be a string, got {other}"
            ))),
        }
    }

    fn str_req(&self, key: &str) -> Result<String, ApiError> {
        match self.str_opt(key)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(invalid(format!("Invalid parameter: '{key}' is required."))),
        }
    }

    fn int_opt(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| invalid(format!("Invalid parameter: '{key}' must be an integer."))),
            Some(other) => Err(invalid(format!(
                "Invalid parameter: '{key}' must be an integer, got {other}"
            ))),
        }
    }

    fn bool_opt(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(invalid(format!(
                "Invalid parameter: '{key}' must be a boolean, got {other}"
            ))),
        }
    }

    fn str_list(&self, key: &str) -> Result<Vec<String>, ApiError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        invalid(format!(
                            "Invalid parameter: '{key}' must be a list of strings."
                        ))
                    })
                })
                .collect(),
            Some(_) => Err(invalid(format!(
                "Invalid parameter: '{key}' must be a list."
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_bounded() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        assert_eq!(a.hex(32).len(), 32);
        let d = a.digits(19);
        assert_eq!(d.len(), 19);
        assert!(!d.starts_with('0'));
        for _ in 0..1000 {
            let x = a.range(2.0, 3.0);
            assert!((2.0..3.0).contains(&x));
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}
