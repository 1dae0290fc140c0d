//! ECR: an image's manifest, to tell whether it runs on ARM64 (`cortado cost`, `verify`), and
//! putting a manifest under a tag (`cortado sandbox push`).

use aws_sdk_ecr::types::ImageIdentifier;

use super::Clients;
use super::error::Call;
use crate::error::Result;

/// An image of an ECR registry, split out of an image URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrImage {
    pub account: String,
    pub region: String,
    pub repository: String,
    /// A tag, or a digest (`sha256:...`).
    pub reference: String,
}

impl EcrImage {
    /// `ACCOUNT.dkr.ecr.REGION.amazonaws.com[.cn]/REPO[:TAG|@DIGEST]`; `None` for an image of
    /// another registry. A missing tag means `latest`, as for Docker.
    pub fn parse(image: &str) -> Option<EcrImage> {
        let (host, path) = image.split_once('/')?;
        let mut parts = host.split('.');
        let account = parts.next()?;
        let (dkr, ecr, region) = (parts.next()?, parts.next()?, parts.next()?);
        let rest: Vec<&str> = parts.collect();
        if account.len() != 12
            || !account.bytes().all(|b| b.is_ascii_digit())
            || dkr != "dkr"
            || ecr != "ecr"
            || !(rest == ["amazonaws", "com"] || rest == ["amazonaws", "com", "cn"])
        {
            return None;
        }
        let (repository, reference) = match path.split_once('@') {
            Some((repo, digest)) => (repo, digest.to_string()),
            None => match path.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') => (repo, tag.to_string()),
                _ => (path, "latest".to_string()),
            },
        };
        Some(EcrImage {
            account: account.into(),
            region: region.into(),
            repository: repository.into(),
            reference,
        })
    }
}

impl Clients {
    /// The manifest of an ECR image and its media type (BatchGetImage); `None` when ECR
    /// does not have it (no such image, or no such repository).
    pub async fn image_manifest(&self, image: &EcrImage) -> Result<Option<(String, String)>> {
        Ok(self.get_image(image).await?.and_then(|i| {
            Some((
                i.image_manifest_media_type()
                    .unwrap_or_default()
                    .to_string(),
                i.image_manifest()?.to_string(),
            ))
        }))
    }

    /// BatchGetImage of `image` (by digest or tag, any manifest type); `None` when ECR does
    /// not have it (no such image, or no such repository).
    async fn get_image(&self, image: &EcrImage) -> Result<Option<aws_sdk_ecr::types::Image>> {
        let id = if image.reference.starts_with("sha256:") {
            ImageIdentifier::builder()
                .image_digest(&image.reference)
                .build()
        } else {
            ImageIdentifier::builder()
                .image_tag(&image.reference)
                .build()
        };
        let call = Call::of(
            "ecr",
            "BatchGetImage",
            format!("image {}:{}", image.repository, image.reference),
        );
        let out = self
            .ecr
            .batch_get_image()
            .registry_id(&image.account)
            .repository_name(&image.repository)
            .image_ids(id)
            .accepted_media_types("application/vnd.oci.image.index.v1+json")
            .accepted_media_types("application/vnd.docker.distribution.manifest.list.v2+json")
            .accepted_media_types("application/vnd.oci.image.manifest.v1+json")
            .accepted_media_types("application/vnd.docker.distribution.manifest.v2+json")
            .send()
            .await;
        match out {
            Ok(o) => Ok(o.images().first().cloned()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.fail(&call, e)),
        }
    }
}

impl Clients {
    /// The digest ECR holds under `image`'s tag now (BatchGetImage); `None` when ECR does not
    /// have it.
    pub async fn image_digest(&self, image: &EcrImage) -> Result<Option<String>> {
        Ok(self
            .get_image(image)
            .await?
            .and_then(|i| i.image_id()?.image_digest().map(str::to_string)))
    }

    /// Puts `manifest` into `image`'s repository under its tag (CreateRepository when the
    /// repository is missing, then PutImage); returns the image digest ECR answers, or `None`
    /// when that manifest already carries that tag.
    pub async fn put_image(&self, image: &EcrImage, manifest: &str) -> Result<Option<String>> {
        let subject = format!("repository {}", image.repository);
        let created = self
            .ecr
            .create_repository()
            .registry_id(&image.account)
            .repository_name(&image.repository)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_already_exists_exception()) => {}
            Err(e) => return Err(self.fail(&Call::of("ecr", "CreateRepository", subject), e)),
        }
        let call = Call::of(
            "ecr",
            "PutImage",
            format!("image {}:{}", image.repository, image.reference),
        );
        let out = self
            .ecr
            .put_image()
            .registry_id(&image.account)
            .repository_name(&image.repository)
            .image_tag(&image.reference)
            .image_manifest(manifest)
            .send()
            .await;
        match out {
            Ok(o) => Ok(Some(
                o.image()
                    .and_then(|i| i.image_id())
                    .and_then(|i| i.image_digest())
                    .unwrap_or_default()
                    .to_string(),
            )),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_image_already_exists_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.fail(&call, e)),
        }
    }
}

/// The architectures an image index lists (`manifests[].platform.architecture`, leaving out
/// attestation entries); `None` for a single-image manifest.
pub fn index_architectures(media_type: &str, manifest: &str) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(manifest).ok()?;
    let is_index = media_type.contains("index") || media_type.contains("manifest.list");
    let list = v.get("manifests")?.as_array()?;
    if !is_index && list.is_empty() {
        return None;
    }
    let mut archs: Vec<String> = list
        .iter()
        .filter_map(|m| m.pointer("/platform/architecture")?.as_str())
        .filter(|a| *a != "unknown")
        .map(str::to_string)
        .collect();
    archs.sort();
    archs.dedup();
    Some(archs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_image_uris() {
        let i =
            EcrImage::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/web:v1.2").unwrap();
        assert_eq!(
            (
                i.account.as_str(),
                i.region.as_str(),
                i.repository.as_str(),
                i.reference.as_str()
            ),
            ("123456789012", "eu-west-1", "team/web", "v1.2")
        );
        let d =
            EcrImage::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:abc").unwrap();
        assert_eq!(d.reference, "sha256:abc");
        let latest = EcrImage::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/web").unwrap();
        assert_eq!(latest.reference, "latest");
        assert_eq!(EcrImage::parse("nginx:1.27"), None);
        assert_eq!(EcrImage::parse("ghcr.io/org/app:1"), None);
        assert_eq!(
            EcrImage::parse("12345.dkr.ecr.us-east-1.amazonaws.com/web:1"),
            None
        );
    }

    #[test]
    fn architectures_of_an_index_leave_attestations_out() {
        let index = r#"{"schemaVersion": 2, "manifests": [
            {"digest": "sha256:a", "platform": {"architecture": "amd64", "os": "linux"}},
            {"digest": "sha256:b", "platform": {"architecture": "arm64", "os": "linux"}},
            {"digest": "sha256:c", "platform": {"architecture": "unknown", "os": "unknown"}}
        ]}"#;
        assert_eq!(
            index_architectures("application/vnd.oci.image.index.v1+json", index),
            Some(vec!["amd64".to_string(), "arm64".to_string()])
        );
        let single = r#"{"schemaVersion": 2, "config": {}, "layers": []}"#;
        assert_eq!(
            index_architectures("application/vnd.oci.image.manifest.v1+json", single),
            None
        );
    }
}
