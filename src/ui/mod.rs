//! The web UI: hand-written HTML, CSS and JavaScript modules built into the binary
//! (`include_str!`), served by `infra scheduler` at `/ui/`, with `/` redirecting there. No
//! build step, no Node.js, nothing fetched at run time: a cluster without internet gets the
//! same page. The page talks only to the public `/v2` API, like the CLI, so whatever it can
//! do the API can do. The Content-Security-Policy keeps it that way: scripts, styles and
//! connections are allowed from this origin only.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// One file of the UI: its name under `/ui/`, its media type and its text.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($name:literal, $media:expr) => {
        Asset {
            name: $name,
            media_type: $media,
            body: include_str!(concat!("assets/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("main.js", JS),
    asset!("api.js", JS),
    asset!("live.js", JS),
    asset!("dom.js", JS),
    asset!("vlist.js", JS),
    asset!("diff.js", JS),
    asset!("json.js", JS),
    asset!("apps.js", JS),
    asset!("app.js", JS),
    asset!("output.js", JS),
    asset!("create.js", JS),
    asset!("deployments.js", JS),
    asset!("nodes.js", JS),
    asset!("services.js", JS),
];

const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                   script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/// `/` and `/ui` redirect to `/ui/`; `/ui/` is the page, `/ui/<file>` its files.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(|| async { serve("index.html") }))
        .route(
            "/ui/{*file}",
            get(|Path(file): Path<String>| async move { serve(&file) }),
        )
}

fn serve(name: &str) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.media_type),
                // The files change only with the binary; revalidating is cheap.
                (header::CACHE_CONTROL, "no-cache"),
                (header::CONTENT_SECURITY_POLICY, CSP),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            asset.body,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("no such file in the UI: {name}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_served() {
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for line in asset.body.lines() {
                let Some(rest) = line.trim().strip_prefix("import ") else {
                    continue;
                };
                let Some(start) = rest.find("'./") else {
                    continue;
                };
                let path = &rest[start + 3..];
                let file = &path[..path.find('\'').unwrap_or(path.len())];
                assert!(
                    ASSETS.iter().any(|a| a.name == file),
                    "{} imports {file}, which is not in ASSETS",
                    asset.name
                );
            }
        }
    }
}
