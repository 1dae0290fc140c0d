//! The local ECS/ECR/ELBv2/CodeDeploy emulator (being written on the `sandbox` branch).
