//! Types shared across the process boundary: Marathon's app JSON (`marathon`), and the
//! scheduler <-> agent protocol (`agent`). The scheduler and the agent depend on these,
//! never on each other.

pub mod agent;
pub mod marathon;
