//! Task and service definitions as SDK types (being written on the `model` branch).
