//! Amazon S3 emulation, as far as `tfstate` plugins with `s3://` URLs and a rehearsal's
//! seeding need: buckets and whole objects.
//!
//! Receives REST requests (method, `Host`, path, query, body): `GetObject`, `HeadObject`,
//! `PutObject`, `CreateBucket` and `HeadBucket`, addressed path-style
//! (`http://127.0.0.1:PORT/BUCKET/KEY`, what SDKs send to a custom endpoint) or
//! virtual-hosted (`http://BUCKET.localhost:PORT/KEY`). A body sent `aws-chunked` (SDKs do so
//! for PutObject with a checksum trailer) is decoded. Hands back an [`Answer`]: status,
//! headers and body in S3's shapes, errors as S3's `<Error>` document (`NoSuchKey`,
//! `NoSuchBucket`, `InvalidBucketName`, `BucketAlreadyOwnedByYou`; `NotImplemented` for the
//! rest of S3). No versions, ranges, ACLs, policies, multipart uploads or listings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One HTTP request, as the S3 emulation needs it.
pub struct Request<'a> {
    pub method: &'a str,
    /// The `Host` header (with its port), for virtual-hosted addressing.
    pub host: Option<&'a str>,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub content_type: Option<&'a str>,
    /// The body is `aws-chunked` (`Content-Encoding`, or `x-amz-content-sha256: STREAMING-*`).
    pub aws_chunked: bool,
    pub body: &'a [u8],
}

/// What to answer, and how to log it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// The S3 operation the request was (e.g. `GetObject`).
    pub operation: String,
    /// S3's error code when the answer is an error.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Object {
    body: Vec<u8>,
    content_type: String,
    modified: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Bucket {
    created: f64,
    objects: BTreeMap<String, Object>,
}

/// The buckets of one sandbox.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct S3 {
    buckets: BTreeMap<String, Bucket>,
}

/// S3's rules for a bucket name: 3 to 63 characters of lowercase letters, digits, `.` and
/// `-`, starting and ending with a letter or digit.
pub fn valid_bucket_name(name: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&name.len())
        && name.chars().all(ok_char)
        && edge(name.chars().next())
        && edge(name.chars().last())
        && !name.contains("..")
}

fn http_date(seconds: f64) -> String {
    aws_smithy_types::DateTime::from_secs_f64(seconds)
        .fmt(aws_smithy_types::date_time::Format::HttpDate)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 GMT".to_string())
}

/// An entity tag for a body: quoted hex, 32 digits (AWS uses the MD5 of a single-part body;
/// the sandbox the first half of its SHA-256).
fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Percent-decodes a path segment (`%2F` and the like); invalid escapes stay as they are.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes an `aws-chunked` body: `HEX[;chunk-signature=..]\r\nDATA\r\n` chunks up to a
/// zero-size one, then trailers. None when it is not well formed.
fn dechunk(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if rest.len() < size + 2 || &rest[size..size + 2] != b"\r\n" {
            return None;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// (bucket, key) of a request: virtual-hosted when the host is `BUCKET.localhost`, else the
/// path's first segment and the rest.
fn address(host: Option<&str>, path: &str) -> (Option<String>, Option<String>) {
    let hostname = host.map(|h| h.rsplit_once(':').map_or(h, |(n, _)| n));
    let path = path.strip_prefix('/').unwrap_or(path);
    if let Some(bucket) = hostname.and_then(|h| h.strip_suffix(".localhost")) {
        let key = (!path.is_empty()).then(|| decode(path));
        return (Some(bucket.to_string()), key);
    }
    match path.split_once('/') {
        Some((b, k)) if !k.is_empty() => (Some(decode(b)), Some(decode(k))),
        Some((b, _)) => (Some(decode(b)), None),
        None if path.is_empty() => (None, None),
        None => (Some(decode(path)), None),
    }
}

/// The S3 operation a request is (`GetObject`, `PutObject`, ...): what the request log and
/// fault rules name it. Requests with a sub-resource in the query (`?acl`, `?tagging`,
/// `?list-type=2`, ...) are other operations, named by method and sub-resource.
pub fn operation(req: &Request<'_>) -> String {
    let (bucket, key) = address(req.host, req.path);
    let sub: Vec<&str> = req
        .query
        .unwrap_or_default()
        .split('&')
        .filter_map(|p| p.split('=').next())
        .filter(|k| !k.is_empty() && *k != "x-id")
        .collect();
    match (req.method, &bucket, &key) {
        _ if !sub.is_empty() => format!("{} ?{}", req.method, sub.join("&")),
        ("GET", Some(_), Some(_)) => "GetObject".into(),
        ("HEAD", Some(_), Some(_)) => "HeadObject".into(),
        ("PUT", Some(_), Some(_)) => "PutObject".into(),
        ("PUT", Some(_), None) => "CreateBucket".into(),
        ("HEAD", Some(_), None) => "HeadBucket".into(),
        ("GET", Some(_), None) => "ListObjects".into(),
        ("GET", None, None) => "ListBuckets".into(),
        (m, _, Some(_)) => format!("{m} object"),
        (m, _, None) => format!("{m} bucket"),
    }
}

/// S3's `<Error>` document.
pub fn error_body(code: &str, message: &str, extra: &str, rid: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message>{extra}<RequestId>{rid}</RequestId></Error>",
        escape(message)
    )
    .into_bytes()
}

impl S3 {
    /// Creates a bucket unless it exists (seeding).
    pub fn ensure_bucket(&mut self, name: &str, now: f64) {
        self.buckets.entry(name.to_string()).or_insert(Bucket {
            created: now,
            objects: BTreeMap::new(),
        });
    }

    /// Puts an object, creating its bucket (seeding).
    pub fn put(&mut self, bucket: &str, key: &str, body: Vec<u8>, now: f64) {
        self.ensure_bucket(bucket, now);
        if let Some(b) = self.buckets.get_mut(bucket) {
            b.objects.insert(
                key.to_string(),
                Object {
                    body,
                    content_type: "binary/octet-stream".into(),
                    modified: now,
                },
            );
        }
    }

    /// Handles one REST request.
    pub fn handle(&mut self, req: &Request<'_>, region: &str, now: f64, rid: &str) -> Answer {
        let (bucket, key) = address(req.host, req.path);
        let op = operation(req);
        let head = req.method == "HEAD";
        let err = |status: u16, code: &str, message: &str, extra: String| Answer {
            status,
            headers: vec![("content-type", "application/xml".into())],
            body: if head {
                Vec::new()
            } else {
                error_body(code, message, &extra, rid)
            },
            operation: op.clone(),
            error: Some(code.to_string()),
        };
        let bucket_tag = |b: &str| format!("<BucketName>{}</BucketName>", escape(b));
        let (Some(b), implemented) = (
            bucket.clone(),
            matches!(
                op.as_str(),
                "GetObject" | "HeadObject" | "PutObject" | "CreateBucket" | "HeadBucket"
            ),
        ) else {
            return err(
                501,
                "NotImplemented",
                "The sandbox does not implement S3 ListBuckets.",
                String::new(),
            );
        };
        if !implemented {
            return err(
                501,
                "NotImplemented",
                &format!("The sandbox does not implement S3 {op}."),
                String::new(),
            );
        }
        if op == "CreateBucket" {
            return self.create_bucket(&b, region, now, &op, err);
        }
        let Some(found) = self.buckets.get_mut(&b) else {
            return err(
                404,
                "NoSuchBucket",
                "The specified bucket does not exist.",
                bucket_tag(&b),
            );
        };
        let ok = |headers: Vec<(&'static str, String)>, body: Vec<u8>| Answer {
            status: 200,
            headers,
            body,
            operation: op.clone(),
            error: None,
        };
        let Some(key) = key else {
            return ok(
                vec![("x-amz-bucket-region", region.to_string())],
                Vec::new(),
            );
        };
        if op == "PutObject" {
            return match put_object(found, key, req, now) {
                Some(tag) => ok(vec![("etag", tag)], Vec::new()),
                None => err(
                    400,
                    "IncompleteBody",
                    "The aws-chunked body is not well formed.",
                    String::new(),
                ),
            };
        }
        let Some(o) = found.objects.get(&key) else {
            let extra = format!("<Key>{}</Key>", escape(&key));
            return err(404, "NoSuchKey", "The specified key does not exist.", extra);
        };
        let headers = vec![
            ("content-type", o.content_type.clone()),
            ("etag", etag(&o.body)),
            ("last-modified", http_date(o.modified)),
            ("accept-ranges", "bytes".into()),
            ("content-length", o.body.len().to_string()),
        ];
        ok(headers, if head { Vec::new() } else { o.body.clone() })
    }

    fn create_bucket(
        &mut self,
        name: &str,
        region: &str,
        now: f64,
        op: &str,
        err: impl Fn(u16, &str, &str, String) -> Answer,
    ) -> Answer {
        if !valid_bucket_name(name) {
            return err(
                400,
                "InvalidBucketName",
                "The specified bucket is not valid.",
                format!("<BucketName>{}</BucketName>", escape(name)),
            );
        }
        // AWS answers 200 in us-east-1 when the caller already owns the bucket.
        if self.buckets.contains_key(name) && region != "us-east-1" {
            return err(
                409,
                "BucketAlreadyOwnedByYou",
                "Your previous request to create the named bucket succeeded and you already own it.",
                format!("<BucketName>{}</BucketName>", escape(name)),
            );
        }
        self.ensure_bucket(name, now);
        Answer {
            status: 200,
            headers: vec![("location", format!("/{name}"))],
            body: Vec::new(),
            operation: op.to_string(),
            error: None,
        }
    }
}

/// PutObject: stores the body (decoded when aws-chunked); returns its ETag, or None for an
/// aws-chunked body that is not well formed.
fn put_object(bucket: &mut Bucket, key: String, req: &Request<'_>, now: f64) -> Option<String> {
    let body = if req.aws_chunked {
        dechunk(req.body)?
    } else {
        req.body.to_vec()
    };
    let tag = etag(&body);
    bucket.objects.insert(
        key,
        Object {
            body,
            content_type: req
                .content_type
                .unwrap_or("binary/octet-stream")
                .to_string(),
            modified: now,
        },
    );
    Some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(method: &'a str, host: &'a str, path: &'a str, body: &'a [u8]) -> Request<'a> {
        Request {
            method,
            host: Some(host),
            path,
            query: Some("x-id=Op"),
            content_type: None,
            aws_chunked: false,
            body,
        }
    }

    #[test]
    fn path_style_and_virtual_hosted_address_the_same_object() {
        let mut s3 = S3::default();
        let put = s3.handle(
            &req("PUT", "127.0.0.1:9", "/states", b""),
            "eu-west-1",
            0.0,
            "r",
        );
        assert_eq!((put.status, put.operation.as_str()), (200, "CreateBucket"));
        let put = s3.handle(
            &req("PUT", "127.0.0.1:9", "/states/net/terraform.tfstate", b"{}"),
            "eu-west-1",
            0.0,
            "r",
        );
        assert_eq!((put.status, put.operation.as_str()), (200, "PutObject"));
        for (host, path) in [
            ("127.0.0.1:9", "/states/net/terraform.tfstate"),
            ("states.localhost:9", "/net/terraform.tfstate"),
            ("127.0.0.1:9", "/states/net%2Fterraform.tfstate"),
        ] {
            let got = s3.handle(&req("GET", host, path, b""), "eu-west-1", 0.0, "r");
            assert_eq!(
                (got.status, got.body.as_slice()),
                (200, &b"{}"[..]),
                "{host}{path}"
            );
        }
        let again = s3.handle(
            &req("PUT", "127.0.0.1:9", "/states", b""),
            "eu-west-1",
            0.0,
            "r",
        );
        assert_eq!(again.error.as_deref(), Some("BucketAlreadyOwnedByYou"));
    }

    #[test]
    fn missing_objects_buckets_and_unknown_operations() {
        let mut s3 = S3::default();
        s3.put("b1b", "k", b"x".to_vec(), 0.0);
        let e = s3.handle(&req("GET", "h", "/b1b/nope", b""), "us-east-1", 0.0, "r");
        assert_eq!((e.status, e.error.as_deref()), (404, Some("NoSuchKey")));
        assert!(String::from_utf8_lossy(&e.body).contains("<Key>nope</Key>"));
        let e = s3.handle(&req("GET", "h", "/zzz/k", b""), "us-east-1", 0.0, "r");
        assert_eq!((e.status, e.error.as_deref()), (404, Some("NoSuchBucket")));
        let head = s3.handle(&req("HEAD", "h", "/zzz/k", b""), "us-east-1", 0.0, "r");
        assert!(head.body.is_empty() && head.status == 404);
        let e = s3.handle(&req("DELETE", "h", "/b1b/k", b""), "us-east-1", 0.0, "r");
        assert_eq!(
            (e.status, e.error.as_deref()),
            (501, Some("NotImplemented"))
        );
        let e = s3.handle(&req("PUT", "h", "/Bad_Name", b""), "us-east-1", 0.0, "r");
        assert_eq!(e.error.as_deref(), Some("InvalidBucketName"));
    }

    #[test]
    fn aws_chunked_bodies_are_decoded() {
        assert_eq!(
            dechunk(b"5;chunk-signature=ab\r\nhello\r\n3\r\n!!!\r\n0\r\nx-amz-checksum-crc32:AAAA\r\n\r\n"),
            Some(b"hello!!!".to_vec())
        );
        assert_eq!(dechunk(b"5\r\nhi\r\n"), None);
        let mut s3 = S3::default();
        s3.ensure_bucket("bkt", 0.0);
        let mut r = req("PUT", "h", "/bkt/k", b"2\r\nok\r\n0\r\n\r\n");
        r.aws_chunked = true;
        assert_eq!(s3.handle(&r, "us-east-1", 0.0, "r").status, 200);
        let got = s3.handle(&req("GET", "h", "/bkt/k", b""), "us-east-1", 0.0, "r");
        assert_eq!(got.body, b"ok");
    }
}
