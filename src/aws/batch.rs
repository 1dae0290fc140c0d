//! Single-service lookups asked at about the same time become one DescribeServices call.
//!
//! Receives `describe_service(cluster, name)` calls from anywhere in a run (a deploy deciding
//! many services at once asks one each); hands each its service from a shared
//! DescribeServices of up to 10 names in that cluster. The first caller of a quiet cluster
//! waits [`WINDOW`] for others to join, then a background task asks for every name queued by
//! then (and keeps asking while more arrive), so a cancelled caller never strands the others.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;

use super::Clients;
use super::ecs::DESCRIBE_SERVICES_BATCH;
use crate::aws::types::ecs::Service;
use crate::error::{Error, Result};

/// How long the first lookup of a quiet cluster waits for others to join its call.
pub(super) const WINDOW: Duration = Duration::from_millis(3);

type Reply = oneshot::Sender<Result<Option<Service>>>;

/// Lookups waiting for their call, by cluster.
#[derive(Debug, Default)]
pub(super) struct Queue(Mutex<BTreeMap<String, Vec<(String, Reply)>>>);

impl Queue {
    /// Queues a lookup; true when the cluster had none queued (the caller starts the call).
    fn push(&self, cluster: &str, name: &str, reply: Reply) -> bool {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let waiting = q.entry(cluster.to_string()).or_default();
        waiting.push((name.to_string(), reply));
        waiting.len() == 1
    }

    /// Up to one call's worth of queued lookups of `cluster` (empty: none left).
    fn take(&self, cluster: &str) -> Vec<(String, Reply)> {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(waiting) = q.get_mut(cluster) else {
            return Vec::new();
        };
        let n = waiting.len().min(DESCRIBE_SERVICES_BATCH);
        let batch: Vec<_> = waiting.drain(..n).collect();
        if waiting.is_empty() {
            q.remove(cluster);
        }
        batch
    }
}

impl Clients {
    /// The service, or `None` when it does not exist or is INACTIVE (deleted). Lookups of the
    /// same cluster made together share DescribeServices calls (10 names a call).
    pub async fn describe_service(&self, cluster: &str, name: &str) -> Result<Option<Service>> {
        let (tx, rx) = oneshot::channel();
        if self.lookups.push(cluster, name, tx) {
            let clients = self.clone();
            let cluster = cluster.to_string();
            tokio::spawn(async move {
                tokio::time::sleep(WINDOW).await;
                loop {
                    let batch = clients.lookups.take(&cluster);
                    if batch.is_empty() {
                        break;
                    }
                    let mut names: Vec<String> = batch.iter().map(|b| b.0.clone()).collect();
                    names.sort();
                    names.dedup();
                    match clients.describe_services(&cluster, &names).await {
                        Ok(found) => {
                            for (name, reply) in batch {
                                let svc = names
                                    .iter()
                                    .position(|n| *n == name)
                                    .and_then(|i| found.get(i).cloned().flatten());
                                let _ = reply.send(Ok(svc));
                            }
                        }
                        Err(e) => {
                            for (_, reply) in batch {
                                let _ = reply.send(Err(e.clone()));
                            }
                        }
                    }
                }
            });
        }
        rx.await.unwrap_or_else(|_| {
            Err(Error::internal(format!(
                "the lookup of service {name} in cluster {cluster} was abandoned"
            )))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::aws::AwsSettings;

    /// 25 lookups at once in a sandbox with 25 services: 3 DescribeServices calls, each
    /// caller gets its own service (or None for a missing one); one lookup alone still
    /// makes its own call.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_lookups_share_describe_services_calls() {
        let mut seed = String::from("clusters: [c]\nservices:\n");
        for i in 0..25 {
            seed.push_str(&format!(
                "  - {{cluster: c, serviceName: s{i}, desiredCount: 0, taskDefinition: {{family: f, containerDefinitions: [{{name: a, image: 'busybox:1'}}]}}}}\n"
            ));
        }
        let seed = cortado_sandbox::Seed::parse(&seed, std::path::Path::new("seed.yml")).unwrap();
        let sb = cortado_sandbox::start(cortado_sandbox::Options {
            seed: Some(seed),
            ..cortado_sandbox::Options::default()
        })
        .await
        .unwrap();
        let clients = crate::aws::connect(&AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some(sb.endpoint()),
            static_credentials: true,
            max_attempts: 1,
            assume_role_arn: None,
        })
        .await
        .unwrap();
        let asks: Vec<_> = (0..26)
            .map(|i| {
                let c = clients.clone();
                tokio::spawn(async move { c.describe_service("c", &format!("s{i}")).await })
            })
            .collect();
        for (i, ask) in asks.into_iter().enumerate() {
            let found = ask.await.unwrap().unwrap();
            if i == 25 {
                assert!(found.is_none(), "s25 does not exist");
            } else {
                assert_eq!(
                    found.and_then(|s| s.service_name().map(str::to_string)),
                    Some(format!("s{i}"))
                );
            }
        }
        let calls = clients.call_count("DescribeServices");
        assert!(calls <= 4, "{calls} DescribeServices calls for 26 lookups");
        let alone = clients.describe_service("c", "s3").await.unwrap();
        assert!(alone.is_some());
        assert_eq!(clients.call_count("DescribeServices"), calls + 1);
    }
}
