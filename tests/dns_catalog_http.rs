//! Consul's catalog endpoint served for real on 127.0.0.1 and read with an HTTP client:
//! the JSON shape carries Consul's documented fields for `GET /v1/catalog/service/:service`
//! with their JSON types, every task (healthy or not) is listed, and the filters and
//! errors behave like Consul's.

#[path = "support/dns.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use infra::dns::{catalog_router, ServiceCatalog, StaticCatalog};
use serde_json::Value;
use support::*;

async fn serve() -> SocketAddr {
    let mut snapshot = sample_snapshot();
    snapshot.instances[0].tags = vec!["blue".into()];
    let catalog: Arc<dyn ServiceCatalog> = Arc::new(StaticCatalog::new(snapshot));
    let app = catalog_router(catalog, "dc1");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn get(addr: SocketAddr, path: &str) -> reqwest::Response {
    reqwest::get(format!("http://{addr}{path}")).await.unwrap()
}

/// Consul's documented response fields of /v1/catalog/service/:service and their types.
const FIELDS: &[(&str, &str)] = &[
    ("ID", "string"),
    ("Node", "string"),
    ("Address", "string"),
    ("Datacenter", "string"),
    ("TaggedAddresses", "object"),
    ("NodeMeta", "object"),
    ("CreateIndex", "number"),
    ("ModifyIndex", "number"),
    ("ServiceAddress", "string"),
    ("ServiceEnableTagOverride", "bool"),
    ("ServiceID", "string"),
    ("ServiceName", "string"),
    ("ServicePort", "number"),
    ("ServiceMeta", "object"),
    ("ServiceTaggedAddresses", "object"),
    ("ServiceTags", "array"),
    ("ServiceProxy", "object"),
    ("ServiceConnect", "object"),
    ("ServiceKind", "string"),
    ("ServiceWeights", "object"),
];

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[tokio::test]
async fn service_entries_have_consuls_shape() {
    let addr = serve().await;
    let response = get(addr, "/v1/catalog/service/web").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-consul-index"], "42");
    assert_eq!(response.headers()["x-consul-knownleader"], "true");
    let body: Value = response.json().await.unwrap();
    let entries = body.as_array().unwrap();
    // The catalog lists every running task, like Consul's catalog (health is DNS's filter).
    assert_eq!(entries.len(), 3);
    for entry in entries {
        for (field, expected) in FIELDS {
            let value = entry
                .get(field)
                .unwrap_or_else(|| panic!("{field} missing in {entry}"));
            assert_eq!(kind(value), *expected, "{field} in {entry}");
        }
        assert_eq!(entry["Datacenter"], "dc1");
        assert_eq!(entry["ServiceName"], "web");
        assert_eq!(entry["TaggedAddresses"]["lan"], entry["Address"]);
        assert_eq!(entry["ServiceWeights"]["Passing"], 1);
    }
    let first = &entries[0];
    assert_eq!(first["Node"], "c1");
    assert_eq!(first["ID"], "agent-c1");
    assert_eq!(first["Address"], "127.0.0.11");
    assert_eq!(first["ServiceAddress"], "127.0.0.11");
    assert_eq!(first["ServiceID"], "web.c1");
    assert_eq!(first["ServicePort"], 31000);
    assert_eq!(first["ServiceTags"], serde_json::json!(["blue"]));
    assert_eq!(first["ServiceMeta"]["marathon_app_id"], "/web");
    assert_eq!(
        first["ServiceTaggedAddresses"]["lan_ipv4"],
        serde_json::json!({"Address": "127.0.0.11", "Port": 31000})
    );
}

#[tokio::test]
async fn filters_unknown_services_and_other_datacenters() {
    let addr = serve().await;
    let tagged: Value = get(addr, "/v1/catalog/service/web?tag=blue")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tagged.as_array().unwrap().len(), 1);
    let group: Value = get(addr, "/v1/catalog/service/api-shop")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(group[0]["ServicePort"], 31100);
    let none: Value = get(addr, "/v1/catalog/service/nothing")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none, serde_json::json!([]));
    let local: Value = get(addr, "/v1/catalog/service/web?dc=DC1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(local.as_array().unwrap().len(), 3);
    let other = get(addr, "/v1/catalog/service/web?dc=dc9").await;
    assert_eq!(other.status(), 500);
    assert_eq!(other.text().await.unwrap(), "No path to datacenter");
}

#[tokio::test]
async fn services_lists_names_with_tags() {
    let addr = serve().await;
    let body: Value = get(addr, "/v1/catalog/services")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        serde_json::json!({"api-shop": [], "sick": [], "web": ["blue"]})
    );
}
