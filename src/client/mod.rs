//! A small client of the scheduler's Marathon-compatible API, shared by the CLI
//! (`deploy`, `scale`, `apps`, ...) and the proxy. Finds the scheduler from `--scheduler`,
//! `INFRA_SCHEDULER`, or the context file `infra up` writes.
