//! Marathon's v2 JSON shapes (apps, tasks, deployments, events, errors).
