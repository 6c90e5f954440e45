//! The console's static files, built into the binary: GOV.UK Frontend's
//! compiled CSS and JavaScript and `@noble/ed25519` (installed from npm
//! when Accord is built; see `build.rs`), and the console's own script and
//! styles.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Each file: its name, content type and bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "govuk-frontend.min.css",
        "text/css; charset=utf-8",
        include_bytes!(concat!(
            env!("OUT_DIR"),
            "/console-assets/govuk-frontend.min.css"
        )),
    ),
    (
        "govuk-frontend.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!(concat!(
            env!("OUT_DIR"),
            "/console-assets/govuk-frontend.min.js"
        )),
    ),
    (
        "noble-ed25519.js",
        "text/javascript; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/console-assets/noble-ed25519.js")),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/console.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../../console/console.css"),
    ),
    (
        "proof.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/proof.js"),
    ),
];

/// Serves the file `name`; they change only with the binary, so a day's
/// caching is allowed.
pub async fn serve(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
