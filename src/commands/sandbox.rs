//! `cortado sandbox serve`: the emulator in the foreground, prepared from `--prepare`
//! configs. `cortado sandbox push`: puts image tags into a running sandbox's ECR, as `docker push` puts
//! them into a registry, so that a deploy of a new tag can be rehearsed without restarting
//! `sandbox serve`.
//!
//! Receives image references (or, without any, the ECR images the run's configs render to) and
//! the sandbox's endpoint; makes ECR's own calls there (CreateRepository when the repository is
//! missing, PutImage with a small manifest of its own). It only talks to a sandbox on this
//! machine: an endpoint that is not loopback HTTP is refused before any call, so it can never
//! push to AWS.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::aws::ecr::EcrImage;
use crate::aws::{AwsSettings, Clients};
use crate::error::{Diagnostic, Error, ExitCode, Result};
use crate::report::Format;
use crate::report::Printer;
use crate::settings::{DEFAULT_SANDBOX_SPEED, Settings, ThrottleMode};

/// `cortado sandbox`: its subcommand.
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub command: SandboxCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SandboxCommand {
    /// Run the emulator in the foreground until interrupted.
    Serve(SandboxServeArgs),
    /// Put image tags into a running sandbox's ECR, as `docker push` would.
    ///
    /// Without IMAGE, the ECR images the configs render to now.
    Push(SandboxPushArgs),
}

/// Global options that mean nothing to the `sandbox` commands (they run no embedded sandbox,
/// deploy nothing and wait for nothing). Declared here under the global options' names, clap
/// does not hand the global ones down (it skips a name the subcommand has): so they stay out
/// of the commands' `--help`, and `main` refuses them when given.
#[derive(Debug, clap::Args, Default)]
pub struct NotForSandboxCommands {
    #[arg(long, hide = true)]
    pub sandbox: bool,
    #[arg(long = "sandbox-speed", hide = true, value_name = "N")]
    pub sandbox_speed: Option<f64>,
    #[arg(long, hide = true, value_name = "FILE")]
    pub release: Option<PathBuf>,
    #[arg(long, hide = true)]
    pub timeout: Option<String>,
}

impl NotForSandboxCommands {
    /// The flag given on the command line, if any. (clap also hands down the global
    /// options' defaults and environment variables, e.g. a CI job's CORTADO_TIMEOUT: those are
    /// not the user asking for something here.)
    pub fn given(&self) -> Option<&'static str> {
        let on_command_line =
            |flag: &str| std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
        [
            ("--sandbox", self.sandbox),
            ("--sandbox-speed", self.sandbox_speed.is_some()),
            ("--release", self.release.is_some()),
            ("--timeout", self.timeout.is_some()),
        ]
        .into_iter()
        .find(|(flag, set)| *set && on_command_line(flag))
        .map(|(flag, _)| flag)
    }
}

#[derive(Debug, clap::Args)]
pub struct SandboxPushArgs {
    /// Image to push: ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG (repeatable).
    ///
    /// Fault segments of the tag (`--crash-20s`) are left out of what is pushed.
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    /// The sandbox: plain HTTP on this machine only. Default: AWS_ENDPOINT_URL, else
    /// http://127.0.0.1:4566 (CORTADO_SANDBOX_PORT).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    #[command(flatten)]
    pub not_here: NotForSandboxCommands,
}

#[derive(Debug, clap::Args)]
pub struct SandboxServeArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 4566, env = "CORTADO_SANDBOX_PORT")]
    pub port: u16,
    /// Persist state to this file across restarts.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// YAML file of clusters, services, target groups, listeners, rules and images to create.
    #[arg(long)]
    pub seed: Option<PathBuf>,
    /// Create what these cortado configs reference. Repeatable.
    #[arg(long)]
    pub prepare: Vec<PathBuf>,
    /// Time compression: 60 runs a minute of ECS time per second; 1 runs in real time.
    #[arg(long, default_value_t = DEFAULT_SANDBOX_SPEED)]
    pub speed: f64,
    /// Request throttling (`aws`: ECS's documented token buckets, in wall time).
    #[arg(long, value_enum, default_value_t = ThrottleMode::Off, value_name = "MODE")]
    pub throttle: ThrottleMode,
    #[command(flatten)]
    pub not_here: NotForSandboxCommands,
}

/// `cortado sandbox serve` and `cortado sandbox push`.
pub async fn run(
    settings: &Settings,
    printer: &mut Printer,
    args: &SandboxArgs,
) -> Result<ExitCode> {
    let (name, not_here) = match &args.command {
        SandboxCommand::Serve(a) => ("serve", &a.not_here),
        SandboxCommand::Push(a) => ("push", &a.not_here),
    };
    if let Some(flag) = not_here.given() {
        return Err(Error::bad_input(format!(
            "{flag} means nothing to `cortado sandbox {name}`"
        ))
        .with_hint("leave it out: `sandbox serve` is the sandbox (its own --speed sets its time compression), and `sandbox push` only puts images into it"));
    }
    match &args.command {
        SandboxCommand::Serve(a) => serve(settings, a).await,
        SandboxCommand::Push(a) => {
            let opts = PushOptions {
                images: a.images.clone(),
                endpoint: a.endpoint.clone(),
            };
            push(settings, printer, &opts).await
        }
    }
}

/// `cortado sandbox serve`: the emulator in the foreground, prepared from `--prepare` configs.
/// The sandbox starts (seeded) first, so the configs' template lookups (`ssm`,
/// `secretsmanager_arn`, `cfn_output`, `tfstate` from `s3://`) read the sandbox itself.
async fn serve(settings: &Settings, args: &SandboxServeArgs) -> Result<ExitCode, Error> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return Err(Error::bad_input(format!(
            "--speed must be a positive number, got {}",
            args.speed
        )));
    }
    let seed = match &args.seed {
        Some(p) => Some(cortado_sandbox::Seed::load(p)?),
        None => None,
    };
    let throttle = if args.throttle == ThrottleMode::Aws || settings.sandbox_throttle {
        cortado_sandbox::Throttle::Aws
    } else {
        cortado_sandbox::Throttle::Off
    };
    // The configs' lookups (ssm, secretsmanager_arn, cfn_*, s3:// tfstate) read a sandbox
    // seeded as this one will be, never AWS; that first sandbox only answers lookups, so the
    // configs' region and account are known before the one that serves starts.
    let mut locals = Vec::new();
    if !args.prepare.is_empty() {
        let probe = cortado_sandbox::start(cortado_sandbox::Options {
            port: 0,
            seed: seed.clone(),
            ..cortado_sandbox::Options::default()
        })
        .await?;
        let ctx = settings.render_context()?;
        let printer = Printer::new(Format::Text, settings.no_color);
        let lookups = super::session::sandbox_lookups(settings, &probe.endpoint());
        // The one config-loading path: every finding of every --prepare config at once.
        let loaded = crate::deploy::local::load_all(&ctx, &args.prepare, &lookups);
        if loaded.errors() == 0 {
            for w in &loaded.findings {
                printer.diagnostic(w);
            }
        }
        locals = loaded.into_locals()?;
        probe.shutdown().await?;
    }
    // The region and account of the prepared configs (`--region` wins), as ECS's ARNs and the
    // ECR registry of that account would carry them.
    let region = settings
        .region
        .clone()
        .or_else(|| locals.iter().find_map(|l| l.config.region.clone()))
        .unwrap_or_else(|| "us-east-1".into());
    let opts = cortado_sandbox::Options {
        port: args.port,
        speed: args.speed,
        throttle,
        state_file: args.state.clone(),
        seed,
        region: region.clone(),
        account: super::session::sandbox_account(&locals),
        ..cortado_sandbox::Options::default()
    };
    let sandbox = cortado_sandbox::start(opts).await?;
    for local in &locals {
        for line in super::session::prepare_for(local).apply(&sandbox)? {
            eprintln!("sandbox: created {line}");
        }
    }
    cortado_sandbox::serve_started(sandbox, &region).await?;
    Ok(ExitCode::Success)
}

/// What `sandbox push` was asked.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub images: Vec<String>,
    /// `--endpoint`; else AWS_ENDPOINT_URL, else `sandbox serve`'s default address.
    pub endpoint: Option<String>,
}

/// The sandbox to push to: `--endpoint`, else AWS_ENDPOINT_URL, else
/// `http://127.0.0.1:PORT` with `sandbox serve`'s port (CORTADO_SANDBOX_PORT, default 4566).
/// Only plain HTTP on a loopback address is accepted.
pub fn endpoint(given: Option<&str>) -> Result<String> {
    let url = given
        .map(str::to_string)
        .or_else(|| {
            std::env::var("AWS_ENDPOINT_URL")
                .ok()
                .filter(|u| !u.trim().is_empty())
        })
        .unwrap_or_else(|| {
            let port = std::env::var("CORTADO_SANDBOX_PORT").unwrap_or_else(|_| "4566".into());
            format!("http://127.0.0.1:{port}")
        });
    let host = url
        .strip_prefix("http://")
        .map(|rest| rest.split('/').next().unwrap_or(rest))
        .map(|authority| match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => authority.split(':').next().unwrap_or(authority),
        });
    match host {
        Some("127.0.0.1" | "localhost" | "::1") => Ok(url.trim_end_matches('/').to_string()),
        _ => Err(Error::input(
            Diagnostic::error(format!(
                "sandbox push only pushes to a sandbox on this machine; {url} is not one"
            ))
            .hint("start one with `cortado sandbox serve` and give its address (http://127.0.0.1:PORT) with --endpoint or AWS_ENDPOINT_URL"),
        )),
    }
}

/// The image to put: an ECR image with a tag. The fault segments of a sandbox tag
/// (`v2--crash-20s`) are scenario notes, not part of the image's name: `v2` is pushed.
fn ecr_image(text: &str) -> Result<EcrImage> {
    let bad = |why: &str| {
        Error::input(
            Diagnostic::error(format!("cannot push {text:?}: {why}"))
                .hint("name an image of an ECR registry with a tag: ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG"),
        )
    };
    let mut image = EcrImage::parse(text).ok_or_else(|| bad("it is not an ECR image"))?;
    if image.reference.starts_with("sha256:") {
        return Err(bad("an image is pushed under a tag, not a digest"));
    }
    if let Some((tag, _faults)) = image.reference.split_once("--") {
        image.reference = tag.to_string();
    }
    Ok(image)
}

/// A Docker image manifest (schema 2) standing for `image`: its config and layer digests are
/// derived from the image's name, so pushing the same name twice gives the same digest.
fn manifest_for(image: &EcrImage) -> String {
    let digest = |part: &str| {
        let hash = Sha256::digest(format!("{}:{}#{part}", image.repository, image.reference));
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    };
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 1469,
            "digest": digest("config"),
        },
        "layers": [{
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 3_370_706,
            "digest": digest("layer"),
        }],
    })
    .to_string()
}

/// The ECR images the run's configs render to (with the current environment: set IMAGE_TAG
/// first to push a new tag).
fn configs_images(settings: &Settings, printer: &mut Printer) -> Result<Vec<String>> {
    let ctx = settings.render_context()?;
    printer.set_secrets(ctx.secrets.clone());
    let locals = super::session::load_locals(settings, &ctx, printer)?;
    let mut out: Vec<String> = locals
        .iter()
        .flat_map(|l| l.task.container_definitions())
        .filter_map(|c| c.image())
        .filter(|i| EcrImage::parse(i).is_some())
        .map(str::to_string)
        .collect();
    out.dedup();
    if out.is_empty() {
        return Err(Error::bad_input("the configs name no ECR image to push")
            .with_hint("name the images: cortado sandbox push ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG"));
    }
    Ok(out)
}

/// `cortado sandbox push`.
pub async fn push(
    settings: &Settings,
    printer: &mut Printer,
    opts: &PushOptions,
) -> Result<ExitCode> {
    let endpoint = endpoint(opts.endpoint.as_deref())?;
    let texts = if opts.images.is_empty() {
        configs_images(settings, printer)?
    } else {
        opts.images.clone()
    };
    let images = texts
        .iter()
        .map(|t| ecr_image(t))
        .collect::<Result<Vec<_>>>()?;
    let mut clients: BTreeMap<String, Clients> = BTreeMap::new();
    for image in &images {
        if !clients.contains_key(&image.region) {
            let c = crate::aws::connect(&AwsSettings {
                region: Some(image.region.clone()),
                endpoint_url: Some(endpoint.clone()),
                static_credentials: true,
                max_attempts: 2,
                assume_role_arn: None,
            })
            .await?;
            clients.insert(image.region.clone(), c);
        }
        let c = &clients[&image.region];
        let name = format!(
            "{}.dkr.ecr.{}.amazonaws.com/{}:{}",
            image.account, image.region, image.repository, image.reference
        );
        match c.put_image(image, &manifest_for(image)).await.map_err(|e| {
            e.with_hint(format!(
                "is a sandbox serving at {endpoint}, for account {} in {}? (`cortado sandbox serve --prepare CONFIG` stands in for the config's account and region)",
                image.account, image.region
            ))
        })? {
            Some(digest) => printer.out(&format!("pushed {name} ({digest})")),
            None => printer.out(&format!("{name} is already in the sandbox")),
        }
    }
    Ok(ExitCode::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sandbox_on_this_machine() {
        for ok in [
            "http://127.0.0.1:4566",
            "http://localhost:4566/",
            "http://[::1]:4566",
        ] {
            assert!(endpoint(Some(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "https://127.0.0.1:4566",
            "https://ecr.us-east-1.amazonaws.com",
            "http://10.0.0.5:4566",
            "http://127.0.0.1.example.com:4566",
            "127.0.0.1:4566",
        ] {
            let e = endpoint(Some(bad)).unwrap_err();
            assert!(
                e.diagnostics[0].message.contains("is not one"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn images_pushed_under_their_tag_without_fault_segments() {
        let i = ecr_image("111122223333.dkr.ecr.ap-northeast-1.amazonaws.com/api:v2--crash-20s")
            .unwrap();
        assert_eq!((i.repository.as_str(), i.reference.as_str()), ("api", "v2"));
        assert!(ecr_image("nginx:1.27").is_err());
        assert!(
            ecr_image(
                "111122223333.dkr.ecr.ap-northeast-1.amazonaws.com/api@sha256:0123456789abcdef"
            )
            .is_err()
        );
        let a = manifest_for(&i);
        assert_eq!(a, manifest_for(&i), "the same name, the same manifest");
        assert_ne!(
            a,
            manifest_for(
                &ecr_image("111122223333.dkr.ecr.ap-northeast-1.amazonaws.com/api:v3").unwrap()
            )
        );
    }
}
