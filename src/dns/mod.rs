//! Service-discovery DNS (`<app>.service.infra`, `<app>.service.<dc>.infra`, A and SRV)
//! and forwarding of other datacenters' names to their control nodes.
