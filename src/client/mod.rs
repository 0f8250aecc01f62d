//! A small client of the scheduler's Marathon-compatible API, shared by the CLI
//! (`deploy`, `scale`, `apps`, ...) and the proxy. Finds the scheduler from `--scheduler`,
//! `INFRA_SCHEDULER`, or the context file `infra up` writes.
//!
//! - [`context`]: the context file (`~/.infra/context.json` or `$INFRA_HOME/context.json`);
//! - [`api`]: [`Client`], the typed calls and their errors.

pub mod api;
pub mod context;

pub use api::{Client, ClientError};
