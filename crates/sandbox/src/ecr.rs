//! Amazon ECR emulation: repositories and images, as a pure state machine.
//!
//! Receives awsJson1.1 operations (the operation name from `X-Amz-Target` and the parsed JSON
//! body) with the virtual time `now`, plus seeding calls (`put_image`) and image-reference
//! checks from the ECS emulation (`resolve`: does the image a task definition names exist?).
//! Hands back the JSON response body, or an [`ApiError`] with ECR's error code. Digests are
//! deterministic (SHA-256 of `repo:tag` for seeded images, of the manifest for `PutImage`).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::api::ApiError;

const DEFAULT_REGION: &str = "us-east-1";
const DEFAULT_ACCOUNT: &str = "123456789012";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.docker.container.image.v1+json";
const LAYER_MEDIA_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Image {
    digest: String,
    tags: Vec<String>,
    pushed_at: f64,
    size: i64,
    manifest: String,
    media_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Repository {
    name: String,
    created_at: f64,
    tag_mutability: String,
    images: Vec<Image>,
}

impl Repository {
    fn by_tag(&self, tag: &str) -> Option<&Image> {
        self.images.iter().find(|i| i.tags.iter().any(|t| t == tag))
    }

    fn by_digest(&self, digest: &str) -> Option<&Image> {
        self.images.iter().find(|i| i.digest == digest)
    }
}

/// The ECR state of one sandbox.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Ecr {
    region: String,
    account: String,
    repositories: Vec<Repository>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::client("InvalidParameterException", message)
}

/// `sha256:` and the hex SHA-256 of the bytes.
fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in hash.iter() {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

fn is_valid_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Repository names: lowercase components of letters and digits joined by `.`, `_`, `-`,
/// separated by `/`; 2 to 256 characters.
fn is_valid_repository_name(name: &str) -> bool {
    (2..=256).contains(&name.len())
        && name.split('/').all(|component| {
            !component.is_empty()
                && component
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && component
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
                && component
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
        })
}

/// Tags: up to 128 characters, a letter, digit or `_` first, then also `.` and `-`.
fn is_valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// An `imageIds` entry as given: a tag, a digest, or both.
struct ImageId {
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageId {
    fn to_json(&self) -> Value {
        let mut id = serde_json::Map::new();
        if let Some(digest) = &self.digest {
            id.insert("imageDigest".into(), json!(digest));
        }
        if let Some(tag) = &self.tag {
            id.insert("imageTag".into(), json!(tag));
        }
        Value::Object(id)
    }

    fn describe(&self) -> String {
        format!(
            "{{imageDigest:'{}', imageTag:'{}'}}",
            self.digest.as_deref().unwrap_or("null"),
            self.tag.as_deref().unwrap_or("null")
        )
    }
}

/// Why an image id found no image: `(failure code, reason)` as BatchGetImage reports it.
type Failure = (&'static str, String);

fn lookup<'r>(repo: &'r Repository, id: &ImageId) -> Result<&'r Image, Failure> {
    if let Some(digest) = &id.digest
        && !is_valid_digest(digest)
    {
        return Err((
            "InvalidImageDigest",
            format!(
                "Invalid request parameters: image digest '{digest}' should satisfy the regex 'sha256:[a-f0-9]{{64}}'"
            ),
        ));
    }
    let image = match (&id.tag, &id.digest) {
        (None, None) => {
            return Err((
                "MissingDigestAndTag",
                "Invalid request parameters: both tag and digest cannot be null".to_string(),
            ));
        }
        // ECR has no separate code for a missing tag: ImageNotFound covers both.
        (Some(tag), None) => repo
            .by_tag(tag)
            .ok_or(("ImageNotFound", "Requested image not found".to_string()))?,
        (None, Some(digest)) => repo
            .by_digest(digest)
            .ok_or(("ImageNotFound", "Requested image not found".to_string()))?,
        (Some(tag), Some(digest)) => {
            let image = repo
                .by_digest(digest)
                .ok_or(("ImageNotFound", "Requested image not found".to_string()))?;
            if !image.tags.iter().any(|t| t == tag) {
                return Err((
                    "ImageTagDoesNotMatchDigest",
                    format!(
                        "Invalid request parameters: tag '{tag}' does not match digest '{digest}'"
                    ),
                ));
            }
            image
        }
    };
    Ok(image)
}

impl Ecr {
    pub fn new(region: &str, account: &str) -> Self {
        Ecr {
            region: region.to_string(),
            account: account.to_string(),
            repositories: Vec::new(),
        }
    }

    fn region(&self) -> &str {
        if self.region.is_empty() {
            DEFAULT_REGION
        } else {
            &self.region
        }
    }

    fn account(&self) -> &str {
        if self.account.is_empty() {
            DEFAULT_ACCOUNT
        } else {
            &self.account
        }
    }

    /// The registry host, `ACCOUNT.dkr.ecr.REGION.amazonaws.com`.
    pub fn registry_host(&self) -> String {
        format!("{}.dkr.ecr.{}.amazonaws.com", self.account(), self.region())
    }

    fn repo(&self, name: &str) -> Option<&Repository> {
        self.repositories.iter().find(|r| r.name == name)
    }

    fn repo_not_found(&self, name: &str) -> ApiError {
        ApiError::client(
            "RepositoryNotFoundException",
            format!(
                "The repository with name '{name}' does not exist in the registry with id '{}'",
                self.account()
            ),
        )
    }

    fn ensure_repository(&mut self, name: &str, now: f64) -> usize {
        if let Some(index) = self.repositories.iter().position(|r| r.name == name) {
            return index;
        }
        self.repositories.push(Repository {
            name: name.to_string(),
            created_at: now,
            tag_mutability: "MUTABLE".to_string(),
            images: Vec::new(),
        });
        self.repositories.len() - 1
    }

    /// Seeds an image (creates the repository if missing); returns its digest (deterministic:
    /// sha256 of `repo:tag`). Pushing the same tag again is a no-op.
    pub fn put_image(&mut self, repository: &str, tag: &str, now: f64) -> String {
        let digest = sha256_digest(format!("{repository}:{tag}").as_bytes());
        let manifest = seeded_manifest(&digest);
        let size = seeded_size(&digest);
        let index = self.ensure_repository(repository, now);
        let repo = &mut self.repositories[index];
        store_image(
            repo,
            &digest,
            Some(tag),
            manifest,
            MANIFEST_MEDIA_TYPE,
            size,
            now,
        );
        digest
    }

    /// Whether an image reference (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/repo:tag` or
    /// `.../repo@sha256:...`; no tag means `latest`) exists. References to other registries
    /// (docker.io, public.ecr.aws, another account or region, ...) are not ECR's business: None.
    pub fn resolve(&self, image_ref: &str) -> Option<bool> {
        self.digest_of(image_ref).map(|d| d.is_some())
    }

    /// The digest of the image `image_ref` names in this registry: `None` when the reference
    /// is not to this registry, `Some(None)` when it is but no such image (or tag) exists.
    /// ECS resolves a tag to this digest when it starts a container.
    pub fn digest_of(&self, image_ref: &str) -> Option<Option<String>> {
        let (host, rest) = image_ref.trim().split_once('/')?;
        if !host.eq_ignore_ascii_case(&self.registry_host()) {
            return None;
        }
        let (name_and_tag, digest) = match rest.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (rest, None),
        };
        let last_slash = name_and_tag.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(colon) => {
                let at = last_slash + colon;
                (&name_and_tag[..at], Some(&name_and_tag[at + 1..]))
            }
            None => (name_and_tag, None),
        };
        let Some(repo) = self.repo(name) else {
            return Some(None);
        };
        let found = match (digest, tag) {
            (Some(digest), Some(tag)) => repo
                .by_digest(digest)
                .filter(|i| i.tags.iter().any(|t| t == tag)),
            (Some(digest), None) => repo.by_digest(digest),
            (None, tag) => repo.by_tag(tag.unwrap_or("latest")),
        };
        Some(found.map(|i| i.digest.clone()))
    }

    /// Dispatches one awsJson1.1 operation (the part of `X-Amz-Target` after the dot).
    pub fn handle(&mut self, operation: &str, body: &Value, now: f64) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::client(
                "SerializationException",
                "The request body must be a JSON object",
            ));
        }
        match operation {
            "DescribeRepositories" => self.describe_repositories(body),
            "CreateRepository" => self.create_repository(body, now),
            "DescribeImages" => self.describe_images(body),
            "ListImages" => self.list_images(body),
            "BatchGetImage" => self.batch_get_image(body),
            "PutImage" => self.api_put_image(body, now),
            _ => Err(ApiError::client(
                "UnknownOperationException",
                format!(
                    "The operation '{operation}' is not supported by the cortado sandbox's ECR emulation"
                ),
            )),
        }
    }

    fn check_registry(&self, body: &Value) -> Result<(), ApiError> {
        match body.get("registryId").and_then(Value::as_str) {
            Some(id) if id != self.account() => Err(invalid(format!(
                "Registry '{id}' is not the sandbox's registry '{}'",
                self.account()
            ))),
            _ => Ok(()),
        }
    }

    fn repository_name<'b>(&self, body: &'b Value) -> Result<&'b str, ApiError> {
        self.check_registry(body)?;
        body.get("repositoryName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("Missing required parameter 'repositoryName'"))
    }

    fn repository_json(&self, repo: &Repository) -> Value {
        json!({
            "repositoryArn": format!("arn:aws:ecr:{}:{}:repository/{}", self.region(), self.account(), repo.name),
            "registryId": self.account(),
            "repositoryName": repo.name,
            "repositoryUri": format!("{}/{}", self.registry_host(), repo.name),
            "createdAt": repo.created_at,
            "imageTagMutability": repo.tag_mutability,
            "imageScanningConfiguration": {"scanOnPush": false},
            "encryptionConfiguration": {"encryptionType": "AES256"},
        })
    }

    fn image_detail(&self, repo: &Repository, image: &Image) -> Value {
        let mut detail = json!({
            "registryId": self.account(),
            "repositoryName": repo.name,
            "imageDigest": image.digest,
            "imageSizeInBytes": image.size,
            "imagePushedAt": image.pushed_at,
            "imageManifestMediaType": image.media_type,
            "artifactMediaType": CONFIG_MEDIA_TYPE,
        });
        if !image.tags.is_empty()
            && let Some(object) = detail.as_object_mut()
        {
            object.insert("imageTags".into(), json!(image.tags));
        }
        detail
    }

    fn describe_repositories(&self, body: &Value) -> Result<Value, ApiError> {
        self.check_registry(body)?;
        let names = string_array(body, "repositoryNames")?;
        let mut out = Vec::new();
        match names {
            None => out.extend(self.repositories.iter().map(|r| self.repository_json(r))),
            Some(names) => {
                for name in names {
                    let repo = self.repo(&name).ok_or_else(|| self.repo_not_found(&name))?;
                    out.push(self.repository_json(repo));
                }
            }
        }
        Ok(json!({ "repositories": out }))
    }

    fn create_repository(&mut self, body: &Value, now: f64) -> Result<Value, ApiError> {
        let name = self.repository_name(body)?.to_string();
        if !is_valid_repository_name(&name) {
            return Err(invalid(format!(
                "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*'' (got '{name}')"
            )));
        }
        if self.repo(&name).is_some() {
            return Err(ApiError::client(
                "RepositoryAlreadyExistsException",
                format!(
                    "The repository with name '{name}' already exists in the registry with id '{}'",
                    self.account()
                ),
            ));
        }
        let mutability = match body.get("imageTagMutability").and_then(Value::as_str) {
            None | Some("MUTABLE") => "MUTABLE",
            Some("IMMUTABLE") => "IMMUTABLE",
            Some(other) => {
                return Err(invalid(format!(
                    "imageTagMutability must be MUTABLE or IMMUTABLE, got '{other}'"
                )));
            }
        };
        let index = self.ensure_repository(&name, now);
        self.repositories[index].tag_mutability = mutability.to_string();
        Ok(json!({ "repository": self.repository_json(&self.repositories[index]) }))
    }

    fn describe_images(&self, body: &Value) -> Result<Value, ApiError> {
        let name = self.repository_name(body)?;
        let repo = self.repo(name).ok_or_else(|| self.repo_not_found(name))?;
        let mut details = Vec::new();
        match image_ids(body)? {
            Some(ids) => {
                let mut seen: Vec<&str> = Vec::new();
                for id in ids {
                    let image = lookup(repo, &id).map_err(|(code, reason)| {
                        if code == "InvalidImageDigest" || code == "MissingDigestAndTag" {
                            invalid(reason)
                        } else {
                            ApiError::client(
                                "ImageNotFoundException",
                                format!(
                                    "The image with imageId {} does not exist within the repository with name '{name}' in the registry with id '{}'",
                                    id.describe(),
                                    self.account()
                                ),
                            )
                        }
                    })?;
                    if !seen.contains(&image.digest.as_str()) {
                        seen.push(&image.digest);
                        details.push(self.image_detail(repo, image));
                    }
                }
            }
            None => {
                let status = body
                    .get("filter")
                    .and_then(|f| f.get("tagStatus"))
                    .and_then(Value::as_str)
                    .unwrap_or("ANY");
                for image in &repo.images {
                    let keep = match status {
                        "TAGGED" => !image.tags.is_empty(),
                        "UNTAGGED" => image.tags.is_empty(),
                        _ => true,
                    };
                    if keep {
                        details.push(self.image_detail(repo, image));
                    }
                }
            }
        }
        Ok(json!({ "imageDetails": details }))
    }

    fn list_images(&self, body: &Value) -> Result<Value, ApiError> {
        let name = self.repository_name(body)?;
        let repo = self.repo(name).ok_or_else(|| self.repo_not_found(name))?;
        let mut ids = Vec::new();
        for image in &repo.images {
            if image.tags.is_empty() {
                ids.push(json!({ "imageDigest": image.digest }));
            }
            for tag in &image.tags {
                ids.push(json!({ "imageDigest": image.digest, "imageTag": tag }));
            }
        }
        Ok(json!({ "imageIds": ids }))
    }

    fn batch_get_image(&self, body: &Value) -> Result<Value, ApiError> {
        let name = self.repository_name(body)?;
        let repo = self.repo(name).ok_or_else(|| self.repo_not_found(name))?;
        let ids =
            image_ids(body)?.ok_or_else(|| invalid("Missing required parameter 'imageIds'"))?;
        if ids.is_empty() || ids.len() > 100 {
            return Err(invalid(format!(
                "imageIds must hold 1 to 100 entries, got {}",
                ids.len()
            )));
        }
        let mut images = Vec::new();
        let mut failures = Vec::new();
        for id in ids {
            match lookup(repo, &id) {
                Ok(image) => {
                    let mut image_id = serde_json::Map::new();
                    image_id.insert("imageDigest".into(), json!(image.digest));
                    if let Some(tag) = &id.tag {
                        image_id.insert("imageTag".into(), json!(tag));
                    }
                    images.push(json!({
                        "registryId": self.account(),
                        "repositoryName": repo.name,
                        "imageId": Value::Object(image_id),
                        "imageManifest": image.manifest,
                        "imageManifestMediaType": image.media_type,
                    }));
                }
                Err((code, reason)) => failures.push(json!({
                    "imageId": id.to_json(),
                    "failureCode": code,
                    "failureReason": reason,
                })),
            }
        }
        Ok(json!({ "images": images, "failures": failures }))
    }

    fn api_put_image(&mut self, body: &Value, now: f64) -> Result<Value, ApiError> {
        let name = self.repository_name(body)?.to_string();
        let manifest = body
            .get("imageManifest")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| invalid("Missing required parameter 'imageManifest'"))?
            .to_string();
        let tag = body.get("imageTag").and_then(Value::as_str);
        if let Some(tag) = tag
            && !is_valid_tag(tag)
        {
            return Err(invalid(format!("Invalid image tag '{tag}'")));
        }
        let media_type = match body.get("imageManifestMediaType").and_then(Value::as_str) {
            Some(given) => given.to_string(),
            None => serde_json::from_str::<Value>(&manifest)
                .ok()
                .and_then(|m| {
                    m.get("mediaType")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_else(|| MANIFEST_MEDIA_TYPE.to_string()),
        };
        let digest = sha256_digest(manifest.as_bytes());
        if let Some(given) = body.get("imageDigest").and_then(Value::as_str)
            && given != digest
        {
            return Err(ApiError::client(
                "ImageDigestDoesNotMatchException",
                format!(
                    "The image digest '{given}' does not match the manifest's digest '{digest}'"
                ),
            ));
        }
        let repo = self.repo(&name).ok_or_else(|| self.repo_not_found(&name))?;
        if let Some(existing) = repo.by_digest(&digest)
            && tag.is_none_or(|t| existing.tags.iter().any(|x| x == t))
        {
            return Err(ApiError::client(
                "ImageAlreadyExistsException",
                format!(
                    "Image with digest '{digest}' and tag '{}' already exists in the repository with name '{name}' in the registry with id '{}'",
                    tag.unwrap_or("null"),
                    self.account()
                ),
            ));
        }
        if let Some(tag) = tag
            && repo.tag_mutability == "IMMUTABLE"
            && repo.by_tag(tag).is_some()
        {
            return Err(ApiError::client(
                "ImageTagAlreadyExistsException",
                format!(
                    "The image tag '{tag}' already exists in the '{name}' repository and cannot be overwritten because the repository is immutable"
                ),
            ));
        }
        let size = seeded_size(&digest);
        let index = self.ensure_repository(&name, now);
        let repo = &mut self.repositories[index];
        store_image(repo, &digest, tag, manifest.clone(), &media_type, size, now);
        let mut image_id = serde_json::Map::new();
        image_id.insert("imageDigest".into(), json!(digest));
        if let Some(tag) = tag {
            image_id.insert("imageTag".into(), json!(tag));
        }
        Ok(json!({
            "image": {
                "registryId": self.account(),
                "repositoryName": name,
                "imageId": Value::Object(image_id),
                "imageManifest": manifest,
                "imageManifestMediaType": media_type,
            }
        }))
    }
}

/// Adds an image or a tag to an existing image; a tag moves away from any other image.
fn store_image(
    repo: &mut Repository,
    digest: &str,
    tag: Option<&str>,
    manifest: String,
    media_type: &str,
    size: i64,
    now: f64,
) {
    if let Some(tag) = tag {
        for image in repo.images.iter_mut().filter(|i| i.digest != digest) {
            image.tags.retain(|t| t != tag);
        }
    }
    match repo.images.iter_mut().find(|i| i.digest == digest) {
        Some(image) => {
            if let Some(tag) = tag
                && !image.tags.iter().any(|t| t == tag)
            {
                image.tags.push(tag.to_string());
            }
        }
        None => repo.images.push(Image {
            digest: digest.to_string(),
            tags: tag.map(|t| vec![t.to_string()]).unwrap_or_default(),
            pushed_at: now,
            size,
            manifest,
            media_type: media_type.to_string(),
        }),
    }
}

/// A plausible, deterministic image size (20-100 MB) drawn from the digest.
fn seeded_size(digest: &str) -> i64 {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let seed = hex
        .get(..8)
        .and_then(|h| i64::from_str_radix(h, 16).ok())
        .unwrap_or(0);
    20_000_000 + seed % 80_000_000
}

/// A small Docker v2 manifest for a seeded image.
fn seeded_manifest(digest: &str) -> String {
    let config_digest = sha256_digest(format!("{digest}:config").as_bytes());
    let layer_digest = sha256_digest(format!("{digest}:layer").as_bytes());
    json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "size": 1469, "digest": config_digest},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "size": seeded_size(digest), "digest": layer_digest}],
    })
    .to_string()
}

/// An optional array of strings; anything else there is an `InvalidParameterException`.
fn string_array(body: &Value, key: &str) -> Result<Option<Vec<String>>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid(format!("Every entry of '{key}' must be a string")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid(format!("'{key}' must be an array of strings"))),
    }
}

/// The optional `imageIds` array.
fn image_ids(body: &Value) -> Result<Option<Vec<ImageId>>, ApiError> {
    match body.get("imageIds") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                if !item.is_object() {
                    return Err(invalid("Every entry of 'imageIds' must be an object"));
                }
                let field = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_string);
                Ok(ImageId {
                    tag: field("imageTag"),
                    digest: field("imageDigest"),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid("'imageIds' must be an array")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    fn seeded() -> (Ecr, String) {
        let mut ecr = Ecr::new("us-east-1", "123456789012");
        let digest = ecr.put_image("team/web", "v1", 1000.0);
        (ecr, digest)
    }

    #[test]
    fn seeded_digests_are_sha256_of_repo_and_tag() {
        let (mut ecr, digest) = seeded();
        // sha256("team/web:v1"), computed independently with `printf 'team/web:v1' | sha256sum`.
        assert_eq!(
            digest,
            "sha256:978bbf107a171a0b469e3028ea4e44f19075f47efe31b912776bd0d33995d843"
        );
        assert_eq!(ecr.put_image("team/web", "v1", 2000.0), digest);
        let other = ecr.put_image("team/web", "v2", 2000.0);
        assert_ne!(other, digest);
        assert_eq!(ecr.repositories.len(), 1);
        assert_eq!(ecr.repositories[0].images.len(), 2);
    }

    #[test]
    fn resolve_checks_only_this_registry() {
        let (ecr, digest) = seeded();
        assert_eq!(ecr.resolve(&format!("{HOST}/team/web:v1")), Some(true));
        assert_eq!(ecr.resolve(&format!("{HOST}/team/web:v9")), Some(false));
        assert_eq!(ecr.resolve(&format!("{HOST}/team/web")), Some(false));
        assert_eq!(
            ecr.resolve(&format!("{HOST}/team/web@{digest}")),
            Some(true)
        );
        assert_eq!(
            ecr.resolve(&format!("{HOST}/team/web:v1@{digest}")),
            Some(true)
        );
        assert_eq!(
            ecr.resolve(&format!("{HOST}/team/web:v2@{digest}")),
            Some(false)
        );
        assert_eq!(
            ecr.resolve(&format!("{HOST}/team/web@sha256:{}", "0".repeat(64))),
            Some(false)
        );
        assert_eq!(ecr.resolve(&format!("{HOST}/other:v1")), Some(false));
        // What ECS resolves a tag to when it starts a container.
        assert_eq!(
            ecr.digest_of(&format!("{HOST}/team/web:v1")),
            Some(Some(digest.clone()))
        );
        assert_eq!(ecr.digest_of(&format!("{HOST}/team/web:v9")), Some(None));
        assert_eq!(ecr.digest_of("nginx:latest"), None);
        assert_eq!(ecr.resolve("nginx:latest"), None);
        assert_eq!(ecr.resolve("docker.io/library/nginx:1.27"), None);
        assert_eq!(ecr.resolve("public.ecr.aws/nginx/nginx:1"), None);
        assert_eq!(
            ecr.resolve("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/web:v1"),
            None
        );
        assert_eq!(ecr.resolve(""), None);
        let mut latest = ecr.clone();
        latest.put_image("team/web", "latest", 0.0);
        assert_eq!(latest.resolve(&format!("{HOST}/team/web")), Some(true));
        // A registry with a port is not ours either.
        assert_eq!(ecr.resolve("localhost:5000/team/web:v1"), None);
    }

    #[test]
    fn describe_images_by_tag_digest_and_all() {
        let (mut ecr, digest) = seeded();
        let out = ecr
            .handle(
                "DescribeImages",
                &json!({"repositoryName": "team/web", "imageIds": [{"imageTag": "v1"}]}),
                0.0,
            )
            .unwrap();
        let detail = &out["imageDetails"][0];
        assert_eq!(detail["imageDigest"], json!(digest));
        assert_eq!(detail["imageTags"], json!(["v1"]));
        assert_eq!(detail["imagePushedAt"], json!(1000.0));
        assert_eq!(detail["registryId"], json!("123456789012"));
        assert!(detail["imageSizeInBytes"].as_i64().unwrap() >= 20_000_000);

        let by_digest = ecr
            .handle(
                "DescribeImages",
                &json!({"repositoryName": "team/web", "imageIds": [{"imageDigest": digest}]}),
                0.0,
            )
            .unwrap();
        assert_eq!(by_digest["imageDetails"], out["imageDetails"]);

        ecr.put_image("team/web", "v2", 5.0);
        let all = ecr
            .handle(
                "DescribeImages",
                &json!({"repositoryName": "team/web"}),
                0.0,
            )
            .unwrap();
        assert_eq!(all["imageDetails"].as_array().unwrap().len(), 2);

        let err = ecr
            .handle(
                "DescribeImages",
                &json!({"repositoryName": "team/web", "imageIds": [{"imageTag": "nope"}]}),
                0.0,
            )
            .unwrap_err();
        assert_eq!(err.code, "ImageNotFoundException");
        assert!(err.message.contains("imageTag:'nope'"));
        let err = ecr
            .handle("DescribeImages", &json!({"repositoryName": "ghost"}), 0.0)
            .unwrap_err();
        assert_eq!(err.code, "RepositoryNotFoundException");
        let err = ecr
            .handle(
                "DescribeImages",
                &json!({"repositoryName": "team/web", "imageIds": [{"imageDigest": "sha256:bad"}]}),
                0.0,
            )
            .unwrap_err();
        assert_eq!(err.code, "InvalidParameterException");
        let err = ecr.handle("DescribeImages", &json!({}), 0.0).unwrap_err();
        assert_eq!(err.code, "InvalidParameterException");
        let err = ecr.handle("DescribeImages", &json!([1]), 0.0).unwrap_err();
        assert_eq!(err.code, "SerializationException");
    }

    #[test]
    fn batch_get_image_reports_failures() {
        let (mut ecr, digest) = seeded();
        let missing = format!("sha256:{}", "1".repeat(64));
        let out = ecr
            .handle(
                "BatchGetImage",
                &json!({"repositoryName": "team/web", "imageIds": [
                    {"imageTag": "v1"}, {"imageTag": "v7"}, {"imageDigest": missing},
                    {"imageTag": "v2", "imageDigest": digest}, {}
                ]}),
                0.0,
            )
            .unwrap();
        let images = out["images"].as_array().unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(
            images[0]["imageId"],
            json!({"imageDigest": digest, "imageTag": "v1"})
        );
        let manifest: Value =
            serde_json::from_str(images[0]["imageManifest"].as_str().unwrap()).unwrap();
        assert_eq!(manifest["schemaVersion"], json!(2));
        let codes: Vec<&str> = out["failures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["failureCode"].as_str().unwrap())
            .collect();
        assert_eq!(
            codes,
            vec![
                "ImageNotFound",
                "ImageNotFound",
                "ImageTagDoesNotMatchDigest",
                "MissingDigestAndTag"
            ]
        );
        assert_eq!(out["failures"][0]["imageId"], json!({"imageTag": "v7"}));
        let err = ecr
            .handle("BatchGetImage", &json!({"repositoryName": "team/web"}), 0.0)
            .unwrap_err();
        assert_eq!(err.code, "InvalidParameterException");
    }

    #[test]
    fn repositories_and_put_image() {
        let (mut ecr, _) = seeded();
        let out = ecr
            .handle("CreateRepository", &json!({"repositoryName": "api"}), 7.0)
            .unwrap();
        assert_eq!(
            out["repository"]["repositoryUri"],
            json!(format!("{HOST}/api"))
        );
        assert_eq!(
            out["repository"]["repositoryArn"],
            json!("arn:aws:ecr:us-east-1:123456789012:repository/api")
        );
        assert_eq!(out["repository"]["createdAt"], json!(7.0));
        let err = ecr
            .handle("CreateRepository", &json!({"repositoryName": "api"}), 7.0)
            .unwrap_err();
        assert_eq!(err.code, "RepositoryAlreadyExistsException");
        let err = ecr
            .handle(
                "CreateRepository",
                &json!({"repositoryName": "Bad_Name"}),
                7.0,
            )
            .unwrap_err();
        assert_eq!(err.code, "InvalidParameterException");

        let listed = ecr
            .handle(
                "DescribeRepositories",
                &json!({"repositoryNames": ["api"]}),
                0.0,
            )
            .unwrap();
        assert_eq!(listed["repositories"].as_array().unwrap().len(), 1);
        let all = ecr.handle("DescribeRepositories", &json!({}), 0.0).unwrap();
        assert_eq!(all["repositories"].as_array().unwrap().len(), 2);
        let err = ecr
            .handle(
                "DescribeRepositories",
                &json!({"repositoryNames": ["api", "ghost"]}),
                0.0,
            )
            .unwrap_err();
        assert_eq!(err.code, "RepositoryNotFoundException");
        assert!(err.message.contains("'ghost'"));

        let manifest = r#"{"schemaVersion":2}"#;
        let put = ecr
            .handle(
                "PutImage",
                &json!({"repositoryName": "api", "imageManifest": manifest, "imageTag": "v1"}),
                9.0,
            )
            .unwrap();
        let digest = put["image"]["imageId"]["imageDigest"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(digest, sha256_digest(manifest.as_bytes()));
        assert_eq!(ecr.resolve(&format!("{HOST}/api:v1")), Some(true));
        let err = ecr
            .handle(
                "PutImage",
                &json!({"repositoryName": "api", "imageManifest": manifest, "imageTag": "v1"}),
                9.0,
            )
            .unwrap_err();
        assert_eq!(err.code, "ImageAlreadyExistsException");
        // A tag moves to the newly pushed image.
        ecr.handle(
            "PutImage",
            &json!({"repositoryName": "api", "imageManifest": "{\"schemaVersion\":2,\"x\":1}", "imageTag": "v1"}),
            10.0,
        )
        .unwrap();
        let untagged = ecr
            .handle(
                "DescribeImages",
                &json!({"repositoryName": "api", "filter": {"tagStatus": "UNTAGGED"}}),
                0.0,
            )
            .unwrap();
        assert_eq!(untagged["imageDetails"][0]["imageDigest"], json!(digest));
        assert!(untagged["imageDetails"][0].get("imageTags").is_none());
        let err = ecr
            .handle(
                "PutImage",
                &json!({"repositoryName": "ghost", "imageManifest": "{}"}),
                0.0,
            )
            .unwrap_err();
        assert_eq!(err.code, "RepositoryNotFoundException");
        let err = ecr.handle("DeleteRegistry", &json!({}), 0.0).unwrap_err();
        assert_eq!(err.code, "UnknownOperationException");
    }

    #[test]
    fn immutable_repositories_refuse_tag_overwrites() {
        let mut ecr = Ecr::new("us-east-1", "123456789012");
        ecr.handle(
            "CreateRepository",
            &json!({"repositoryName": "locked", "imageTagMutability": "IMMUTABLE"}),
            0.0,
        )
        .unwrap();
        let push = |ecr: &mut Ecr, manifest: &str| {
            ecr.handle(
                "PutImage",
                &json!({"repositoryName": "locked", "imageManifest": manifest, "imageTag": "v1"}),
                0.0,
            )
        };
        push(&mut ecr, "{\"a\":1}").unwrap();
        assert_eq!(
            push(&mut ecr, "{\"a\":2}").unwrap_err().code,
            "ImageTagAlreadyExistsException"
        );
    }
}

/// The real Rust SDK against [`Ecr::handle`], over HTTP.
#[cfg(test)]
mod sdk_tests {
    use aws_sdk_ecr::Client;
    use aws_sdk_ecr::config::retry::RetryConfig;
    use aws_sdk_ecr::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_ecr::error::ProvideErrorMetadata;
    use aws_sdk_ecr::types::{ImageFailureCode, ImageIdentifier};

    use super::*;
    use crate::elbv2::Elbv2;
    use crate::test_server;

    #[tokio::test]
    async fn the_sdk_reads_images_through_the_emulator() {
        let mut ecr = Ecr::new("us-east-1", "123456789012");
        let digest = ecr.put_image("team/web", "v1", 1_700_000_000.0);
        let state = test_server::sandbox(Elbv2::default(), ecr);
        let url = test_server::start(state.clone()).await;
        let conf = aws_sdk_ecr::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(url)
            .credentials_provider(Credentials::new("a", "b", None, None, "t"))
            .retry_config(RetryConfig::disabled())
            .build();
        let client = Client::from_conf(conf);

        let out = client
            .describe_images()
            .repository_name("team/web")
            .image_ids(ImageIdentifier::builder().image_tag("v1").build())
            .send()
            .await
            .unwrap();
        let detail = &out.image_details()[0];
        assert_eq!(detail.image_digest(), Some(digest.as_str()));
        assert_eq!(detail.image_tags(), ["v1".to_string()]);
        assert_eq!(detail.registry_id(), Some("123456789012"));
        assert_eq!(
            detail.image_pushed_at().map(|t| t.secs()),
            Some(1_700_000_000)
        );
        assert!(detail.image_size_in_bytes().unwrap_or(0) > 0);

        let err = client
            .describe_images()
            .repository_name("team/web")
            .image_ids(ImageIdentifier::builder().image_tag("v9").build())
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(err.is_image_not_found_exception(), "{err:?}");
        let err = client
            .describe_images()
            .repository_name("ghost")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(err.is_repository_not_found_exception(), "{err:?}");
        assert!(err.message().unwrap_or_default().contains("ghost"));

        let batch = client
            .batch_get_image()
            .repository_name("team/web")
            .image_ids(ImageIdentifier::builder().image_digest(&digest).build())
            .image_ids(ImageIdentifier::builder().image_tag("nope").build())
            .send()
            .await
            .unwrap();
        assert_eq!(batch.images().len(), 1);
        let image = &batch.images()[0];
        assert_eq!(
            image.image_id().and_then(|i| i.image_digest()),
            Some(digest.as_str())
        );
        assert!(
            image
                .image_manifest()
                .unwrap_or_default()
                .contains("schemaVersion")
        );
        let failure = &batch.failures()[0];
        assert_eq!(
            failure.failure_code(),
            Some(&ImageFailureCode::ImageNotFound)
        );
        assert_eq!(failure.image_id().and_then(|i| i.image_tag()), Some("nope"));

        let repos = client.describe_repositories().send().await.unwrap();
        assert_eq!(
            repos.repositories()[0].repository_uri(),
            Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/web")
        );
        let err = client
            .create_repository()
            .repository_name("team/web")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(err.is_repository_already_exists_exception(), "{err:?}");
        client
            .put_image()
            .repository_name("team/web")
            .image_manifest("{\"schemaVersion\":2}")
            .image_tag("v2")
            .send()
            .await
            .unwrap();
        assert_eq!(
            state
                .lock()
                .unwrap()
                .ecr
                .resolve("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/web:v2"),
            Some(true)
        );
    }
}
