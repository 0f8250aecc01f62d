//! `infra agent`: registers with the scheduler, pulls its assignments with each heartbeat,
//! runs tasks (processes and Docker containers), runs their health checks, reports status,
//! and adopts its running tasks after a restart. Shares only `api` types with the scheduler.
