//! `cortado init`: writes `cortado.yml`, `ecs-service-def.json` and `ecs-task-def.json` from
//! a live service, so that a following `cortado diff` shows nothing. Read-only against AWS.
//!
//! The definitions are the live ones in the CreateService / RegisterTaskDefinition input
//! shapes with read-only members removed and values equal to ECS's defaults dropped (the
//! diff's canonical form: keys sorted, lists whose order ECS does not keep sorted). With
//! `--image-tag-env NAME` each container image's tag becomes ``{{ must_env `NAME` }}``.
//! Nothing is overwritten without `--force`; nothing is written when any file exists. A path
//! that is a symlink counts as existing even when it points nowhere, and files are created
//! new (`O_CREAT|O_EXCL`), so nothing is ever written through a link; `--force` replaces a
//! link with a file rather than writing where it points.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::session;
use crate::aws::json::{service_definition_json, task_definition_json};
use crate::deploy::controller::seam::service_not_found;
use crate::diff::normalize::{service_for_compare, task_definition_for_compare};
use crate::error::{Diagnostic, Error, ExitCode, Result};
use crate::report::Printer;
use crate::settings::Settings;

/// Flags of `cortado init`.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// The cluster of the service.
    #[arg(long)]
    pub cluster: String,
    /// The service to start from.
    #[arg(
        long,
        required_unless_present = "task_definition",
        conflicts_with = "task_definition"
    )]
    pub service: Option<String>,
    /// Start from this task definition (FAMILY:REVISION or ARN) alone: a config without a
    /// service, for `cortado run`.
    #[arg(long, value_name = "NAME:REV")]
    pub task_definition: Option<String>,
    /// Folder to write into.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Write the definitions as .jsonnet files.
    #[arg(long)]
    pub jsonnet: bool,
    /// Turn each image tag into {{ must_env `NAME` }}.
    #[arg(long, value_name = "NAME")]
    pub image_tag_env: Option<String>,
    /// Overwrite existing files.
    #[arg(long, visible_alias = "force-overwrite")]
    pub force: bool,
    /// The task definition file's name in --dir (default ecs-task-def.json, or .jsonnet).
    #[arg(long, value_name = "FILE")]
    pub task_definition_path: Option<String>,
    /// The service definition file's name in --dir (default ecs-service-def.json, or
    /// .jsonnet).
    #[arg(long, value_name = "FILE")]
    pub service_definition_path: Option<String>,
}

pub async fn run(settings: &Settings, printer: &mut Printer, opts: &InitArgs) -> Result<ExitCode> {
    check_image_tag_env(opts)?;
    let files = Files::new(opts);
    if !opts.force {
        files.refuse_existing(opts)?;
    }
    let s = session::connect(settings, &[], printer).await?;
    let Some(service_name) = opts.service.as_deref() else {
        return init_task_definition(&s.clients, printer, opts, &files).await;
    };
    let Some(svc) = s
        .clients
        .describe_service(&opts.cluster, service_name)
        .await?
    else {
        return Err(service_not_found(
            service_name,
            &opts.cluster,
            s.clients.region(),
        ));
    };
    if svc.resource_management_type().map(|t| t.as_str()) == Some("ECS") {
        return init_express(&s.clients, printer, opts, &svc).await;
    }
    init_service(&s.clients, printer, opts, &files, service_name, &svc).await
}

/// `--image-tag-env` must name an environment variable (it is written into a template).
fn check_image_tag_env(opts: &InitArgs) -> Result<()> {
    match &opts.image_tag_env {
        Some(name)
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Err(Error::input(
                Diagnostic::error(format!(
                    "--image-tag-env {name:?} is not an environment variable name"
                ))
                .hint("use letters, digits and _, e.g. --image-tag-env IMAGE_TAG"),
            ))
        }
        _ => Ok(()),
    }
}

/// Where `init` writes (for a service that is not Express Mode, or a task definition alone).
struct Files {
    /// `cortado.yml` in `--dir`.
    config: PathBuf,
    /// The service definition's path, and its name as `cortado.yml` refers to it.
    service: PathBuf,
    service_name: String,
    /// The task definition's path, and its name as `cortado.yml` refers to it.
    task: PathBuf,
    task_name: String,
}

impl Files {
    fn new(opts: &InitArgs) -> Files {
        let ext = if opts.jsonnet { "jsonnet" } else { "json" };
        let service_name = opts
            .service_definition_path
            .clone()
            .unwrap_or_else(|| format!("ecs-service-def.{ext}"));
        let task_name = opts
            .task_definition_path
            .clone()
            .unwrap_or_else(|| format!("ecs-task-def.{ext}"));
        Files {
            config: opts.dir.join("cortado.yml"),
            service: opts.dir.join(&service_name),
            service_name,
            task: opts.dir.join(&task_name),
            task_name,
        }
    }

    /// Fails, before anything is written, when a file this run would write is taken (the
    /// first of config, service definition, task definition).
    fn refuse_existing(&self, opts: &InitArgs) -> Result<()> {
        // --task-definition writes no service definition.
        let service_def = opts.service.as_ref().map(|_| &self.service);
        refuse_existing(
            std::iter::once(&self.config)
                .chain(service_def)
                .chain([&self.task]),
        )
    }
}

/// Fails, before anything is written, when any of `paths` is taken (the first one found).
fn refuse_existing<'p>(paths: impl IntoIterator<Item = &'p PathBuf>) -> Result<()> {
    match paths.into_iter().find(|p| taken(p)) {
        Some(existing) => Err(Error::input(
            Diagnostic::error(format!(
                "{} exists: nothing was written",
                existing.display()
            ))
            .hint("pass --force to overwrite, or --dir to write elsewhere"),
        )),
        None => Ok(()),
    }
}

/// `--task-definition`: the task definition and a config naming it, no service.
async fn init_task_definition(
    clients: &crate::aws::Clients,
    printer: &Printer,
    opts: &InitArgs,
    files: &Files,
) -> Result<ExitCode> {
    let td_name = opts.task_definition.as_deref().unwrap_or_default();
    let (td, tags) = clients.describe_task_definition(td_name).await?;
    let mut task = task_definition_for_compare(&task_definition_json(&td, &tags)?);
    if let Some(name) = &opts.image_tag_env {
        template_image_tags(&mut task, name);
    }
    let region = clients.region().to_string();
    let yml = format!(
        "# Written by `cortado init` from the task definition {td_name} ({region}).\nregion: {region}\ncluster: {cluster}\ntask_definition: {task_file}\ntimeout: 10m\n",
        cluster = opts.cluster,
        task_file = files.task_name,
    );
    std::fs::create_dir_all(&opts.dir).map_err(|e| Error::io(&opts.dir, &e, "create"))?;
    write(&files.config, &yml, opts.force)?;
    write(&files.task, &pretty(&task)?, opts.force)?;
    for p in [&files.config, &files.task] {
        printer.info(&format!("wrote {}", p.display()));
    }
    Ok(ExitCode::Success)
}

/// A service (not Express Mode): its definition, its task definition and a config naming both.
async fn init_service(
    clients: &crate::aws::Clients,
    printer: &Printer,
    opts: &InitArgs,
    files: &Files,
    service_name: &str,
    svc: &crate::aws::types::ecs::Service,
) -> Result<ExitCode> {
    let td_arn = svc.task_definition().unwrap_or_default().to_string();
    let (td, tags) = clients.describe_task_definition(&td_arn).await?;
    let mut task = task_definition_for_compare(&task_definition_json(&td, &tags)?);
    let live = service_definition_json(svc)?;
    let (service, _) = service_for_compare(&live, &live, &[]);
    if let Some(name) = &opts.image_tag_env {
        template_image_tags(&mut task, name);
    }
    let region = clients.region().to_string();
    let yml = format!(
        "# Written by `cortado init` from the live service {service} in cluster {cluster} ({region}).\nregion: {region}\ncluster: {cluster}\nservice: {service}\nservice_definition: {service_file}\ntask_definition: {task_file}\ntimeout: 10m\n",
        service = service_name,
        cluster = opts.cluster,
        service_file = files.service_name,
        task_file = files.task_name,
    );
    std::fs::create_dir_all(&opts.dir).map_err(|e| Error::io(&opts.dir, &e, "create"))?;
    write(&files.config, &yml, opts.force)?;
    write(&files.service, &pretty(&service)?, opts.force)?;
    write(&files.task, &pretty(&task)?, opts.force)?;
    for p in [&files.config, &files.service, &files.task] {
        printer.info(&format!("wrote {}", p.display()));
    }
    printer.info(&format!(
        "next: `cortado diff -c {}` should show nothing",
        files.config.display()
    ));
    Ok(ExitCode::Success)
}

/// An Express Mode service: `cortado.yml` with `express_definition:` and the definition (the
/// service's newest configuration in the CreateExpressGatewayService input shape), as
/// ecspresso's init writes them.
async fn init_express(
    clients: &crate::aws::Clients,
    printer: &Printer,
    opts: &InitArgs,
    svc: &crate::aws::types::ecs::Service,
) -> Result<ExitCode> {
    let ext = if opts.jsonnet { "jsonnet" } else { "json" };
    let config = opts.dir.join("cortado.yml");
    let file = format!("express-def.{ext}");
    let paths = [config.clone(), opts.dir.join(&file)];
    if !opts.force {
        refuse_existing(&paths)?;
    }
    let ex = clients
        .describe_express_service(svc.service_arn().unwrap_or_default())
        .await?;
    let mut def = crate::aws::express::express_definition_json(&ex)?;
    if let Some(name) = &opts.image_tag_env
        && let Some(image) = def
            .pointer("/primaryContainer/image")
            .and_then(Value::as_str)
    {
        let mut t = serde_json::json!({"containerDefinitions": [{"image": image}]});
        template_image_tags(&mut t, name);
        def["primaryContainer"]["image"] = t["containerDefinitions"][0]["image"].clone();
    }
    let region = clients.region().to_string();
    let yml = format!(
        "# Written by `cortado init` from the live Express Mode service {service} in cluster {cluster} ({region}).\nregion: {region}\ncluster: {cluster}\nservice: {service}\nexpress_definition: {file}\ntimeout: 10m\n",
        service = opts.service.as_deref().unwrap_or_default(),
        cluster = opts.cluster,
    );
    std::fs::create_dir_all(&opts.dir).map_err(|e| Error::io(&opts.dir, &e, "create"))?;
    write(&config, &yml, opts.force)?;
    write(&paths[1], &pretty(&def)?, opts.force)?;
    for p in &paths {
        printer.info(&format!("wrote {}", p.display()));
    }
    printer.info(&format!(
        "next: `cortado diff -c {}` should show nothing",
        config.display()
    ));
    Ok(ExitCode::Success)
}

fn pretty(v: &Value) -> Result<String> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| Error::internal(format!("cannot print JSON: {e}")))
}

/// Whether something is at `path`: a file, a folder, or a symlink (dangling or not).
fn taken(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

/// Creates the file at `path` (it must not exist: a dangling symlink there is refused, not
/// followed). With `force` a file or symlink already there is removed first.
fn write(path: &Path, text: &str, force: bool) -> Result<()> {
    use std::io::Write;
    if force
        && let Ok(meta) = path.symlink_metadata()
        && !meta.is_dir()
    {
        std::fs::remove_file(path).map_err(|e| Error::io(path, &e, "replace"))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::input(
                    Diagnostic::error(format!("{} exists: it was not overwritten", path.display()))
                        .hint("pass --force to overwrite, or --dir to write elsewhere"),
                )
            } else {
                Error::io(path, &e, "write")
            }
        })?;
    file.write_all(text.as_bytes())
        .map_err(|e| Error::io(path, &e, "write"))
}

/// Replaces each container image's tag (not a digest) with ``{{ must_env `NAME` }}``.
fn template_image_tags(task: &mut Value, name: &str) {
    let Some(cs) = task
        .get_mut("containerDefinitions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for c in cs {
        let Some(image) = c.get("image").and_then(Value::as_str) else {
            continue;
        };
        if image.contains('@') {
            continue;
        }
        let slash = image.rfind('/').map_or(0, |i| i + 1);
        let repo = match image[slash..].rfind(':') {
            Some(i) => &image[..slash + i],
            None => image,
        };
        c["image"] = Value::String(format!("{repo}:{{{{ must_env `{name}` }}}}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_tags_become_a_template_but_digests_stay() {
        let mut t = json!({"containerDefinitions": [
            {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1"},
            {"image": "localhost:5000/app"},
            {"image": "nginx@sha256:abc"}
        ]});
        template_image_tags(&mut t, "IMAGE_TAG");
        assert_eq!(
            t["containerDefinitions"][0]["image"],
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:{{ must_env `IMAGE_TAG` }}"
        );
        assert_eq!(
            t["containerDefinitions"][1]["image"],
            "localhost:5000/app:{{ must_env `IMAGE_TAG` }}"
        );
        assert_eq!(t["containerDefinitions"][2]["image"], "nginx@sha256:abc");
    }

    #[test]
    fn existing_files_are_named_in_write_order_and_only_those_written_count() {
        let dir = std::env::temp_dir().join(format!("cortado-init-taken-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut opts = InitArgs {
            cluster: "c".into(),
            service: Some("web".into()),
            task_definition: None,
            dir: dir.clone(),
            jsonnet: false,
            image_tag_env: None,
            force: false,
            task_definition_path: Some("td.json".into()),
            service_definition_path: None,
        };
        let files = Files::new(&opts);
        assert_eq!(files.service, dir.join("ecs-service-def.json"));
        assert_eq!(files.task, dir.join("td.json"));
        assert!(files.refuse_existing(&opts).is_ok(), "nothing there yet");
        std::fs::write(&files.task, "{}").unwrap();
        std::fs::write(&files.service, "{}").unwrap();
        let e = files.refuse_existing(&opts).unwrap_err().to_string();
        assert!(
            e.contains("ecs-service-def.json exists: nothing was written"),
            "{e}"
        );
        // --task-definition writes no service definition: only the task definition counts.
        opts.service = None;
        opts.task_definition = Some("web:1".into());
        let e = files.refuse_existing(&opts).unwrap_err().to_string();
        assert!(e.contains("td.json exists"), "{e}");
        std::fs::remove_file(&files.task).unwrap();
        assert!(files.refuse_existing(&opts).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_dangling_symlink_is_taken_and_never_written_through() {
        let dir = std::env::temp_dir().join(format!("cortado-init-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("elsewhere.txt");
        let link = dir.join("cortado.yml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(taken(&link), "a dangling link is something");
        let e = write(&link, "x", false).unwrap_err();
        assert!(e.to_string().contains("exists"), "{e}");
        assert!(!target.exists(), "nothing was written through the link");
        // --force replaces the link itself.
        write(&link, "y", true).unwrap();
        assert!(!target.exists());
        assert!(!link.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "y");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
