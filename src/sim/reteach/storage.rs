//! What `certificate.url` points at, one mode per kind of URL the operator must handle (the spec
//! does not say which one reteach uses): the API itself (bearer required), a signed URL on a
//! storage host (which must never receive the bearer token: it answers 400 like S3 and records
//! the attempt), a web page that is not a PDF, or a chain of redirects ending on the storage host.
//!
//! The storage host is the simulator itself under another name (`localhost` instead of the
//! `127.0.0.1` the client calls), so it is a different origin without a second server.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use url::Url;

use super::certificates::pdf_response;
use super::errors::nest_error;
use super::ReteachSim;

/// Where certificate URLs point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CertificateUrls {
    /// `{api}/certificates/{id}/download`, bearer required (the default).
    #[default]
    Api,
    /// A signed URL on the storage host, `http://{storage host}:{port}/storage/{id}.pdf?signature=…`.
    SignedStorage,
    /// `{api}/certificates/{id}/view`: an HTML page, not a PDF.
    NotPdfPage,
    /// The API URL answers with this many redirects in a row (within the API, then to the signed
    /// storage URL as the last one).
    Redirects(u8),
}

/// One request the storage host received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageRequest {
    /// Certificate id from the path.
    pub certificate_id: String,
    /// Whether an `Authorization` header came along (the operator's token leaking).
    pub had_authorization: bool,
}

/// The signature the storage host accepts for a certificate.
fn signature(certificate_id: &str) -> String {
    format!("sim-signature-{certificate_id}")
}

/// `base` with its host replaced by the storage host.
fn storage_base(base: &str, storage_host: &str) -> String {
    let Ok(mut url) = Url::parse(base) else {
        return base.to_string();
    };
    if url.set_host(Some(storage_host)).is_err() {
        return base.to_string();
    }
    url.as_str().trim_end_matches('/').to_string()
}

/// The signed storage URL of a certificate.
pub(crate) fn signed_url(base: &str, storage_host: &str, certificate_id: &str) -> String {
    format!(
        "{}/storage/{certificate_id}.pdf?signature={}",
        storage_base(base, storage_host),
        signature(certificate_id)
    )
}

/// The `certificate.url` of a ready certificate under `mode`.
pub(crate) fn certificate_url(
    mode: CertificateUrls,
    base: &str,
    storage_host: &str,
    certificate_id: &str,
) -> String {
    match mode {
        CertificateUrls::Api | CertificateUrls::Redirects(_) => {
            format!("{base}/certificates/{certificate_id}/download")
        }
        CertificateUrls::SignedStorage => signed_url(base, storage_host, certificate_id),
        CertificateUrls::NotPdfPage => format!("{base}/certificates/{certificate_id}/view"),
    }
}

/// The target of redirect number `n` (1-based) of `total`: API hops first, the storage URL last.
pub(crate) fn redirect_target(
    n: u8,
    total: u8,
    base: &str,
    storage_host: &str,
    certificate_id: &str,
) -> String {
    if n >= total {
        signed_url(base, storage_host, certificate_id)
    } else {
        format!("/certificates/{certificate_id}/hop/{n}")
    }
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// `GET /certificates/{id}/hop/{n}` (bearer required): the next redirect of the chain.
pub(crate) async fn hop(
    State(sim): State<ReteachSim>,
    Path((id, n)): Path<(String, u8)>,
    headers: HeaderMap,
) -> Response {
    let (mode, base, storage_host) = sim.with_state(|state| {
        (
            state.certificate_urls,
            super::participations::public_base(state, &headers),
            state.storage_host.clone(),
        )
    });
    let CertificateUrls::Redirects(total) = mode else {
        return nest_error(StatusCode::NOT_FOUND, "Cannot GET hop");
    };
    redirect(&redirect_target(
        n.saturating_add(1),
        total,
        &base,
        &storage_host,
        &id,
    ))
}

/// The first redirect of the chain, when the mode asks for one (called by the download route).
pub(crate) fn first_redirect(sim: &ReteachSim, id: &str, headers: &HeaderMap) -> Option<Response> {
    let (mode, base, storage_host) = sim.with_state(|state| {
        (
            state.certificate_urls,
            super::participations::public_base(state, headers),
            state.storage_host.clone(),
        )
    });
    match mode {
        CertificateUrls::Redirects(total) if total > 0 => Some(redirect(&redirect_target(
            1,
            total,
            &base,
            &storage_host,
            id,
        ))),
        _ => None,
    }
}

/// `GET /certificates/{id}/view`: the certificate as a web page (a login wall, in fact).
pub(crate) async fn view(Path(_id): Path<String>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!doctype html><html><body><h1>Sign in to see your certificate</h1></body></html>",
    )
        .into_response()
}

/// `GET /storage/{id}.pdf?signature=…`: the storage host. Like S3 it refuses a request that
/// carries an `Authorization` header next to a signature (400) and one without a valid signature
/// (403); every request is recorded.
pub(crate) async fn object(
    State(sim): State<ReteachSim>,
    Path(file): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let id = file.strip_suffix(".pdf").unwrap_or(&file).to_string();
    let had_authorization = headers.contains_key(header::AUTHORIZATION);
    let certificate = sim.with_state(|state| {
        state.storage_requests.push(StorageRequest {
            certificate_id: id.clone(),
            had_authorization,
        });
        state.certificates.get(&id).cloned()
    });
    let xml = |status: StatusCode, code: &str, message: &str| {
        (
            status,
            [(header::CONTENT_TYPE, "application/xml")],
            format!("<Error><Code>{code}</Code><Message>{message}</Message></Error>"),
        )
            .into_response()
    };
    if had_authorization {
        return xml(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Only one auth mechanism allowed",
        );
    }
    if query.get("signature") != Some(&signature(&id)) {
        return xml(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    match certificate.filter(|c| c.pdf_ready) {
        None => xml(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        ),
        Some(certificate) => pdf_response(&sim, &certificate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_urls_live_on_the_storage_host_with_the_same_port() {
        assert_eq!(
            signed_url("http://127.0.0.1:8080", "localhost", "cer_1"),
            "http://localhost:8080/storage/cer_1.pdf?signature=sim-signature-cer_1"
        );
    }

    #[test]
    fn a_chain_of_three_ends_on_the_storage_host() {
        let base = "http://127.0.0.1:8080";
        assert_eq!(
            redirect_target(1, 3, base, "localhost", "c"),
            "/certificates/c/hop/1"
        );
        assert_eq!(
            redirect_target(2, 3, base, "localhost", "c"),
            "/certificates/c/hop/2"
        );
        assert!(redirect_target(3, 3, base, "localhost", "c")
            .starts_with("http://localhost:8080/storage/"));
    }
}
