//! `GET /v2/infra/services`: what service discovery answers for every app, for the web
//! UI's Services page: the DNS names (`<name>.service.<domain>`, with and without the
//! datacenter), the SRV name and the records `dig` would get (healthy instances only, as
//! the DNS server answers), and the proxy's routes for the app (the path route and the
//! host route's first label; the proxy adds its own `--domain`). Read-only, computed from
//! the same catalog the DNS server and `/v1/catalog` answer from, so the three agree.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::dns::{service_name, DnsConfig, ServiceCatalog};
use crate::proxy::model::app_name;

#[derive(Clone)]
struct Services {
    catalog: Arc<dyn ServiceCatalog>,
    domain: String,
    datacenter: String,
}

/// The route, carrying its own state so the scheduler merges it next to the catalog's.
pub fn router(catalog: Arc<dyn ServiceCatalog>, dns: &DnsConfig) -> Router {
    Router::new()
        .route("/v2/infra/services", get(services))
        .with_state(Services {
            catalog,
            domain: dns.domain.trim_end_matches('.').to_ascii_lowercase(),
            datacenter: dns.datacenter.to_ascii_lowercase(),
        })
}

async fn services(State(s): State<Services>) -> Response {
    let snap = s.catalog.snapshot();
    let mut by_app: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for i in &snap.instances {
        let target = format!("{}.node.{}", i.node, s.domain);
        by_app.entry(i.app_id.as_str()).or_default().push(json!({
            "taskId": i.task_id,
            "node": i.node,
            "address": i.address.to_string(),
            "ports": i.ports,
            "healthy": i.healthy,
            "srvTarget": target,
        }));
    }
    let list: Vec<Value> = by_app
        .into_iter()
        .map(|(app_id, instances)| {
            let name = service_name(app_id);
            let proxy = app_name(app_id);
            json!({
                "appId": app_id,
                "service": name,
                "names": [
                    format!("{name}.service.{}", s.domain),
                    format!("{name}.service.{}.{}", s.datacenter, s.domain),
                ],
                "srv": format!("_{name}._tcp.service.{}", s.domain),
                "instances": instances,
                "proxy": {"path": format!("/{proxy}/"), "hostLabel": proxy},
            })
        })
        .collect();
    Json(json!({"domain": s.domain, "datacenter": s.datacenter, "services": list})).into_response()
}
