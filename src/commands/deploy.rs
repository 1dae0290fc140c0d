//! `cortado deploy`: flags into [`DeployFlags`], the engine's `deploy` (with auto scaling
//! suspended and resumed around it by the core's [`autoscaling`]), the result out.

use super::session;
use crate::deploy::autoscaling::{self, AutoScaling};
use crate::deploy::controller::seam::DeployFlags;
use crate::deploy::engine::{Engine, ReleaseRun};
use crate::deploy::gate::Until;
use crate::error::{ExitCode, Result};
use crate::release::DEFAULT_PARALLEL;
use crate::report::timeline::Recorder;
use crate::report::{Format, Printer};
use crate::settings::Settings;

/// The auto scaling flags of `deploy` and `scale` (ecspresso's).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AutoScalingArgs {
    /// Suspend the service's auto scaling first (with --resume-auto-scaling: for this command
    /// only).
    #[arg(long)]
    pub suspend_auto_scaling: bool,
    /// Resume the service's auto scaling first (or afterwards, with the above).
    #[arg(long)]
    pub resume_auto_scaling: bool,
    /// Set the minimum capacity of the service's Application Auto Scaling target first.
    #[arg(long, value_name = "N")]
    pub auto_scaling_min: Option<i32>,
    /// Set the maximum capacity of the service's Application Auto Scaling target first.
    #[arg(long, value_name = "N")]
    pub auto_scaling_max: Option<i32>,
}

impl AutoScalingArgs {
    /// Whether any of the flags was given.
    pub(crate) fn any(&self) -> bool {
        self.suspend_auto_scaling
            || self.resume_auto_scaling
            || self.auto_scaling_min.is_some()
            || self.auto_scaling_max.is_some()
    }

    /// Suspending or resuming, checked against the command's other flags.
    pub(crate) fn mode(&self, flags: &DeployFlags) -> Result<Option<AutoScaling>> {
        AutoScaling::from_flags(self.suspend_auto_scaling, self.resume_auto_scaling, flags)
    }

    /// The capacities asked for, checked.
    pub(crate) fn capacity(&self) -> Result<Option<(Option<i32>, Option<i32>)>> {
        autoscaling::capacity_of(self.auto_scaling_min, self.auto_scaling_max)
    }
}

#[derive(Debug, clap::Args, Default)]
pub struct DeployArgs {
    /// Print the plan and call nothing that changes anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Run `cortado verify` first; any NG stops the deploy before its first write.
    #[arg(long)]
    pub verify: bool,
    /// Start the deployment and exit without following it.
    #[arg(long)]
    pub no_wait: bool,
    /// At most this many services in flight at once (default: the release's, else 16).
    #[arg(long, value_name = "N", env = "CORTADO_PARALLEL", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: Option<u32>,
    /// What a failed service means for the others.
    #[arg(long, value_enum, value_name = "POLICY", env = "CORTADO_ON_FAILURE")]
    pub on_failure: Option<OnFailureArg>,
    /// Keep the task definition the service runs; update only the service.
    #[arg(long, conflicts_with_all = ["latest_task_definition", "revision", "force_register"])]
    pub skip_task_definition: bool,
    /// Deploy the newest ACTIVE revision of the family instead of the rendered one.
    #[arg(long, conflicts_with_all = ["revision", "force_register"])]
    pub latest_task_definition: bool,
    /// Deploy this revision of the family.
    #[arg(long, value_name = "N", conflicts_with = "force_register")]
    pub revision: Option<i32>,
    /// Register a new revision even when the rendered definition equals the running one.
    #[arg(long)]
    pub force_register: bool,
    /// Start a new deployment even when nothing changed (fresh tasks, same definition).
    #[arg(long)]
    pub force_new_deployment: bool,
    /// Set the desired count.
    #[arg(long, value_name = "N")]
    pub tasks: Option<i32>,
    /// Register the task definition only; leave the service alone.
    #[arg(long)]
    pub no_update_service: bool,
    /// Do not roll back when the deployment fails.
    #[arg(long)]
    pub no_rollback: bool,
    /// When a rollback counts as done (overrides the config's `rollout.wait_rollback`).
    #[arg(long, value_enum, value_name = "WHEN")]
    pub wait_rollback: Option<super::rollback::WaitRollbackArg>,
    /// Stop following at a pause; go on later with `cortado continue` (or `rollback`).
    #[arg(long, value_enum, value_name = "POINT", conflicts_with_all = ["no_wait", "wait_until"])]
    pub until: Option<UntilArg>,
    /// ecspresso's: `stable`/`deployed` (the default), `paused`, `terminated` or `ecs:STAGE`.
    #[arg(long, value_name = "WHEN", value_parser = parse_wait_until, conflicts_with = "no_wait")]
    pub wait_until: Option<Until>,
    #[command(flatten)]
    pub auto_scaling: AutoScalingArgs,
    /// Deploy only the steps a change since this git ref touches (see `cortado affected`).
    #[arg(long, value_name = "REF")]
    pub affected_since: Option<String>,
    /// Send no notification (the configs' and the release's `notify:`).
    #[arg(long, env = "CORTADO_NO_NOTIFY")]
    pub no_notify: bool,
    /// Log lines shown per failed task's container (default 20; 0: none).
    #[arg(long, value_name = "N", env = "CORTADO_LOG_LINES", value_parser = clap::value_parser!(u32).range(0..=10000))]
    pub log_lines: Option<u32>,
}

/// Where `deploy --until` stops following.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UntilArg {
    /// The first PAUSE hook no gate answers (typically after test traffic moved to green).
    #[value(name = "test-traffic", alias = "pause")]
    TestTraffic,
}

/// `--wait-until stable|deployed|terminated|ecs:STAGE`.
fn parse_wait_until(s: &str) -> std::result::Result<Until, String> {
    use crate::deploy::core::state::LifecycleStage;
    match s {
        "stable" | "deployed" => Ok(Until::Done),
        // ecspresso pre-v3's name for `--until test-traffic`.
        "paused" => Ok(Until::Pause),
        "terminated" => Ok(Until::Terminated),
        _ => match s.strip_prefix("ecs:").map(LifecycleStage::parse) {
            Some(LifecycleStage::Unknown(x)) => Err(format!(
                "unknown ECS lifecycle stage {x:?}: use one of RECONCILE_SERVICE, PRE_SCALE_UP, \
                 SCALE_UP, POST_SCALE_UP, TEST_TRAFFIC_SHIFT, POST_TEST_TRAFFIC_SHIFT, \
                 PRODUCTION_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT, BAKE_TIME, CLEAN_UP"
            )),
            Some(LifecycleStage::Absent) | None => Err(format!(
                "{s:?}: expected stable, deployed, paused, terminated or ecs:STAGE (e.g. ecs:POST_TEST_TRAFFIC_SHIFT)"
            )),
            Some(stage) => Ok(Until::Stage(stage)),
        },
    }
}

/// `--on-failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnFailureArg {
    /// It alone rolls back; services that do not depend on it go on (the default).
    RollbackFailed,
    /// All or nothing: every service the run changed returns to its previous revision.
    RollbackAll,
    /// Nothing new starts.
    Stop,
}

impl From<OnFailureArg> for crate::release::OnFailure {
    fn from(a: OnFailureArg) -> Self {
        match a {
            OnFailureArg::RollbackFailed => Self::RollbackFailed,
            OnFailureArg::RollbackAll => Self::RollbackAll,
            OnFailureArg::Stop => Self::Stop,
        }
    }
}

impl From<&DeployArgs> for DeployFlags {
    fn from(a: &DeployArgs) -> Self {
        DeployFlags {
            dry_run: a.dry_run,
            no_wait: a.no_wait,
            skip_task_definition: a.skip_task_definition,
            latest_task_definition: a.latest_task_definition,
            revision: a.revision,
            force_register: a.force_register,
            force_new_deployment: a.force_new_deployment,
            tasks: a.tasks,
            no_update_service: a.no_update_service,
            no_rollback: a.no_rollback,
            keep_attributes: false,
            log_lines: a.log_lines.map(|n| n as usize),
            until: match (a.until, &a.wait_until) {
                (Some(UntilArg::TestTraffic), _) => Until::Pause,
                (None, Some(u)) => u.clone(),
                (None, None) => Until::Done,
            },
        }
    }
}

pub async fn run(
    settings: &Settings,
    printer: &mut Printer,
    args: &DeployArgs,
) -> Result<ExitCode> {
    let Some(since) = &args.affected_since else {
        return run_with(settings, printer, args, DeployFlags::from(args)).await;
    };
    // Only the touched steps, in the release's order, before anything connects.
    let (release, _, found) = super::affected::detect(settings, since, None)?;
    for w in &found.warnings {
        printer.diagnostic(w);
    }
    let keep = found.steps();
    let names: Vec<&str> = keep
        .iter()
        .map(|i| release.steps[*i].name.as_str())
        .collect();
    if keep.is_empty() {
        printer.info(&format!(
            "nothing is affected by the changes since {since}: nothing to deploy"
        ));
        let run = crate::deploy::result::RunResult::new(
            crate::deploy::result::Operation::Deploy,
            Vec::new(),
        );
        if printer.format == Format::Json {
            return crate::report::result::finish(printer, &run);
        }
        // The step outputs still say what happened (`status: no-change`).
        if crate::report::github::is_actions() {
            let outputs = crate::report::github::DeployOutputs::from_result(&run);
            crate::report::github::write_outputs_from_env(&outputs.pairs())?;
        }
        return Ok(ExitCode::Success);
    }
    printer.info(&format!(
        "affected since {since}: {} of {} steps ({})",
        keep.len(),
        release.steps.len(),
        names.join(", ")
    ));
    let mut only = settings.clone();
    only.configs = Vec::new();
    only.release_file = Some(release.only(&keep));
    run_with(&only, printer, args, DeployFlags::from(args)).await
}

/// A deploy with `flags` (from `args`, or adjusted by the commands that are deploys in
/// ecspresso's sense: `refresh`, `scale --dry-run`).
pub async fn run_with(
    settings: &Settings,
    printer: &mut Printer,
    args: &DeployArgs,
    flags: DeployFlags,
) -> Result<ExitCode> {
    // The flags are checked before anything connects.
    args.auto_scaling.mode(&flags)?;
    args.auto_scaling.capacity()?;
    let started = now();
    let (locals, s) = session::open_all(settings, printer).await?;
    run_loaded(settings, printer, args, flags, &locals, &s, started).await
}

/// A deploy of configs already loaded (and, for `promote`, with images overridden) over an
/// open session: the one path every deploy takes from here on.
pub(crate) async fn run_loaded(
    settings: &Settings,
    printer: &mut Printer,
    args: &DeployArgs,
    flags: DeployFlags,
    locals: &[crate::deploy::local::Local],
    s: &session::Session,
    started: f64,
) -> Result<ExitCode> {
    let auto_scaling = args.auto_scaling.mode(&flags)?;
    let capacity = args.auto_scaling.capacity()?;
    if args.verify {
        verify_first(printer, locals, s).await?;
    }
    let emitter = session::emitter_for(printer);
    let recorder = Recorder::subscribe(&emitter, started);
    let mut engine = Engine::new(&s.clients, &emitter, session::cancel_on_signals());
    engine.timeout = settings.timeout;
    engine.wait_rollback = args.wait_rollback.map(Into::into);
    let release = settings.release()?;
    let release = ReleaseRun {
        steps: &release.steps,
        locals,
        parallel: args
            .parallel
            .map(|n| n as usize)
            .or(release.parallel)
            .unwrap_or(DEFAULT_PARALLEL),
        on_failure: args
            .on_failure
            .map(Into::into)
            .or(release.on_failure)
            .unwrap_or_default(),
    };
    let suspended =
        scaling_before(printer, s, &release, capacity, auto_scaling, flags.dry_run).await?;
    // After every local check passed, the targets hear of the start (auto scaling set
    // aside first, so that every way out of the deploy below tells them how it ended).
    let notifier = notifier_for(settings, printer, args, &flags, &release);
    if let Some(n) = &notifier {
        for w in n.started().await {
            printer.diagnostic(&w);
        }
    }
    let run = match engine.deploy(&release, &flags).await {
        Ok(run) => run,
        Err(mut e) => {
            let why = "the deploy stopped with an error";
            e.diagnostics
                .extend(autoscaling::still_suspended(&suspended, why));
            if let Some(n) = &notifier {
                let text = e
                    .diagnostics
                    .first()
                    .map_or_else(|| why.to_string(), |d| d.message.clone());
                let ends = Default::default();
                for w in n.finished(&ends, &text, e.exit_code() as u8).await {
                    printer.diagnostic(&w);
                }
            }
            return Err(e);
        }
    };
    let say = |m: &str| printer.info(m);
    let (warnings, resume_failed) =
        autoscaling::resume_after(&s.clients, &say, &suspended, &run).await;
    for w in &warnings {
        printer.diagnostic(w);
    }
    if flags.dry_run && printer.format == Format::Text {
        for p in run.services.iter().filter_map(|r| r.plan.as_ref()) {
            printer.out(&p.text(printer.color()));
        }
    }
    let code = crate::report::result::finish_with(printer, &run, &recorder.timelines(now()))?;
    if let Some(n) = &notifier {
        let why = "the deploy stopped with an error (see the run's log)";
        let ends = crate::notify::ends_of(&run);
        for w in n.finished(&ends, why, code as u8).await {
            printer.diagnostic(&w);
        }
    }
    Ok(match resume_failed {
        // The deploy went well but its service's scaling stays off: an AWS error of its own.
        Some(d) if code == ExitCode::Success => {
            printer.diagnostic(&d);
            ExitCode::Aws
        }
        Some(d) => {
            printer.diagnostic(&d);
            code
        }
        None => code,
    })
}

/// `deploy --verify`: every config's checks before anything changes; a problem stops the deploy.
async fn verify_first(
    printer: &mut Printer,
    locals: &[crate::deploy::local::Local],
    s: &session::Session,
) -> Result<()> {
    let cache = super::verify::CheckCache::new(true);
    let mut all = Vec::new();
    for local in locals {
        all.push((
            local,
            super::verify::checks(&s.clients, local, &cache).await?,
        ));
    }
    let ng = all
        .iter()
        .flat_map(|(_, c)| c)
        .filter(|c| c.status == super::verify::Status::Ng)
        .count();
    if ng > 0 {
        super::verify::report(printer, &all);
        return Err(crate::error::Error::input(
            crate::error::Diagnostic::error(format!(
                "verify found {ng} problem(s): nothing was deployed"
            ))
            .hint("fix what the NG lines say, or run `cortado verify` to see them again"),
        ));
    }
    Ok(())
}

/// Auto scaling before the update: the capacities asked for, then suspending (or resuming)
/// the deployed services' scaling. Hands on the services whose scaling was suspended.
async fn scaling_before(
    printer: &Printer,
    s: &session::Session,
    release: &ReleaseRun<'_>,
    capacity: Option<(Option<i32>, Option<i32>)>,
    auto_scaling: Option<AutoScaling>,
    dry_run: bool,
) -> Result<Vec<(String, String)>> {
    let say = |m: &str| printer.info(m);
    let deployed = autoscaling::deployed_services(release);
    if let Some(c) = capacity {
        autoscaling::set_capacity(&s.clients, &say, &deployed, c, dry_run).await?;
    }
    match auto_scaling {
        Some(mode) => mode.before(&s.clients, &say, &deployed, dry_run).await,
        None => Ok(Vec::new()),
    }
}

/// Who hears about this deploy (the configs' and the release's `notify:`), or `None`. A dry run
/// deploys nothing and --no-update-service only registers a revision: neither notifies.
fn notifier_for(
    settings: &Settings,
    printer: &Printer,
    args: &DeployArgs,
    flags: &DeployFlags,
    release: &ReleaseRun<'_>,
) -> Option<crate::notify::Notifier> {
    if flags.dry_run || flags.no_update_service || args.no_notify {
        return None;
    }
    let release_notify = settings
        .release_file
        .as_ref()
        .and_then(|r| r.notify.as_ref());
    Some(crate::notify::for_run(
        release,
        release_notify,
        printer.secrets(),
    ))
    .filter(|n| !n.is_empty())
}

pub(crate) fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
