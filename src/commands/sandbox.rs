//! `cortado sandbox push`: puts image tags into a running sandbox's ECR, as `docker push` puts
//! them into a registry, so that a deploy of a new tag can be rehearsed without restarting
//! `sandbox serve`.
//!
//! Receives image references (or, without any, the ECR images the run's configs render to) and
//! the sandbox's endpoint; makes ECR's own calls there (CreateRepository when the repository is
//! missing, PutImage with a small manifest of its own). It only talks to a sandbox on this
//! machine: an endpoint that is not loopback HTTP is refused before any call, so it can never
//! push to AWS.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::aws::ecr::EcrImage;
use crate::aws::{AwsSettings, Clients};
use crate::error::{Diagnostic, Error, ExitCode, Result};
use crate::report::Printer;
use crate::settings::Settings;

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
