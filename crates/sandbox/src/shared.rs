//! What the server's handlers share under one lock: the world, the clock, the request log,
//! the API's PRNG, the throttle buckets and the exec sessions.
//!
//! Receives the seeded world and the server's settings from [`crate::start`]; hands on the
//! lock to the HTTP front ([`crate::server`]), the exec handlers ([`crate::exec`]) and the
//! in-process [`crate::Control`].

use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::exec::Sessions;
use crate::throttle::Buckets;
use crate::util::{Clock, Rng};
use crate::world::World;

/// One line of the request log (`GET /_sandbox/requests`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub seq: u64,
    /// Virtual time (epoch seconds) when the request was answered.
    pub virtual_time: f64,
    /// Wall-clock epoch seconds.
    pub wall_time: f64,
    /// `ecs`, `ecr`, `elbv2`, `codedeploy`, `ssm`, `logs`, `application-autoscaling`, `iam`,
    /// or `unknown`.
    pub service: String,
    pub operation: String,
    pub mutating: bool,
    /// HTTP status; 0 for a dropped connection.
    pub status: u16,
    /// AWS error code when the answer was an error.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// Everything behind the lock.
pub struct Inner {
    pub world: World,
    pub clock: Clock,
    pub log: Vec<RequestRecord>,
    /// Sequence number of the last logged request (the log keeps the newest entries).
    pub seq: u64,
    pub api_rng: Rng,
    /// The world as it was after seeding, for `/_sandbox/reset`.
    pub initial: World,
    /// ECS's documented token buckets when throttling is on (`--throttle aws`); they refill
    /// in wall time from `wall_origin`, whatever the speed (see [`crate::throttle`]).
    pub throttle: Option<Buckets>,
    pub wall_origin: std::time::Instant,
    /// ECS Exec / Session Manager sessions (not part of the saved state).
    pub exec: Sessions,
}

pub struct Shared {
    pub inner: Mutex<Inner>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock would be a bug; keep serving with the data as it is.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// Advance the world to the clock's now.
    pub fn sync(&mut self) {
        let now = self.clock.now();
        self.world.advance(now);
    }
}
