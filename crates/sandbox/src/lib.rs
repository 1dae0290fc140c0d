//! The sandbox: a local ECS/ECR/ELBv2/CodeDeploy/SSM (and minimal CloudWatch Logs, Application
//! Auto Scaling and IAM) emulator over HTTP, with rollout dynamics and fault injection. A product feature (`cortado sandbox serve`, `--sandbox`) and the test bed.
//! Nothing else in cortado imports it: the rest talks to it through the real SDK over HTTP.
//!
//! Receives [`Options`] (port, time compression, state file, [`Seed`], PRNG seed, faults) and
//! [`Prepare`] requests; hands on a running server ([`Sandbox`]) whose endpoint SDK clients use
//! as `AWS_ENDPOINT_URL`. Time is virtual (`start + real_elapsed * speed`) and the simulation is
//! lazy: each request first advances the world to "now" (see [`world`]).
//!
//! ECS Exec and Session Manager sessions get a data channel at `ws://HOST/v1/data-channel/ID`
//! (see [`exec`]).
//!
//! Control endpoints (JSON): `GET /_sandbox/requests` (request log), `GET /_sandbox/state`,
//! `GET|POST /_sandbox/faults` (see [`faults`] for the syntax), `POST /_sandbox/advance`
//! (`{"seconds": 300}` jumps virtual time), `POST /_sandbox/reset` (back to the seeded state).
//!
//! Layout: one module per emulated service, and in the large ones one per resource ([`ecs`]:
//! clusters, task definitions, services, deployments, tasks; [`elbv2`]: load balancers,
//! target groups, listeners, health; [`codedeploy`]: groups, deployments, target). A service
//! with state in the [`world`] keeps that state in its `mod.rs` and its operations on the
//! world in submodules, so the world imports no operation and no module imports in a cycle.
//! [`server`] is the HTTP front, [`shared`] what its handlers share under the lock,
//! [`seed`] and [`prepare`] fill a new or running world.

mod api;
mod autoscaling;
mod cloudformation;
mod codedeploy;
mod ecr;
mod ecs;
mod elbv2;
mod error;
mod exec;
mod express;
mod faults;
mod iam;
mod logs;
mod minishell;
mod prepare;
mod query;
mod s3;
mod secretsmanager;
mod seed;
mod server;
mod shared;
mod ssm;
mod sts;
#[cfg(test)]
mod test_server;
mod throttle;
mod util;
pub mod world;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use error::Error;
pub use prepare::{PREPARED_SECRET, Prepare, PrepareBlueGreen, PrepareCodeDeploy};
pub use seed::{
    Seed, SeedForward, SeedListener, SeedLoadBalancer, SeedObject, SeedParameter, SeedRule,
    SeedSecret, SeedStack, SeedTargetGroup,
};

pub use elbv2::{DEREGISTRATION_DELAY, HealthCheck};
pub use faults::{ApiFaults, ExecFaults, FailRule, Faults, FaultsPatch, ImageFault};
use seed::apply_seed;
pub use shared::RequestRecord;
use shared::{Inner, Shared};
pub use throttle::{Category, ECS_CATEGORIES, Throttle};
use util::{Clock, Rng, wall_now};
use world::World;

/// How the sandbox runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Time compression: 60 makes a 60 s task start take 1 s.
    pub speed: f64,
    /// JSON state loaded at start (when it exists) and saved at shutdown.
    pub state_file: Option<PathBuf>,
    pub seed: Option<Seed>,
    /// Seed of the PRNG (task IDs, IPs, timings, fault draws).
    pub rng_seed: u64,
    /// The region and the account the sandbox stands in for: its ARNs, its ECR registry
    /// (`ACCOUNT.dkr.ecr.REGION.amazonaws.com`) and its SSM parameter ARNs carry them.
    pub region: String,
    pub account: String,
    pub faults: Faults,
    /// `Throttle::Aws`: ECS's documented token buckets per action category, refilled in wall
    /// time (see [`throttle`]); requests over a bucket get ThrottlingException.
    pub throttle: Throttle,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 0,
            speed: 1.0,
            state_file: None,
            seed: None,
            rng_seed: 1,
            region: "us-east-1".into(),
            account: world::ACCOUNT.into(),
            faults: Faults::default(),
            throttle: Throttle::Off,
        }
    }
}

/// A running sandbox. Dropping it stops the server (without saving state: use
/// [`Sandbox::shutdown`] for that).
pub struct Sandbox {
    endpoint: String,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    state_file: Option<PathBuf>,
}

/// In-process access to a running sandbox, for tests and the CLI.
#[derive(Clone)]
pub struct Control {
    shared: Arc<Shared>,
}

impl Control {
    /// Replace all faults.
    pub fn set_faults(&self, faults: Faults) {
        let mut inner = self.shared.lock();
        inner.sync();
        server::set_faults(&mut inner, faults);
    }

    /// Merge a partial fault update (what `POST /_sandbox/faults` does).
    pub fn update_faults(&self, patch: FaultsPatch) {
        let mut inner = self.shared.lock();
        inner.sync();
        inner.world.faults.apply(patch);
        inner.world.check_alarms();
    }

    pub fn faults(&self) -> Faults {
        self.shared.lock().world.faults.clone()
    }

    /// The request log so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.clone()
    }

    /// A JSON snapshot of the world (as `GET /_sandbox/state`).
    pub fn world(&self) -> Value {
        let mut inner = self.shared.lock();
        inner.sync();
        state_json(&inner)
    }

    /// Jump virtual time forward.
    pub fn advance(&self, seconds: f64) {
        let mut inner = self.shared.lock();
        inner.clock.skip(seconds);
        inner.sync();
    }

    /// Current virtual time (epoch seconds).
    pub fn now(&self) -> f64 {
        self.shared.lock().clock.now()
    }

    /// Run `f` on the world after advancing it (benchmarks, white-box checks).
    pub fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let mut inner = self.shared.lock();
        inner.sync();
        f(&mut inner.world)
    }
}

impl Sandbox {
    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    pub fn control(&self) -> Control {
        Control {
            shared: self.shared.clone(),
        }
    }

    /// Stop the server and save the state file when one is set.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(path) = self.state_file.clone() {
            let mut inner = self.shared.lock();
            inner.sync();
            save_state(&inner.world, &path)?;
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The JSON of `GET /_sandbox/state`.
fn state_json(inner: &Inner) -> Value {
    let w = &inner.world;
    let services: Vec<Value> = w
        .services
        .keys()
        .map(|k| w.describe_service(k, true))
        .collect();
    let tasks: Vec<Value> = w
        .tasks
        .values()
        .map(|t| w.describe_task(t, false))
        .collect();
    let sds: Vec<Value> = w.sds.values().map(|sd| w.describe_sd(sd)).collect();
    let taskdefs: Vec<Value> = w.taskdefs.values().flatten().cloned().collect();
    json!({
        "now": w.now,
        "speed": inner.clock.speed(),
        "throttle": if inner.throttle.is_some() { "aws" } else { "off" },
        "region": w.region,
        "clusters": w.clusters.values().map(|c| &c.arn).collect::<Vec<_>>(),
        "taskDefinitions": taskdefs,
        "services": services,
        "serviceDeployments": sds,
        "tasks": tasks,
        "faults": w.faults,
        "pendingEvents": w.queue.len(),
        "eventsProcessed": w.events_processed,
    })
}

fn save_state(world: &World, path: &Path) -> Result<(), Error> {
    let text = serde_json::to_string(world)
        .map_err(|e| Error::internal(format!("cannot serialize the sandbox state: {e}")))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, &e, "writing the sandbox state"))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, &e, "writing the sandbox state"))
}

fn load_state(path: &Path) -> Result<Option<World>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, &e, "reading the sandbox state")),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::msg(format!("the sandbox state file is not valid: {e}"))
            .at_file(path)
            .with_hint("delete it to start from an empty (or seeded) sandbox")
    })
}

/// Start the server on the current tokio runtime.
pub async fn start(opts: Options) -> Result<Sandbox, Error> {
    let wall = wall_now();
    let loaded = match &opts.state_file {
        Some(p) => load_state(p)?,
        None => None,
    };
    let (world, base) = match loaded {
        Some(w) => {
            let base = w.now.max(wall);
            (w, base)
        }
        None => {
            let mut w = World::new(&opts.region, opts.rng_seed, wall).in_account(&opts.account);
            if let Some(seed) = &opts.seed {
                apply_seed(&mut w, seed, wall)?;
            }
            (w, wall)
        }
    };
    let mut world = world;
    if opts.faults != Faults::default() {
        world.faults = opts.faults.clone();
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port))
        .await
        .map_err(|e| {
            Error::msg(format!(
                "the sandbox cannot listen on 127.0.0.1:{}: {e}",
                opts.port
            ))
            .with_hint("pick another port with --port, or 0 for a free one")
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::msg(format!("the sandbox has no local address: {e}")))?;
    let inner = Inner {
        initial: world.clone(),
        world,
        clock: Clock::new(base, opts.speed),
        log: Vec::new(),
        seq: 0,
        api_rng: Rng::new(opts.rng_seed ^ 0x5EED_FA17),
        throttle: (opts.throttle == Throttle::Aws).then(throttle::Buckets::default),
        wall_origin: std::time::Instant::now(),
        exec: exec::Sessions::new(format!("ws://{addr}")),
    };
    let shared = Arc::new(Shared {
        inner: Mutex::new(inner),
    });
    let router = axum::Router::new()
        .route(
            "/v1/data-channel/{id}",
            axum::routing::get(exec::data_channel),
        )
        .fallback(server::handle)
        .with_state(shared.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(Sandbox {
        endpoint: format!("http://{addr}"),
        shared,
        stop: Some(tx),
        task: Some(task),
        state_file: opts.state_file,
    })
}

/// Run in the foreground until SIGINT/SIGTERM, then save the state file when set.
pub async fn serve(opts: Options, prepare: Vec<Prepare>) -> Result<(), Error> {
    let region = opts.region.clone();
    let sandbox = start(opts).await?;
    for p in &prepare {
        for line in p.apply(&sandbox)? {
            eprintln!("sandbox: created {line}");
        }
    }
    serve_started(sandbox, &region).await
}

/// [`serve`] for a sandbox already started (and prepared): says where it listens, runs until
/// SIGINT/SIGTERM, then saves the state file when set.
pub async fn serve_started(sandbox: Sandbox, region: &str) -> Result<(), Error> {
    let ep = sandbox.endpoint();
    eprintln!("cortado sandbox listening on {ep}");
    eprintln!(
        "hint: export AWS_ENDPOINT_URL={ep} AWS_REGION={region} AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox"
    );
    wait_for_signal().await;
    eprintln!("sandbox: shutting down");
    sandbox.shutdown().await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
