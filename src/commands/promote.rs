//! `cortado promote --from staging --to production`: deploys to one environment of the release
//! file the images another one runs now, by digest. Each service of the `--from` environment
//! is read (its PRIMARY deployment's task definition, the digests its running tasks report),
//! the configs are rendered with the `--to` environment's settings, each container's image
//! becomes `REPOSITORY@DIGEST` (the rendered repository, the digest the `--from` tasks run),
//! and the result goes through `deploy`'s own path after its plan is shown. A tag that moved
//! since the `--from` deploy changes nothing: the tag is never read again.

use std::collections::BTreeMap;

use super::deploy::{DeployArgs, OnFailureArg};
use super::session;
use crate::aws::Clients;
use crate::aws::ecr::EcrImage;
use crate::deploy::controller::seam::DeployFlags;
use crate::deploy::engine::Engine;
use crate::deploy::local::Local;
use crate::error::{Diagnostic, Error, ExitCode, Result};
use crate::report::{Format, Printer};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    /// The environment whose running images are promoted (`environments:` of the release).
    #[arg(long, value_name = "NAME")]
    pub from: String,
    /// The environment deployed with them, rendered with its own settings.
    #[arg(long, value_name = "NAME")]
    pub to: String,
    /// Print the plan and call nothing that changes anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Start the deployments and exit without following them.
    #[arg(long)]
    pub no_wait: bool,
    /// At most this many services in flight at once (default: the release's, else 16).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: Option<u32>,
    /// What a failed service means for the others.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub on_failure: Option<OnFailureArg>,
    /// Send no notification (the configs' and the release's `notify:`).
    #[arg(long, env = "CORTADO_NO_NOTIFY")]
    pub no_notify: bool,
}

/// What one container of the `--from` environment runs, by container name.
type Digests = BTreeMap<String, String>;

/// How the command line looks to `promote`: the run's settings, the `--environment` it was
/// given (if any), and the settings the same command line makes for a named environment.
pub struct Invocation<'a> {
    pub settings: &'a Settings,
    pub environment: Option<&'a str>,
    pub with_environment: &'a dyn Fn(&str) -> Result<Settings>,
}

pub async fn run(
    inv: &Invocation<'_>,
    printer: &mut Printer,
    args: &PromoteArgs,
) -> Result<ExitCode> {
    let (from, to) = settings_of(inv, args)?;
    promote(&from, &to, printer, args).await
}

/// The settings of each side: the global options with `--environment` set to `--from`, then to
/// `--to` (each environment's region, role, envfiles and ext vars).
fn settings_of(inv: &Invocation<'_>, args: &PromoteArgs) -> Result<(Settings, Settings)> {
    let refuse = |m: String, hint: &str| Err(Error::input(Diagnostic::error(m).hint(hint)));
    if inv.settings.release_file.is_none() {
        return refuse(
            "promote needs --release: its environments are declared in the release file".into(),
            "cortado promote --release cortado-release.yml --from staging --to production",
        );
    }
    if let Some(e) = inv.environment {
        return refuse(
            format!("promote takes --from and --to, not --environment ({e:?})"),
            "drop --environment (or CORTADO_ENVIRONMENT)",
        );
    }
    if inv.settings.sandbox.is_some() {
        return refuse(
            "promote reads what an environment runs now; an embedded sandbox starts empty".into(),
            "run `cortado sandbox serve` and point AWS_ENDPOINT_URL at it instead of --sandbox",
        );
    }
    if args.from == args.to {
        return refuse(
            format!(
                "--from and --to name the same environment ({:?})",
                args.from
            ),
            "promote from one environment to another: --from staging --to production",
        );
    }
    Ok((
        (inv.with_environment)(&args.from)?,
        (inv.with_environment)(&args.to)?,
    ))
}

async fn promote(
    from: &Settings,
    to: &Settings,
    printer: &mut Printer,
    args: &PromoteArgs,
) -> Result<ExitCode> {
    let started = super::deploy::now();
    let (Some(from_release), Some(to_release)) = (&from.release_file, &to.release_file) else {
        return Err(Error::internal("promote without a release file"));
    };
    let from_name = from_release.environment.clone().unwrap_or_default();
    let to_name = to_release.environment.clone().unwrap_or_default();
    // Both sides render and validate before either connects.
    let ctx = to.render_context()?;
    printer.set_secrets(ctx.secrets.clone());
    let mut locals = session::load_locals(to, &ctx, printer)?;
    let (from_locals, from_session) = session::open_all(from, printer).await?;
    // From here on both renderings' secrets are hidden, wherever they show.
    for v in printer.secrets().values() {
        ctx.secrets.add(v);
    }
    printer.set_secrets(ctx.secrets.clone());
    let deployed = from_release.deployed_configs();
    // What the `--from` environment runs, service by service, as its own identity.
    let mut running: Vec<Option<Digests>> = Vec::new();
    for l in &from_locals {
        running.push(if deployed.contains(&l.config.path) {
            Some(running_digests(&from_session.clients, l, &from_name, printer).await?)
        } else {
            None
        });
    }
    drop(from_session);
    for (i, local) in locals.iter_mut().enumerate() {
        let digests = match running.get(i).cloned().flatten() {
            Some(d) => d,
            // A one-off task (a migration): the digests of the services that share its
            // repositories.
            None => running.iter().flatten().fold(Digests::new(), |mut acc, d| {
                acc.extend(d.iter().map(|(k, v)| (k.clone(), v.clone())));
                acc
            }),
        };
        let is_service = running.get(i).is_some_and(Option::is_some);
        let from_images = from_locals
            .get(i)
            .map(images_of)
            .ok_or_else(|| Error::internal("the two environments loaded different configs"))?;
        override_images(local, &digests, &from_images, is_service, &from_name)?;
    }
    // The `--to` side connects as its own identity and deploys like `deploy` does.
    let s = session::connect(to, &locals, printer).await?;
    let deploy_args = DeployArgs {
        dry_run: args.dry_run,
        no_wait: args.no_wait,
        parallel: args.parallel,
        on_failure: args.on_failure,
        no_notify: args.no_notify,
        ..DeployArgs::default()
    };
    let flags = DeployFlags::from(&deploy_args);
    printer.info(&format!(
        "promote: {from_name} -> {to_name}, {} config(s), images by digest",
        locals.len()
    ));
    // The plan first (a dry run prints it at its end, as `deploy --dry-run` does).
    if !args.dry_run && printer.format == Format::Text {
        let emitter = crate::deploy::event::Emitter::new();
        let engine = Engine::new(&s.clients, &emitter, session::cancel_on_signals());
        let deployed = to_release.deployed_configs();
        for l in locals.iter().filter(|l| deployed.contains(&l.config.path)) {
            let plan = engine.plan(l, &DeployFlags::default()).await?.plan;
            printer.out(&plan.text(printer.color()));
        }
    }
    super::deploy::run_loaded(to, printer, &deploy_args, flags, &locals, &s, started).await
}

/// The digest each container of `l`'s service runs in its PRIMARY deployment: from the
/// running tasks of that task definition, else (no task runs) from ECR's current tag, said so.
async fn running_digests(
    clients: &Clients,
    l: &Local,
    env: &str,
    printer: &Printer,
) -> Result<Digests> {
    let cluster = l.config.cluster.as_str();
    let name = l.service_name()?.to_string();
    let task_def = primary_task_definition(clients, cluster, &name, env, printer).await?;
    let out = digests_of_tasks(clients, cluster, &name, &task_def, env, printer).await?;
    if !out.is_empty() {
        return Ok(out);
    }
    // No task of the PRIMARY deployment runs: its task definition's images, resolved by ECR.
    digests_from_ecr(clients, &name, &task_def, env, printer).await
}

/// The task definition of the service's PRIMARY deployment (a warning when that deployment
/// has not completed).
async fn primary_task_definition(
    clients: &Clients,
    cluster: &str,
    name: &str,
    env: &str,
    printer: &Printer,
) -> Result<String> {
    let name = name.to_string();
    let Some(svc) = clients
        .describe_services(cluster, std::slice::from_ref(&name))
        .await?
        .into_iter()
        .next()
        .flatten()
    else {
        return Err(Error::input(
            Diagnostic::error(format!(
                "{env} has no service {name:?} in cluster {cluster:?}: nothing to promote"
            ))
            .hint(format!("deploy it to {env} first")),
        ));
    };
    let primary = svc
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"));
    if let Some(state) = primary
        .and_then(|d| d.rollout_state())
        .filter(|s| *s != &aws_sdk_ecs::types::DeploymentRolloutState::Completed)
    {
        printer.diagnostic(&Diagnostic::warning(format!(
            "{env}'s service {name:?} has not settled (its deployment is {}): promoting what \
             the running tasks of its newest revision run",
            state.as_str()
        )));
    }
    Ok(primary
        .and_then(|d| d.task_definition())
        .or(svc.task_definition())
        .unwrap_or_default()
        .to_string())
}

/// The digest each container runs in the service's RUNNING tasks of `task_def` (empty when
/// none runs); tasks that disagree on a container's digest are an error.
async fn digests_of_tasks(
    clients: &Clients,
    cluster: &str,
    name: &str,
    task_def: &str,
    env: &str,
    printer: &Printer,
) -> Result<Digests> {
    let arns = clients
        .list_tasks(
            cluster,
            &crate::aws::TaskFilter::Service(name.to_string()),
            aws_sdk_ecs::types::DesiredStatus::Running,
        )
        .await?;
    let tasks = if arns.is_empty() {
        Vec::new()
    } else {
        clients.describe_tasks(cluster, &arns).await?
    };
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in tasks
        .iter()
        .filter(|t| t.task_definition_arn() == Some(task_def))
        .filter(|t| t.last_status() == Some("RUNNING"))
    {
        for c in t.containers() {
            if let (Some(n), Some(d)) = (c.name(), c.image_digest()) {
                let list = seen.entry(n.to_string()).or_default();
                if !list.iter().any(|x| x == d) {
                    list.push(d.to_string());
                }
            }
        }
    }
    let counted = tasks
        .iter()
        .filter(|t| t.task_definition_arn() == Some(task_def))
        .filter(|t| t.last_status() == Some("RUNNING"))
        .count();
    let mut out = Digests::new();
    for (container, digests) in seen {
        if digests.len() > 1 {
            return Err(Error::input(
                Diagnostic::error(format!(
                    "the tasks of {env}'s service {name:?} run different digests of container \
                     {container:?} ({}): which one to promote is not clear",
                    digests.join(", ")
                ))
                .hint(format!(
                    "wait until {env}'s deployment settles, then promote"
                )),
            ));
        }
        printer.info(&format!(
            "{env}: service {name:?} container {container:?} runs {} ({counted} running task(s) of {})",
            digests[0],
            task_def.rsplit('/').next().unwrap_or(task_def)
        ));
        out.insert(container, digests[0].clone());
    }
    Ok(out)
}

/// Each container's digest as ECR holds its image's tag now (a warning for each: the tag may
/// have moved since the environment ran it).
async fn digests_from_ecr(
    clients: &Clients,
    name: &str,
    task_def: &str,
    env: &str,
    printer: &Printer,
) -> Result<Digests> {
    let mut out = Digests::new();
    let (td, _) = clients.describe_task_definition(task_def).await?;
    for c in td.container_definitions() {
        let (Some(n), Some(image)) = (c.name(), c.image()) else {
            continue;
        };
        if let Some((_, digest)) = image.split_once('@') {
            out.insert(n.to_string(), digest.to_string());
            continue;
        }
        let found = match EcrImage::parse(image) {
            Some(ecr) => clients.image_digest(&ecr).await?,
            None => None,
        };
        let Some(digest) = found else {
            return Err(Error::input(
                Diagnostic::error(format!(
                    "no task of {env}'s service {name:?} runs, and the digest of {image:?} \
                     (container {n:?}) cannot be read from ECR"
                ))
                .hint(format!(
                    "start {env}'s tasks (cortado scale) so that their digests can be read"
                )),
            ));
        };
        printer.diagnostic(&Diagnostic::warning(format!(
            "no task of {env}'s service {name:?} runs: container {n:?} gets the digest ECR \
             holds under {image:?} now ({digest}), which may differ from what {env} ran if \
             the tag moved"
        )));
        out.insert(n.to_string(), digest);
    }
    Ok(out)
}

/// Each container's rendered image, by container name.
fn images_of(l: &Local) -> BTreeMap<String, String> {
    l.task
        .container_definitions()
        .iter()
        .filter_map(|c| Some((c.name()?.to_string(), c.image()?.to_string())))
        .collect()
}

/// Swaps each container's tag (or digest) in `local` for the digest the other environment
/// runs in the container of the same name, keeping the rendered repository. For a one-off
/// task (no service of its own), a container takes the digest of the other environment's
/// container that runs the same repository.
fn override_images(
    local: &mut Local,
    digests: &Digests,
    from_images: &BTreeMap<String, String>,
    is_service: bool,
    env: &str,
) -> Result<()> {
    if local.express.is_some() {
        return Err(Error::input(
            Diagnostic::error(format!(
                "{}: an Express Mode service cannot be promoted by digest",
                local.config.path.display()
            ))
            .hint("deploy it to each environment with `cortado deploy --environment NAME`"),
        ));
    }
    let path = local.config.path.display().to_string();
    for c in local.task.container_definitions.iter_mut().flatten() {
        let name = c.name.clone().unwrap_or_default();
        let Some(image) = c.image.clone() else {
            continue;
        };
        let digest = if is_service {
            digests.get(&name).cloned()
        } else {
            // The repository of the one-off task's image, matched against what the other
            // environment's containers render.
            // (the path after the registry: the registries may differ between accounts).
            let path = |i: &str| {
                let r = repository(i);
                r.split_once('/').map_or(r, |(_, p)| p).to_string()
            };
            let repo = path(&image);
            from_images
                .iter()
                .find(|(_, i)| path(i) == repo)
                .and_then(|(n, _)| digests.get(n).cloned())
        };
        let Some(digest) = digest else {
            return Err(Error::input(
                Diagnostic::error(format!(
                    "{path}: container {name:?} ({image}) has no counterpart running in {env}: \
                     its digest is unknown"
                ))
                .hint(format!(
                    "both environments must render the same container names; deploy {env} first"
                )),
            ));
        };
        c.image = Some(format!("{}@{digest}", repository(&image)));
    }
    local.task_json = crate::model::task_definition_to_json(&local.task)?;
    Ok(())
}

/// An image reference without its tag or digest: `host[:port]/path`.
pub(crate) fn repository(image: &str) -> &str {
    let image = image.split_once('@').map_or(image, |(r, _)| r);
    let last = image.rfind('/').map_or(0, |i| i + 1);
    match image[last..].rfind(':') {
        Some(colon) => &image[..last + colon],
        None => image,
    }
}

#[cfg(test)]
mod tests {
    use super::repository;

    #[test]
    fn repository_drops_the_tag_or_digest_and_keeps_a_registry_port() {
        assert_eq!(
            repository("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/web:v1"),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/web"
        );
        assert_eq!(repository("web@sha256:abc"), "web");
        assert_eq!(repository("web:v1@sha256:abc"), "web");
        assert_eq!(
            repository("localhost:5000/web:latest"),
            "localhost:5000/web"
        );
        assert_eq!(repository("localhost:5000/web"), "localhost:5000/web");
        assert_eq!(repository("nginx"), "nginx");
    }
}
