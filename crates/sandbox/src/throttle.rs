//! Request throttling as AWS documents it for ECS: one token bucket per action category,
//! shared by every caller of the account and region (here: of the sandbox).
//!
//! Receives (service, operation, wall-clock seconds) for every AWS request when throttling is
//! on ([`Throttle::Aws`]); hands back whether the request may pass. A request over its bucket
//! is answered `ThrottlingException` (HTTP 400, "Rate exceeded") by the server, like ECS.
//!
//! Figures: "Request throttling for the Amazon ECS API", section "Request token bucket sizes
//! and refill rates", in the Amazon ECS API Reference
//! (<https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html>):
//! bucket maximum capacity (burst) and refill rate (sustained, tokens per second) per
//! category, the same in every region. Operations the page does not list (the service
//! deployment writes Stop/ContinueServiceDeployment, task-set and Express Mode actions) are
//! not throttled here. ECR, ELBv2, CodeDeploy, SSM and CloudWatch Logs: AWS publishes no
//! bucket figures for the actions the sandbox serves, so they are not throttled (the README's
//! list of sandbox differences says so).
//!
//! Clock: buckets refill in wall time, whatever the sandbox's speed. AWS's quotas are
//! wall-clock rates, and a client paces itself on its own wall clock; a compressed sandbox
//! shortens task timings, not the time between API requests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Whether the sandbox throttles requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Throttle {
    /// No bucket model (the random `throttleRate` fault still applies).
    #[default]
    Off,
    /// ECS's documented token buckets per action category.
    Aws,
}

impl std::str::FromStr for Throttle {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "none" | "" => Ok(Throttle::Off),
            "aws" => Ok(Throttle::Aws),
            other => Err(format!(
                "unknown throttle mode `{other}`: use `aws` (ECS's documented token buckets) or `off`"
            )),
        }
    }
}

/// One action category of ECS's table: its name, actions, capacity and refill per second.
pub struct Category {
    pub name: &'static str,
    pub actions: &'static [&'static str],
    pub capacity: f64,
    pub refill_per_second: f64,
}

/// ECS's table, as documented (see the module comment for the page).
pub const ECS_CATEGORIES: &[Category] = &[
    Category {
        name: "Cluster modify actions",
        actions: &[
            "CreateCluster",
            "DeleteCluster",
            "PutClusterCapacityProviders",
            "UpdateCluster",
            "UpdateClusterSettings",
        ],
        capacity: 20.0,
        refill_per_second: 1.0,
    },
    Category {
        name: "Cluster read actions",
        actions: &["DescribeClusters", "ListClusters"],
        capacity: 50.0,
        refill_per_second: 20.0,
    },
    Category {
        name: "Task definition modify actions",
        actions: &["DeregisterTaskDefinition", "RegisterTaskDefinition"],
        capacity: 20.0,
        refill_per_second: 1.0,
    },
    Category {
        name: "Task definition read actions",
        actions: &[
            "DescribeTaskDefinition",
            "ListTaskDefinitions",
            "ListTaskDefinitionFamilies",
        ],
        capacity: 50.0,
        refill_per_second: 20.0,
    },
    Category {
        name: "Task definition deletion actions",
        actions: &["DeleteTaskDefinitions"],
        capacity: 5.0,
        refill_per_second: 1.0,
    },
    Category {
        name: "Capacity provider modify actions",
        actions: &[
            "CreateCapacityProvider",
            "DeleteCapacityProvider",
            "UpdateCapacityProvider",
        ],
        capacity: 10.0,
        refill_per_second: 1.0,
    },
    Category {
        name: "Capacity provider read actions",
        actions: &["DescribeCapacityProviders"],
        capacity: 50.0,
        refill_per_second: 20.0,
    },
    Category {
        name: "Tag modify actions",
        actions: &["TagResource", "UntagResource"],
        capacity: 20.0,
        refill_per_second: 10.0,
    },
    Category {
        name: "Tag read actions",
        actions: &["ListTagsForResource"],
        capacity: 50.0,
        refill_per_second: 20.0,
    },
    Category {
        name: "Setting modify actions",
        actions: &[
            "DeleteAccountSetting",
            "PutAccountSetting",
            "PutAccountSettingDefault",
        ],
        capacity: 10.0,
        refill_per_second: 1.0,
    },
    Category {
        name: "Setting read actions",
        actions: &["ListAccountSettings"],
        capacity: 50.0,
        refill_per_second: 20.0,
    },
    Category {
        name: "Cluster resource modify actions",
        actions: &[
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
        capacity: 100.0,
        refill_per_second: 40.0,
    },
    Category {
        name: "Cluster resource read actions",
        actions: &[
            "DescribeContainerInstances",
            "DescribeTasks",
            "ListAttributes",
            "ListContainerInstances",
            "ListTasks",
        ],
        capacity: 100.0,
        refill_per_second: 20.0,
    },
    Category {
        name: "Agent modify actions",
        actions: &[
            "RegisterContainerInstance",
            "SubmitAttachmentStateChanges",
            "SubmitContainerStateChange",
            "SubmitTaskStateChange",
        ],
        capacity: 200.0,
        refill_per_second: 120.0,
    },
    Category {
        name: "Service modify actions",
        actions: &["CreateService", "DeleteService", "UpdateService"],
        capacity: 50.0,
        refill_per_second: 5.0,
    },
    Category {
        name: "Service read actions",
        actions: &["DescribeServices", "ListServices"],
        capacity: 100.0,
        refill_per_second: 20.0,
    },
    Category {
        name: "Service deployment actions",
        actions: &["DescribeServiceDeployments", "ListServiceDeployments"],
        capacity: 50.0,
        refill_per_second: 20.0,
    },
    Category {
        name: "Service revision actions",
        actions: &["DescribeServiceRevisions"],
        capacity: 50.0,
        refill_per_second: 20.0,
    },
    Category {
        name: "Task protection actions",
        actions: &["UpdateTaskProtection", "GetTaskProtection"],
        capacity: 200.0,
        refill_per_second: 80.0,
    },
    Category {
        name: "Cluster service resource read actions",
        actions: &["ListServicesByNamespace"],
        capacity: 10.0,
        refill_per_second: 1.0,
    },
];

/// The ECS category an operation belongs to; `None` for other services and unlisted actions.
pub fn category(service: &str, operation: &str) -> Option<&'static Category> {
    if service != "ecs" {
        return None;
    }
    ECS_CATEGORIES
        .iter()
        .find(|c| c.actions.contains(&operation))
}

/// A token bucket: `tokens` at `at` (wall seconds), refilled continuously.
#[derive(Debug, Clone, PartialEq)]
struct Bucket {
    tokens: f64,
    at: f64,
}

/// The account's buckets, created full on first use.
#[derive(Debug, Clone, Default)]
pub struct Buckets {
    buckets: BTreeMap<&'static str, Bucket>,
    /// Requests refused so far, by category.
    pub refused: BTreeMap<&'static str, u64>,
}

impl Buckets {
    /// Takes a token for `operation` at wall time `now` (seconds, monotonic). `false`: the
    /// request is over its bucket and must be answered ThrottlingException (no token taken).
    pub fn admit(&mut self, service: &str, operation: &str, now: f64) -> bool {
        let Some(cat) = category(service, operation) else {
            return true;
        };
        let b = self.buckets.entry(cat.name).or_insert(Bucket {
            tokens: cat.capacity,
            at: now,
        });
        let elapsed = (now - b.at).max(0.0);
        b.tokens = (b.tokens + elapsed * cat.refill_per_second).min(cat.capacity);
        b.at = b.at.max(now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            *self.refused.entry(cat.name).or_default() += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(b: &mut Buckets, op: &str, n: usize, now: f64) -> usize {
        (0..n).filter(|_| b.admit("ecs", op, now)).count()
    }

    #[test]
    fn a_full_bucket_admits_its_capacity_at_once_then_refuses() {
        let mut b = Buckets::default();
        assert_eq!(admitted(&mut b, "UpdateService", 60, 0.0), 50);
        assert_eq!(b.refused.get("Service modify actions"), Some(&10));
        // Same category, other action: the bucket is shared.
        assert!(!b.admit("ecs", "CreateService", 0.0));
        // Other categories have buckets of their own.
        assert!(b.admit("ecs", "DescribeServices", 0.0));
    }

    #[test]
    fn buckets_refill_at_the_documented_rate_up_to_capacity() {
        let mut b = Buckets::default();
        assert_eq!(admitted(&mut b, "RegisterTaskDefinition", 20, 0.0), 20);
        assert!(!b.admit("ecs", "RegisterTaskDefinition", 0.5));
        // One token a second.
        assert_eq!(admitted(&mut b, "RegisterTaskDefinition", 5, 3.0), 3);
        // DescribeClusters: 50, then 20 a second; full again after 2.5 s and no more.
        assert_eq!(admitted(&mut b, "DescribeClusters", 50, 10.0), 50);
        assert_eq!(admitted(&mut b, "ListClusters", 30, 11.0), 20);
        assert_eq!(admitted(&mut b, "DescribeClusters", 80, 100.0), 50);
    }

    #[test]
    fn other_services_and_unlisted_actions_pass() {
        let mut b = Buckets::default();
        assert_eq!(
            (0..1000)
                .filter(|_| b.admit("elbv2", "DescribeTargetHealth", 0.0))
                .count(),
            1000
        );
        assert_eq!(admitted(&mut b, "StopServiceDeployment", 1000, 0.0), 1000);
        assert!(b.refused.is_empty());
    }

    #[test]
    fn a_clock_going_backwards_neither_refills_nor_panics() {
        let mut b = Buckets::default();
        assert_eq!(admitted(&mut b, "UpdateService", 50, 10.0), 50);
        assert!(!b.admit("ecs", "UpdateService", 5.0));
        assert!(!b.admit("ecs", "UpdateService", 10.0));
        assert!(b.admit("ecs", "UpdateService", 10.5));
    }

    #[test]
    fn every_category_is_listed_once_and_modes_parse() {
        let mut seen = std::collections::BTreeSet::new();
        for c in ECS_CATEGORIES {
            assert!(c.capacity >= 1.0 && c.refill_per_second > 0.0, "{}", c.name);
            for a in c.actions {
                assert!(seen.insert(*a), "{a} listed twice");
            }
        }
        assert_eq!("AWS".parse::<Throttle>(), Ok(Throttle::Aws));
        assert_eq!("off".parse::<Throttle>(), Ok(Throttle::Off));
        assert!("fast".parse::<Throttle>().is_err());
    }
}
