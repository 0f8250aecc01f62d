//! `infra scheduler`: Marathon's v2 API, the reconcile loop (desired vs actual per app),
//! placement (feasibility -> rank -> plan -> commit), deployments, health, events, and the
//! durable store behind a trait. Never imports the engine; shares only `api` with agents.
