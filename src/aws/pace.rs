//! The run's client-side rate budget: every request of every client waits for a token of its
//! action category before it leaves, so a run never asks faster than the account's buckets
//! refill, however many services it deploys.
//!
//! Receives each HTTP request the SDK sends (first attempts, retries and pages alike: this is
//! an HTTP client wrapped around the SDK's default one); hands it on to the default client
//! once its category's bucket has a token for it. Waits happen before the request is signed
//! into a connection, outside the per-request read timeout.
//!
//! ECS's categories, capacities and refill rates are those AWS documents in "Request
//! throttling for the Amazon ECS API" (Amazon ECS API Reference,
//! <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html>), the
//! table the sandbox enforces with `--throttle aws` (`cortado_sandbox::ECS_CATEGORIES`, the
//! same figures). cortado keeps [`HEADROOM`] of each bucket's capacity unused, so requests
//! that arrive a little out of step with their grants still find a token, and refills at the
//! documented rate. AWS publishes no bucket figures for ELBv2, ECR, CodeDeploy and the other
//! services cortado calls: each of those gets one bucket of [`OTHER_CAPACITY`] and
//! [`OTHER_REFILL`] a second, a bound of cortado's own choosing.
//!
//! The buckets are the run's: other callers in the same account (other CI jobs) share AWS's
//! buckets too, which no client can see. Throttling answered anyway is retried by the SDK.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// The share of each documented bucket cortado leaves unused.
pub(crate) const HEADROOM: f64 = 0.2;
/// Burst of a service without documented buckets (one bucket for all its actions).
pub(crate) const OTHER_CAPACITY: f64 = 40.0;
/// Refill per second of a service without documented buckets.
pub(crate) const OTHER_REFILL: f64 = 10.0;

/// An ECS action category: (name, actions, documented capacity, documented refill a second).
type Category = (&'static str, &'static [&'static str], f64, f64);

/// ECS's documented table.
const ECS: &[Category] = &[
    (
        "ecs:cluster-modify",
        &[
            "CreateCluster",
            "DeleteCluster",
            "PutClusterCapacityProviders",
            "UpdateCluster",
            "UpdateClusterSettings",
        ],
        20.0,
        1.0,
    ),
    (
        "ecs:cluster-read",
        &["DescribeClusters", "ListClusters"],
        50.0,
        20.0,
    ),
    (
        "ecs:task-definition-modify",
        &["DeregisterTaskDefinition", "RegisterTaskDefinition"],
        20.0,
        1.0,
    ),
    (
        "ecs:task-definition-read",
        &[
            "DescribeTaskDefinition",
            "ListTaskDefinitions",
            "ListTaskDefinitionFamilies",
        ],
        50.0,
        20.0,
    ),
    (
        "ecs:task-definition-delete",
        &["DeleteTaskDefinitions"],
        5.0,
        1.0,
    ),
    (
        "ecs:capacity-provider-read",
        &["DescribeCapacityProviders"],
        50.0,
        20.0,
    ),
    (
        "ecs:tag-modify",
        &["TagResource", "UntagResource"],
        20.0,
        10.0,
    ),
    ("ecs:tag-read", &["ListTagsForResource"], 50.0, 20.0),
    (
        "ecs:capacity-provider-modify",
        &[
            "CreateCapacityProvider",
            "DeleteCapacityProvider",
            "UpdateCapacityProvider",
        ],
        10.0,
        1.0,
    ),
    (
        "ecs:setting-modify",
        &[
            "DeleteAccountSetting",
            "PutAccountSetting",
            "PutAccountSettingDefault",
        ],
        10.0,
        1.0,
    ),
    ("ecs:setting-read", &["ListAccountSettings"], 50.0, 20.0),
    (
        "ecs:agent-modify",
        &[
            "RegisterContainerInstance",
            "SubmitAttachmentStateChanges",
            "SubmitContainerStateChange",
            "SubmitTaskStateChange",
        ],
        200.0,
        120.0,
    ),
    (
        "ecs:task-protection",
        &["UpdateTaskProtection", "GetTaskProtection"],
        200.0,
        80.0,
    ),
    (
        "ecs:cluster-service-resource-read",
        &["ListServicesByNamespace"],
        10.0,
        1.0,
    ),
    (
        "ecs:cluster-resource-modify",
        &[
            "DeleteAttributes",
            "DeregisterContainerInstance",
            "ExecuteCommand",
            "PutAttributes",
            "RunTask",
            "StartTask",
            "StopTask",
            "UpdateContainerAgent",
            "UpdateContainerInstancesState",
        ],
        100.0,
        40.0,
    ),
    (
        "ecs:cluster-resource-read",
        &[
            "DescribeContainerInstances",
            "DescribeTasks",
            "ListAttributes",
            "ListContainerInstances",
            "ListTasks",
        ],
        100.0,
        20.0,
    ),
    (
        "ecs:service-modify",
        &["CreateService", "DeleteService", "UpdateService"],
        50.0,
        5.0,
    ),
    (
        "ecs:service-read",
        &["DescribeServices", "ListServices"],
        100.0,
        20.0,
    ),
    (
        "ecs:service-deployment",
        &["DescribeServiceDeployments", "ListServiceDeployments"],
        50.0,
        20.0,
    ),
    (
        "ecs:service-revision",
        &["DescribeServiceRevisions"],
        50.0,
        20.0,
    ),
];

/// The bucket of a request: its key, capacity and refill a second (cortado's share).
/// `target` is the `X-Amz-Target` header (JSON protocols); `None` for query and REST APIs.
pub(crate) fn bucket_of(target: Option<&str>) -> (&'static str, f64, f64) {
    let other = |key| (key, OTHER_CAPACITY, OTHER_REFILL);
    let Some((prefix, op)) = target.and_then(|t| t.split_once('.')) else {
        // ELBv2 (query protocol), S3 (REST): one bucket for them.
        return other("query-or-rest");
    };
    match prefix {
        "AmazonEC2ContainerServiceV20141113" => ECS
            .iter()
            .find(|c| c.1.contains(&op))
            .map(|c| (c.0, (c.2 * (1.0 - HEADROOM)).floor().max(1.0), c.3))
            .unwrap_or_else(|| other("ecs:unlisted")),
        "AmazonEC2ContainerRegistry_V20150921" => other("ecr"),
        "CodeDeploy_20141006" => other("codedeploy"),
        "AmazonSSM" => other("ssm"),
        "Logs_20140328" => other("logs"),
        "secretsmanager" => other("secretsmanager"),
        _ => other("other"),
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Bucket {
    tokens: f64,
    at: f64,
}

/// Token buckets by category, on a clock of seconds passed in (pure; [`Pacer`] adds time).
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    buckets: BTreeMap<&'static str, Bucket>,
}

impl Buckets {
    /// Reserves a token of `key` at `now` and returns how long to wait before using it.
    /// Reservations are first come, first served: a waiting request holds its place.
    pub(crate) fn reserve(
        &mut self,
        key: &'static str,
        capacity: f64,
        refill: f64,
        now: f64,
    ) -> f64 {
        let b = self.buckets.entry(key).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = (now - b.at).max(0.0);
        b.tokens = (b.tokens + elapsed * refill).min(capacity);
        b.at = b.at.max(now);
        b.tokens -= 1.0;
        if b.tokens >= 0.0 {
            0.0
        } else {
            -b.tokens / refill
        }
    }
}

/// The run's pacer, shared by every client (clones share the buckets).
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    buckets: Arc<Mutex<Buckets>>,
    origin: Instant,
    /// Requests that had to wait, and the seconds they waited in all.
    waited: Arc<Mutex<(u64, f64)>>,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            buckets: Arc::default(),
            origin: Instant::now(),
            waited: Arc::default(),
        }
    }
}

impl Pacer {
    /// How long a request with this `X-Amz-Target` must wait (its token is reserved).
    pub(crate) fn reserve(&self, target: Option<&str>) -> Duration {
        let (key, capacity, refill) = bucket_of(target);
        let now = self.origin.elapsed().as_secs_f64();
        let wait = self
            .buckets
            .lock()
            .map(|mut b| b.reserve(key, capacity, refill, now))
            .unwrap_or(0.0);
        if wait > 0.0
            && let Ok(mut w) = self.waited.lock()
        {
            w.0 += 1;
            w.1 += wait;
        }
        Duration::from_secs_f64(wait)
    }

    /// Requests that waited for a token, and the seconds waited in all.
    pub(crate) fn waited(&self) -> (u64, f64) {
        self.waited.lock().map(|w| *w).unwrap_or_default()
    }
}

/// The SDK's HTTP client with the pacer in front.
#[derive(Debug, Clone)]
pub(crate) struct PacedClient {
    inner: SharedHttpClient,
    pacer: Pacer,
}

impl PacedClient {
    pub(crate) fn new(inner: SharedHttpClient, pacer: Pacer) -> Self {
        PacedClient { inner, pacer }
    }
}

impl HttpClient for PacedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(PacedConnector {
            inner: self.inner.http_connector(settings, components),
            pacer: self.pacer.clone(),
        })
    }
}

#[derive(Debug)]
struct PacedConnector {
    inner: SharedHttpConnector,
    pacer: Pacer,
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let wait = self.pacer.reserve(request.headers().get("x-amz-target"));
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECS_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";

    fn target(op: &str) -> String {
        format!("{ECS_PREFIX}.{op}")
    }

    #[test]
    fn ecs_actions_get_their_documented_category_less_the_headroom() {
        assert_eq!(
            bucket_of(Some(&target("RegisterTaskDefinition"))),
            ("ecs:task-definition-modify", 16.0, 1.0)
        );
        assert_eq!(
            bucket_of(Some(&target("UpdateService"))),
            ("ecs:service-modify", 40.0, 5.0)
        );
        assert_eq!(
            bucket_of(Some(&target("ListTasks"))).0,
            bucket_of(Some(&target("DescribeTasks"))).0
        );
        assert_eq!(
            bucket_of(Some(&target("DescribeServices"))),
            ("ecs:service-read", 80.0, 20.0)
        );
        assert_eq!(bucket_of(None).0, "query-or-rest");
        assert_eq!(
            bucket_of(Some("AmazonEC2ContainerRegistry_V20150921.DescribeImages")).0,
            "ecr"
        );
        assert_eq!(
            bucket_of(Some(&target("StopServiceDeployment"))).0,
            "ecs:unlisted"
        );
    }

    /// The pacing never lets more through than the documented bucket would admit: every
    /// request's send time (now + wait) is checked against a bucket of AWS's full size.
    #[test]
    fn paced_requests_never_exceed_the_documented_bucket() {
        let mut paced = Buckets::default();
        let mut aws = aws_bucket::Bucket::new(20.0, 1.0);
        let (key, cap, refill) = bucket_of(Some(&target("RegisterTaskDefinition")));
        let mut sends = Vec::new();
        // 200 registrations asked for at once, then 50 more 30 s later.
        for i in 0..250 {
            let now = if i < 200 { 0.0 } else { 30.0 };
            sends.push(now + paced.reserve(key, cap, refill, now));
        }
        sends.sort_by(f64::total_cmp);
        for t in &sends {
            assert!(
                aws.admit(*t),
                "a request sent at {t:.3} s would be throttled"
            );
        }
        // Fair and not slower than needed: the 16 first at once, then one a second.
        assert_eq!(sends[15], 0.0);
        assert!((sends[16] - 1.0).abs() < 1e-9, "{}", sends[16]);
        assert!((sends[199] - 184.0).abs() < 1e-6, "{}", sends[199]);
    }

    /// The figures are the sandbox's (which enforces them with `--throttle aws`), action by
    /// action, less the headroom.
    #[test]
    fn the_table_matches_the_sandboxs_documented_buckets() {
        for c in cortado_sandbox::ECS_CATEGORIES {
            for a in c.actions {
                let (_, cap, refill) = bucket_of(Some(&target(a)));
                assert_eq!(cap, (c.capacity * (1.0 - HEADROOM)).floor(), "{a}");
                assert_eq!(refill, c.refill_per_second, "{a}");
            }
        }
        let listed: usize = cortado_sandbox::ECS_CATEGORIES
            .iter()
            .map(|c| c.actions.len())
            .sum();
        assert_eq!(listed, ECS.iter().map(|c| c.1.len()).sum::<usize>());
    }

    #[test]
    fn an_idle_bucket_refills_to_its_capacity_only() {
        let mut b = Buckets::default();
        for _ in 0..40 {
            assert_eq!(b.reserve("k", 40.0, 5.0, 0.0), 0.0);
        }
        assert!((b.reserve("k", 40.0, 5.0, 0.0) - 0.2).abs() < 1e-9);
        // An hour later: 40 tokens, not 18,000.
        for _ in 0..40 {
            assert_eq!(b.reserve("k", 40.0, 5.0, 3600.0), 0.0);
        }
        assert!(b.reserve("k", 40.0, 5.0, 3600.0) > 0.0);
        // Buckets are separate.
        assert_eq!(b.reserve("other", 40.0, 5.0, 3600.0), 0.0);
    }

    /// End to end: 120 ListClusters at once through the run's clients (retries off) against a
    /// sandbox enforcing ECS's buckets (ListClusters: 50, then 20 a second). Unpaced, 70 of
    /// them would be refused; paced, none is, and the pacer says it held some back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_clients_are_paced_below_the_sandboxs_buckets() {
        let sb = cortado_sandbox::start(cortado_sandbox::Options {
            throttle: cortado_sandbox::Throttle::Aws,
            ..cortado_sandbox::Options::default()
        })
        .await
        .unwrap();
        let clients = crate::aws::connect(&crate::aws::AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some(sb.endpoint()),
            static_credentials: true,
            max_attempts: 1,
            assume_role_arn: None,
        })
        .await
        .unwrap();
        let calls = (0..120).map(|_| {
            let c = clients.ecs.clone();
            tokio::spawn(async move { c.list_clusters().send().await.is_ok() })
        });
        let mut ok = 0;
        for call in calls {
            ok += usize::from(call.await.unwrap());
        }
        let refused = sb
            .control()
            .requests()
            .iter()
            .filter(|r| r.error.is_some())
            .count();
        assert_eq!((ok, refused), (120, 0));
        let (held, _) = clients.paced();
        assert!(held >= 40, "only {held} requests waited");
    }

    /// A bucket as AWS applies it (admit or refuse), to check the pacing against.
    mod aws_bucket {
        pub(super) struct Bucket {
            tokens: f64,
            at: f64,
            capacity: f64,
            refill: f64,
        }

        impl Bucket {
            pub(super) fn new(capacity: f64, refill: f64) -> Self {
                Bucket {
                    tokens: capacity,
                    at: 0.0,
                    capacity,
                    refill,
                }
            }

            pub(super) fn admit(&mut self, now: f64) -> bool {
                self.tokens =
                    (self.tokens + (now - self.at).max(0.0) * self.refill).min(self.capacity);
                self.at = self.at.max(now);
                // A hair of tolerance for float rounding of send times.
                if self.tokens >= 1.0 - 1e-9 {
                    self.tokens -= 1.0;
                    true
                } else {
                    false
                }
            }
        }
    }
}
