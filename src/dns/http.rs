//! Consul's catalog HTTP API over the same catalog DNS answers from, so tools written for
//! Consul (consul-template, registrator-era scripts) keep working:
//! `GET /v1/catalog/service/<name>` (one entry per task, healthy or not, as Consul's
//! catalog lists every registered instance; `?tag=` filters) and `GET /v1/catalog/services`
//! (service name -> tags). `?dc=` other than this datacenter is Consul's 500
//! "No path to datacenter". The router carries its own state, so the scheduler `merge`s it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::catalog::{service_name, CatalogSnapshot, ServiceCatalog, ServiceInstance};

#[derive(Clone)]
struct CatalogState {
    catalog: Arc<dyn ServiceCatalog>,
    datacenter: String,
}

#[derive(Debug, Deserialize, Default)]
struct Params {
    dc: Option<String>,
    tag: Option<String>,
}

/// `/v1/catalog/service/{name}` and `/v1/catalog/services` for `datacenter`.
pub fn catalog_router(catalog: Arc<dyn ServiceCatalog>, datacenter: &str) -> Router {
    Router::new()
        .route("/v1/catalog/service/{name}", get(service))
        .route("/v1/catalog/services", get(services))
        .with_state(CatalogState {
            catalog,
            datacenter: datacenter.to_ascii_lowercase(),
        })
}

fn wrong_datacenter(state: &CatalogState, params: &Params) -> Option<Response> {
    let dc = params.dc.as_deref()?;
    if dc.eq_ignore_ascii_case(&state.datacenter) {
        return None;
    }
    Some((StatusCode::INTERNAL_SERVER_ERROR, "No path to datacenter").into_response())
}

fn consul_headers(snap: &CatalogSnapshot) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("X-Consul-Index", HeaderValue::from(snap.index.max(1)));
    headers.insert("X-Consul-KnownLeader", HeaderValue::from_static("true"));
    headers.insert("X-Consul-LastContact", HeaderValue::from_static("0"));
    headers
}

async fn service(
    State(state): State<CatalogState>,
    Path(name): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    if let Some(response) = wrong_datacenter(&state, &params) {
        return response;
    }
    let snap = state.catalog.snapshot();
    let entries: Vec<Value> = snap
        .instances_of(&name)
        .filter(|i| params.tag.as_ref().is_none_or(|t| i.tags.contains(t)))
        .map(|i| catalog_entry(i, &snap, &state.datacenter))
        .collect();
    (consul_headers(&snap), Json(Value::Array(entries))).into_response()
}

async fn services(State(state): State<CatalogState>, Query(params): Query<Params>) -> Response {
    if let Some(response) = wrong_datacenter(&state, &params) {
        return response;
    }
    let snap = state.catalog.snapshot();
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for instance in &snap.instances {
        let tags = names.entry(service_name(&instance.app_id)).or_default();
        for tag in &instance.tags {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
    }
    (consul_headers(&snap), Json(json!(names))).into_response()
}

/// One entry in Consul's shape (its documented fields for this endpoint). A task with
/// several host ports is one entry with its first port (`ServicePort` 0 if it has none);
/// SRV records in DNS list every port.
pub fn catalog_entry(
    instance: &ServiceInstance,
    snap: &CatalogSnapshot,
    datacenter: &str,
) -> Value {
    let node = snap.node(&instance.node);
    let node_address = node
        .map(|n| n.address)
        .unwrap_or(instance.address)
        .to_string();
    let service_address = instance.address.to_string();
    let port = instance.ports.first().copied().unwrap_or(0);
    let index = snap.index.max(1);
    let family = if instance.address.is_ipv4() {
        "ipv4"
    } else {
        "ipv6"
    };
    json!({
        "ID": node.map(|n| n.id.clone()).unwrap_or_default(),
        "Node": instance.node,
        "Address": node_address,
        "Datacenter": datacenter,
        "TaggedAddresses": {"lan": node_address, "wan": node_address},
        "NodeMeta": {},
        "ServiceKind": "",
        "ServiceID": instance.task_id,
        "ServiceName": service_name(&instance.app_id),
        "ServiceTags": instance.tags,
        "ServiceAddress": service_address,
        "ServiceTaggedAddresses": {
            (format!("lan_{family}")): {"Address": service_address, "Port": port},
            (format!("wan_{family}")): {"Address": service_address, "Port": port},
        },
        "ServiceWeights": {"Passing": 1, "Warning": 1},
        "ServiceMeta": {"marathon_app_id": instance.app_id},
        "ServicePort": port,
        "ServiceEnableTagOverride": false,
        "ServiceProxy": {"MeshGateway": {}, "Expose": {}},
        "ServiceConnect": {},
        "CreateIndex": index,
        "ModifyIndex": index,
    })
}
