//! Deployment controllers: who carries a service's deployment out. Each is a module of its
//! own behind one interface ([`seam::Controller`]): ECS with its rolling, blue/green, canary
//! and linear strategies ([`ecs`]), CodeDeploy blue/green ([`codedeploy`]), and ECS Express
//! Mode ([`express`]). This file is the one place where a controller is chosen: adding a
//! controller is a module and a line in [`choose`].

pub(crate) mod codedeploy;
pub(crate) mod ecs;
pub(crate) mod express;
pub(crate) mod seam;

use std::sync::Arc;

use self::seam::{Controller, Local};
use crate::aws::types::ecs::Service;

/// The controller of a service, chosen when its config is loaded: Express Mode for an
/// `express_definition`, else by the service definition's `deploymentController.type`
/// (absent means ECS).
pub(crate) fn choose(express: bool, deployment_controller: Option<&str>) -> Arc<dyn Controller> {
    if express {
        return Arc::new(express::Express);
    }
    match deployment_controller {
        Some("CODE_DEPLOY") => Arc::new(codedeploy::CodeDeploy),
        _ => Arc::new(ecs::Ecs),
    }
}

/// The controller that deploys `local`'s service as it is live: the one chosen at load,
/// unless the live service has another (ECS accepts no update that changes a service's
/// controller, so the live one decides, as ecspresso reads it). A service that does not
/// exist yet is the loaded one's.
pub(crate) fn for_live(local: &Local, live: Option<&Service>) -> Arc<dyn Controller> {
    let live_type = live.map(|s| {
        s.deployment_controller()
            .map_or("ECS", |c| c.r#type().as_str())
    });
    match live_type {
        Some(t) if t != local.controller.deployment_controller() => {
            choose(local.express.is_some(), Some(t))
        }
        _ => local.controller.clone(),
    }
}
