//! What every command that talks to AWS shares: loading and validating the configs (before
//! any AWS call), connecting (or starting the embedded sandbox and preparing it), wiring the
//! event sinks, and Ctrl-C / SIGTERM.

use tokio::sync::watch;

use crate::aws::{AwsSettings, Clients};
use crate::deploy::event::Emitter;
use crate::deploy::local::{self, Local};
use crate::error::Result;
use crate::render::RenderContext;
use crate::render::plugins::Lookups;
use crate::report::{Format, Printer, lines};
use crate::settings::Settings;
use cortado_sandbox as sandbox;

/// A connection for the run, and the sandbox behind it when `--sandbox` is on.
pub struct Session {
    pub clients: Clients,
    /// Kept alive for the run; dropped at the end.
    _sandbox: Option<sandbox::Sandbox>,
}

/// Renders and validates every config of the run (the one loading path, shared with
/// `validate`); all findings of all configs are reported before anything is sent to AWS.
pub fn load_locals(
    settings: &Settings,
    ctx: &RenderContext,
    printer: &Printer,
) -> Result<Vec<Local>> {
    let loaded = local::load_all(ctx, &settings.config_paths()?, &lookups(settings));
    if loaded.errors() == 0 {
        for w in &loaded.findings {
            printer.diagnostic(w);
        }
    }
    loaded.into_locals()
}

/// Loads and validates the configs of the run, then connects (or starts the sandbox). The
/// services the commands that look at or change services (status, wait, rollback, diff, ...)
/// act on: a release's one-off task configs (migrations) are checked with the others but left
/// out, since no service of theirs is deployed.
pub async fn open(settings: &Settings, printer: &mut Printer) -> Result<(Vec<Local>, Session)> {
    let (mut locals, s) = open_all(settings, printer).await?;
    if let Some(release) = &settings.release_file {
        let deployed = release.deployed_configs();
        locals.retain(|l| deployed.contains(&l.config.path));
    }
    Ok((locals, s))
}

/// [`open`] with every config of the run, a release's one-off task configs included (deploy,
/// verify and register use them).
pub async fn open_all(settings: &Settings, printer: &mut Printer) -> Result<(Vec<Local>, Session)> {
    let ctx = settings.render_context()?;
    printer.set_secrets(ctx.secrets.clone());
    let locals = load_locals(settings, &ctx, printer)?;
    let s = connect(settings, &locals, printer).await?;
    Ok((locals, s))
}

/// The event stream of a run with this run's sinks subscribed: plain lines on stderr or a
/// live view on a terminal (text), JSON lines on stdout (json), GitHub Actions commands on
/// stdout inside Actions with text output. Progress only: results come from the engine.
pub fn emitter_for(printer: &Printer) -> Emitter {
    let emitter = Emitter::new();
    let p = printer.clone();
    match printer.format {
        Format::Json => emitter.subscribe(move |e| p.out_json_line(&lines::json_value(e))),
        Format::Text => {
            if crate::report::github::is_actions() {
                let mut sink = crate::report::github::actions_sink(std::io::stdout(), p.secrets());
                emitter.subscribe(move |e| {
                    // Secrets found since the last line are announced first.
                    p.announce();
                    sink(e)
                });
            } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                let mut live = crate::report::live::LiveView::new(p.secrets());
                emitter.subscribe(move |e| live.handle(e));
            } else {
                emitter.subscribe(move |e| p.info(&lines::plain(e)));
            }
        }
    }
    emitter
}

/// The plugin lookups of a run (one per run: one SDK client set, one cache), with the run's
/// AWS settings: `--region` (else each config's `region:`), AWS_ENDPOINT_URL when set, the same
/// retry budget as [`connect`]. With `--sandbox` no lookup reaches AWS: the embedded sandbox
/// starts empty (no parameters, secrets, stacks or S3 objects), so those lookups fail saying
/// so; local tfstate files still work.
pub fn lookups(settings: &Settings) -> Lookups {
    if settings.sandbox.is_some() {
        return Lookups::sandboxed(settings.region.clone());
    }
    Lookups::new(AwsSettings {
        region: settings.region.clone(),
        endpoint_url: std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|u| !u.trim().is_empty()),
        static_credentials: false,
        max_attempts: 8,
        assume_role_arn: settings.assume_role_arn.clone(),
    })
}

/// The lookups of `sandbox serve --prepare`: answered by the sandbox at `endpoint` (what its
/// seed holds), with the run's region, and never by AWS.
pub fn sandbox_lookups(settings: &Settings, endpoint: &str) -> Lookups {
    Lookups::new(AwsSettings {
        region: settings.region.clone(),
        endpoint_url: Some(endpoint.to_string()),
        static_credentials: true,
        max_attempts: 2,
        assume_role_arn: None,
    })
}

/// Connects to AWS, or starts and prepares the embedded sandbox.
pub async fn connect(settings: &Settings, locals: &[Local], printer: &Printer) -> Result<Session> {
    let region = settings
        .region
        .clone()
        .or_else(|| locals.iter().find_map(|l| l.config.region.clone()));
    let Some(speed) = settings.sandbox else {
        let clients = crate::aws::connect(&AwsSettings {
            region,
            endpoint_url: None,
            static_credentials: false,
            max_attempts: 8,
            assume_role_arn: settings.assume_role_arn.clone(),
        })
        .await?;
        trace_requests(&clients, printer);
        return Ok(Session {
            clients,
            _sandbox: None,
        });
    };
    let region = region.unwrap_or_else(|| "us-east-1".to_string());
    let sb = sandbox::start(sandbox::Options {
        speed,
        region: region.clone(),
        account: sandbox_account(locals),
        throttle: if settings.sandbox_throttle {
            sandbox::Throttle::Aws
        } else {
            sandbox::Throttle::Off
        },
        ..sandbox::Options::default()
    })
    .await?;
    for l in locals {
        for line in prepare_for(l).apply(&sb)? {
            printer.info(&format!("sandbox: created {line}"));
        }
    }
    printer.info(&format!(
        "sandbox: ECS/ECR/ELBv2 emulator at {} (time x{speed}{})",
        sb.endpoint(),
        if settings.sandbox_throttle {
            ", ECS request buckets on"
        } else {
            ""
        }
    ));
    let clients = crate::aws::connect(&AwsSettings {
        region: Some(region),
        endpoint_url: Some(sb.endpoint()),
        static_credentials: true,
        max_attempts: 8,
        assume_role_arn: None,
    })
    .await?;
    trace_requests(&clients, printer);
    Ok(Session {
        clients,
        _sandbox: Some(sb),
    })
}

/// `--verbose`: each AWS request the run makes is named on stderr (`aws: ecs.UpdateService`)
/// as it is made.
fn trace_requests(clients: &Clients, printer: &Printer) {
    if printer.verbose() == 0 {
        return;
    }
    let p = printer.clone();
    clients.trace(move |call| p.info(&format!("aws: {call}")));
}

/// The account a sandbox stands in for: the one the first config's definitions name (an ECR
/// image's registry, a role, target group or secret ARN), so that its images are the
/// sandbox's own registry's; else the sandbox's default. A sandbox is one account: images of
/// another account's registry are not its own (they pull, and `verify` cannot see them).
pub fn sandbox_account(locals: &[Local]) -> String {
    locals
        .iter()
        .find_map(account_of)
        .unwrap_or_else(|| sandbox::Options::default().account)
}

/// The AWS account a config's definitions name, if any.
fn account_of(l: &Local) -> Option<String> {
    let twelve =
        |s: &str| (s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.to_string());
    let images = l
        .task
        .container_definitions()
        .iter()
        .filter_map(|c| c.image());
    let from_images = images
        .filter_map(|i| i.split_once(".dkr.ecr.").map(|(account, _)| account))
        .find_map(twelve);
    from_images.or_else(|| {
        let arns = [l.task.execution_role_arn(), l.task.task_role_arn()]
            .into_iter()
            .flatten()
            .map(str::to_string)
            .chain(l.service.iter().flat_map(|s| {
                s.load_balancers()
                    .iter()
                    .filter_map(|lb| lb.target_group_arn().map(str::to_string))
            }))
            .collect::<Vec<_>>();
        arns.iter()
            .filter(|a| a.starts_with("arn:"))
            .find_map(|a| a.split(':').nth(4).and_then(twelve))
    })
}

/// The places a config's containers read secrets from (`secrets[].valueFrom`).
fn secret_sources(l: &Local) -> Vec<crate::aws::verify::SecretSource> {
    l.task
        .container_definitions()
        .iter()
        .flat_map(|c| c.secrets())
        .map(|s| crate::aws::verify::SecretSource::of(s.value_from()))
        .collect()
}

/// What a config needs to exist in the sandbox: its cluster, the target groups its service
/// definition names (with the alternate target groups and listener rules of blue/green load
/// balancers), the images its task definition runs, its log groups and roles, and the SSM
/// parameters (and Secrets Manager secrets) its containers' secrets read.
pub fn prepare_for(l: &Local) -> sandbox::Prepare {
    let target_groups: Vec<String> = l
        .service
        .as_ref()
        .map(|s| {
            s.load_balancers()
                .iter()
                .filter_map(|lb| lb.target_group_arn().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let images = l
        .task
        .container_definitions()
        .iter()
        .filter_map(|c| c.image().map(str::to_string))
        .collect();
    // Blue/green, canary and linear services name an alternate target group and the listener
    // rules ECS shifts; the sandbox creates them with the ARNs written here.
    let blue_green = l
        .service
        .as_ref()
        .map(|s| {
            s.load_balancers()
                .iter()
                .filter_map(|lb| {
                    let adv = lb.advanced_configuration()?;
                    Some(sandbox::PrepareBlueGreen {
                        target_group: lb.target_group_arn()?.to_string(),
                        alternate_target_group: adv.alternate_target_group_arn()?.to_string(),
                        production_listener_rule: adv
                            .production_listener_rule()
                            .map(str::to_string),
                        test_listener_rule: adv.test_listener_rule().map(str::to_string),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    // The awslogs groups the containers write to (ECS fails a task whose group is missing,
    // unless awslogs-create-group is set).
    let log_groups = l
        .task_json
        .get("containerDefinitions")
        .and_then(serde_json::Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter(|c| {
                    c.pointer("/logConfiguration/logDriver")
                        .and_then(|d| d.as_str())
                        == Some("awslogs")
                })
                .filter_map(|c| {
                    c.pointer("/logConfiguration/options/awslogs-group")?
                        .as_str()
                })
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    // The task and execution roles, created trusting ecs-tasks.amazonaws.com.
    let roles = [l.task.task_role_arn(), l.task.execution_role_arn()]
        .into_iter()
        .flatten()
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    use crate::aws::verify::SecretSource;
    let (mut parameters, mut secrets) = (Vec::new(), Vec::new());
    for source in secret_sources(l) {
        match source {
            SecretSource::Ssm(name) => parameters.push(name),
            SecretSource::SecretsManager(arn) => secrets.push(arn),
        }
    }
    sandbox::Prepare {
        cluster: l.config.cluster.clone(),
        service: l.config.service.clone(),
        codedeploy: codedeploy_prepare(l, &target_groups),
        target_groups,
        images,
        blue_green,
        log_groups,
        roles,
        parameters,
        secrets,
    }
}

/// A CODE_DEPLOY service's application and deployment group: the config's names
/// (`codedeploy:`), else the console's defaults `AppECS-<cluster>-<service>` and
/// `DgpECS-<cluster>-<service>`.
fn codedeploy_prepare(l: &Local, target_groups: &[String]) -> Option<sandbox::PrepareCodeDeploy> {
    use crate::deploy::controller::codedeploy::appspec as codedeploy;
    if !codedeploy::configured_controller(l.service_json.as_ref()) {
        return None;
    }
    let (app, group) = codedeploy::configured_names(&l.config).unwrap_or_default();
    let cluster = &l.config.cluster;
    let service = l.config.service.clone().unwrap_or_default();
    Some(sandbox::PrepareCodeDeploy {
        application: app.unwrap_or_else(|| format!("AppECS-{cluster}-{service}")),
        group: group.unwrap_or_else(|| format!("DgpECS-{cluster}-{service}")),
        target_group: target_groups.first()?.clone(),
        alternate_target_group: None,
        termination_wait_minutes: 0,
        ready_wait_minutes: None,
    })
}

/// A channel that turns true on the first SIGINT or SIGTERM. The run then applies its
/// on-cancel action within a bounded time; a second signal exits at once (code 130).
pub fn cancel_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = tx.send(true);
        eprintln!("cortado: cancelling (applying on_cancel); signal again to exit at once");
        wait_for_signal().await;
        eprintln!("cortado: second signal: exiting without waiting");
        std::process::exit(crate::error::ExitCode::Cancelled as i32);
    });
    rx
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
