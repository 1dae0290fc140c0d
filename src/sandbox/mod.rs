//! The sandbox: a local ECS/ECR/ELBv2/CodeDeploy emulator over HTTP, with rollout dynamics and
//! fault injection. A product feature (`cortado sandbox serve`, `--sandbox`) and the test bed.
//! Nothing else in cortado imports it: the rest talks to it through the real SDK over HTTP.

pub mod api;
pub mod ecr;
pub mod elbv2;
pub mod query;
