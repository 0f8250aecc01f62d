//! Types shared across the process boundary: Marathon's app JSON (`marathon`), how an app
//! definition is validated and completed with Marathon's defaults (`appdef`: the scheduler
//! on every write, the CLI for `deploy --dry-run`) and what its constraints mean
//! (`constraints`), and the scheduler <-> agent protocol (`agent`). The scheduler, the agent and the CLI depend on these, never on each other.

pub mod agent;
pub mod agent_check;
pub mod appdef;
pub mod constraints;
pub mod marathon;
pub mod moves;
pub mod networks;
pub mod volumes;
