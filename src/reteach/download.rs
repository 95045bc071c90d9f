//! Certificate downloads.
//!
//! `certificate.url` may point at reteach's API, at a signed storage URL on another host or at a
//! page that is not a PDF at all (the spec does not say). Every hop — the URL itself and each
//! redirect, followed by hand, at most [`MAX_REDIRECTS`] — is checked against the
//! [`super::DownloadPolicy`]: the bearer token goes only to the API's own origin, other hosts
//! must be allowlisted by the operator and resolve to public addresses. The body must look like a
//! PDF, is capped at 30 MB by the bytes that arrive (not the announced length) and is spooled
//! (memory or scratch directory) so the upload can announce its exact length.
//!
//! Every refusal is a [`ReteachError::Rejected`] for the endpoint [`DOWNLOAD`] with a fixed,
//! URL-free sentence: a per-certificate failure, never a reason to stop the run.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use reqwest::{header, Method, Response, StatusCode};
use url::Url;

use super::client::ReteachClient;
use super::download_policy::{classify, Hop};
use super::response::{error_for, unavailable};
use super::ReteachError;
use crate::upstream::{
    public_addresses, send_with_retry, spool_announced, NonPublicHost, PdfReservation, PdfStream,
    SpoolError, SpoolOptions, MAX_PDF_BYTES,
};

/// Endpoint name of certificate downloads in errors and metrics.
pub const DOWNLOAD: &str = "GET certificate";
/// Redirects followed at most (each one checked like the URL itself).
pub const MAX_REDIRECTS: usize = 3;
/// reqwest's timeout covers the whole body: a 30 MB certificate needs more than the 30 s default
/// of API calls.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);
/// What a PDF starts with.
const PDF_MAGIC: &[u8] = b"%PDF-";
/// How far into the file the header may start (the PDF spec tolerates leading bytes).
const HEADER_WINDOW: usize = 1024;

/// Fixed, URL-free sentences for the per-certificate refusals of a download, keyed by a phrase of
/// the error message (see [`ReteachError::download_refusal`]). Status and events show these.
const REFUSALS: [(&str, &str); 6] = [
    ("not a PDF", "certificate file is not a PDF"),
    (
        "larger than Personio accepts",
        "certificate file is larger than Personio accepts (30 MB)",
    ),
    (
        "not an allowed download host",
        "certificate URL points at a host that is not an allowed download host",
    ),
    (
        "loopback, private or link-local",
        "certificate URL points at a loopback, private or link-local address",
    ),
    (
        "redirects more than",
        "certificate URL redirects more than 3 times",
    ),
    (
        "storage host refused",
        "the storage host refused the certificate URL (expired signature?); retried with a fresh URL",
    ),
];

impl ReteachError {
    /// For a download refused because of this certificate (not a PDF, too large, a host or
    /// address that is not allowed, too many redirects, a refused signed URL): a fixed sentence
    /// without URL for the per-certificate failure in status. `None` for every other error.
    pub fn download_refusal(&self) -> Option<&'static str> {
        let Self::Rejected { endpoint, message } = self else {
            return None;
        };
        if *endpoint != DOWNLOAD {
            return None;
        }
        REFUSALS
            .iter()
            .find(|(phrase, _)| message.contains(phrase))
            .map(|(_, sentence)| *sentence)
    }
}

impl ReteachError {
    /// For a certificate URL (or one of its redirects) that the download policy refused before
    /// anything was sent to it, or that is no usable URL: a fixed sentence naming neither URL nor
    /// host. `None` for every other error.
    pub fn certificate_url_refusal(&self) -> Option<&str> {
        match self {
            Self::Rejected { endpoint, message } if *endpoint == DOWNLOAD => {
                // Every message of a `DOWNLOAD` rejection is either one of `REFUSALS` (those
                // with a host name) or a fixed sentence.
                Some(self.download_refusal().unwrap_or(message))
            }
            _ => None,
        }
    }
}

pub(super) fn refused(message: impl Into<String>) -> ReteachError {
    ReteachError::Rejected {
        endpoint: DOWNLOAD,
        message: message.into(),
    }
}

impl ReteachClient {
    pub(crate) async fn download(&self, url: &str) -> Result<PdfStream, ReteachError> {
        // A relative URL is resolved against the API (then it is same-origin by construction).
        let mut target = self
            .base
            .join(url)
            .map_err(|_| refused("the certificate URL is not a valid URL"))?;
        // Room for the largest PDF before the request goes out (see `PdfReservation`).
        let mut reserved = match (
            &self.config.downloads.memory,
            &self.config.downloads.scratch_dir,
        ) {
            (Some(memory), None) => Some(memory.reserve_largest(MAX_PDF_BYTES).await),
            _ => None,
        };
        let mut redirects = 0;
        loop {
            let hop = self.check_hop(&target).await?;
            let response = self
                .send_hop(DOWNLOAD, hop, || self.download_request(&target))
                .await?;
            let Some(location) = redirect_location(&response) else {
                return self.finish(response, hop, reserved.take()).await;
            };
            target = follow_redirect(&target, &location, &mut redirects)?;
        }
    }

    /// Checks one hop against the policy; for another host also its resolved addresses. Nothing
    /// is sent to a refused host, and the refusal names no more than the host.
    pub(super) async fn check_hop(&self, target: &Url) -> Result<Hop, ReteachError> {
        let policy = &self.config.downloads;
        let hop = classify(
            target,
            &self.base,
            policy,
            self.config.tls.allow_insecure_http,
        )
        .map_err(|refusal| {
            // Host names only (never the path or query, which may hold a signature).
            tracing::warn!(%refusal, "certificate download refused");
            refused(refusal.to_string())
        })?;
        if hop == Hop::Foreign && !policy.allow_private_addresses {
            if let Some(url::Host::Domain(host)) = target.host() {
                // The download client's resolver enforces this again at connect time (DNS
                // rebinding); checking here first makes the refusal a clear per-certificate one.
                if let Err(error) = public_addresses(host, false).await {
                    if error.downcast_ref::<NonPublicHost>().is_some() {
                        tracing::warn!(host, "certificate download refused: non-public address");
                        return Err(refused(format!(
                            "the certificate URL points at {host}, which resolves to a loopback, private or link-local address"
                        )));
                    }
                    return Err(ReteachError::Unavailable {
                        message: format!("{DOWNLOAD}: cannot resolve the download host {host}"),
                    });
                }
            }
        }
        Ok(hop)
    }

    /// Turns the final answer into a spooled PDF or an error.
    async fn finish(
        &self,
        response: Response,
        hop: Hop,
        reserved: Option<PdfReservation>,
    ) -> Result<PdfStream, ReteachError> {
        match response.status() {
            s if s.is_success() => self.read_pdf(response, reserved).await,
            // A redirect without a usable `Location`: about this URL, not the base URL.
            s if s.is_redirection() => Err(refused(
                "the certificate URL redirects without saying where to",
            )),
            StatusCode::NOT_FOUND => Err(ReteachError::NotFound {
                what: "the certificate file".to_string(),
            }),
            // A storage host refusing a (probably expired) signed URL says nothing about our
            // credentials: re-reading the participation yields a fresh URL.
            s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) if hop == Hop::Foreign => {
                Err(refused(format!(
                    "the storage host refused the certificate URL (HTTP {})",
                    s.as_u16()
                )))
            }
            _ => Err(error_for(DOWNLOAD, response, &[]).await),
        }
    }

    fn download_request(&self, target: &Url) -> reqwest::RequestBuilder {
        self.hop_request(Method::GET, target)
    }

    /// A request of one hop on the download client (guarded resolver, no automatic redirects).
    pub(super) fn hop_request(&self, method: Method, target: &Url) -> reqwest::RequestBuilder {
        let timeout = self
            .config
            .tls
            .timeout
            .unwrap_or_default()
            .max(DOWNLOAD_TIMEOUT);
        self.download_http
            .request(method, target.clone())
            .timeout(timeout)
    }

    /// Sends one checked hop: with the bearer token to the API origin, without it elsewhere.
    pub(super) async fn send_hop(
        &self,
        endpoint: &'static str,
        hop: Hop,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Response, ReteachError> {
        match hop {
            Hop::Api => self.send_authorized(endpoint, make).await,
            Hop::Foreign => send_with_retry(
                "reteach",
                endpoint,
                &self.config.retry,
                self.config.observer.as_ref(),
                Some(&self.limiter),
                make,
            )
            .await
            .map_err(unavailable),
        }
    }

    /// Checks type, header and size, then spools the body.
    async fn read_pdf(
        &self,
        response: Response,
        reserved: Option<PdfReservation>,
    ) -> Result<PdfStream, ReteachError> {
        if let Some(kind) = non_pdf_content_type(&response) {
            return Err(refused(format!(
                "the certificate file is not a PDF (content type {kind})"
            )));
        }
        let announced = response.content_length();
        if announced.is_some_and(|length| length > MAX_PDF_BYTES) {
            return Err(refused(too_large_message()));
        }
        let mut body = response
            .bytes_stream()
            // `without_url`: a signed storage URL is a secret of its own.
            .map_err(|e| std::io::Error::other(e.without_url().to_string()));
        let mut head = BytesMut::new();
        while !looks_like_pdf(&head) && head.len() < HEADER_WINDOW + PDF_MAGIC.len() {
            match body.next().await {
                Some(Ok(chunk)) => head.extend_from_slice(&chunk),
                Some(Err(error)) => return Err(broken(&error)),
                None => break,
            }
        }
        if !looks_like_pdf(&head) {
            return Err(refused("the certificate file is not a PDF"));
        }
        let head: Bytes = head.freeze();
        let whole = futures::stream::once(async move { Ok(head) }).chain(body);
        let options = SpoolOptions {
            scratch_dir: self.config.downloads.scratch_dir.clone(),
            memory: self.config.downloads.memory.clone(),
        };
        spool_announced(
            Box::pin(whole),
            announced,
            MAX_PDF_BYTES,
            &options,
            reserved,
        )
        .await
        .map_err(|error| match error {
            SpoolError::TooLarge { .. } => refused(too_large_message()),
            SpoolError::Source(error) => broken(&error),
            scratch @ SpoolError::Scratch { .. } => ReteachError::Unavailable {
                message: format!("{DOWNLOAD}: {scratch}"),
            },
        })
    }
}

fn too_large_message() -> String {
    format!("the certificate file is larger than Personio accepts ({MAX_PDF_BYTES} bytes)")
}

fn broken(error: &std::io::Error) -> ReteachError {
    ReteachError::Unavailable {
        message: format!("{DOWNLOAD}: response body broken: {error}"),
    }
}

/// `%PDF-` within the first [`HEADER_WINDOW`] bytes.
fn looks_like_pdf(head: &[u8]) -> bool {
    let window = &head[..head.len().min(HEADER_WINDOW + PDF_MAGIC.len())];
    window.windows(PDF_MAGIC.len()).any(|w| w == PDF_MAGIC)
}

/// The next hop of a redirect to `location`, counted in `redirects`; refused past
/// [`MAX_REDIRECTS`] or to an invalid URL.
pub(super) fn follow_redirect(
    target: &Url,
    location: &str,
    redirects: &mut usize,
) -> Result<Url, ReteachError> {
    if *redirects == MAX_REDIRECTS {
        return Err(refused(format!(
            "the certificate URL redirects more than {MAX_REDIRECTS} times"
        )));
    }
    *redirects += 1;
    target
        .join(location)
        .map_err(|_| refused("the certificate URL redirects to an invalid URL"))
}

/// The `Location` of a redirect answer (not 304), if any.
pub(super) fn redirect_location(response: &Response) -> Option<String> {
    let status = response.status();
    if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
        return None;
    }
    let location = response.headers().get(header::LOCATION)?.to_str().ok()?;
    Some(location.trim().to_string())
}

/// A declared content type that is certainly no PDF (a web page, JSON, XML, text). Generic types
/// such as `application/octet-stream`, which storage hosts like to send, pass: the header bytes
/// decide then.
fn non_pdf_content_type(response: &Response) -> Option<String> {
    let value = response
        .headers()
        .get(header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    let media = value.split(';').next()?.trim().to_ascii_lowercase();
    let certainly_not = media.starts_with("text/")
        || media.contains("html")
        || media.contains("json")
        || media.contains("xml")
        || media.starts_with("image/");
    certainly_not.then_some(media)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_download_refusal_has_a_fixed_sentence() {
        for message in [
            "the certificate file is not a PDF (content type text/html)".to_string(),
            too_large_message(),
            super::super::download_policy::Refusal::HostNotAllowed {
                host: "evil.example".to_string(),
            }
            .to_string(),
            super::super::download_policy::Refusal::NonPublicAddress {
                host: "10.0.0.1".to_string(),
            }
            .to_string(),
            format!("the certificate URL redirects more than {MAX_REDIRECTS} times"),
            "the storage host refused the certificate URL (HTTP 403)".to_string(),
        ] {
            let sentence = refused(message.clone()).download_refusal();
            assert!(sentence.is_some(), "{message}");
            assert!(!sentence.unwrap_or_default().contains("evil.example"));
        }
        let other = ReteachError::Rejected {
            endpoint: "GET /me",
            message: "not a PDF".to_string(),
        };
        assert_eq!(other.download_refusal(), None);
    }

    #[test]
    fn a_pdf_header_may_follow_a_few_leading_bytes() {
        assert!(looks_like_pdf(b"%PDF-1.7\n"));
        assert!(looks_like_pdf(b"\xef\xbb\xbf\n%PDF-1.4"));
        assert!(!looks_like_pdf(b"<html><body>Login</body></html>"));
        let mut late = vec![b' '; HEADER_WINDOW + 10];
        late.extend_from_slice(b"%PDF-1.4");
        assert!(!looks_like_pdf(&late));
    }

    fn with_type(content_type: &str) -> Response {
        axum::http::Response::builder()
            .header("content-type", content_type)
            .body(Vec::<u8>::new())
            .map(Response::from)
            .unwrap()
    }

    #[test]
    fn pages_and_documents_of_other_kinds_are_named_by_their_type() {
        for kind in [
            "text/html; charset=utf-8",
            "application/json",
            "application/xml",
            "image/png",
        ] {
            assert!(non_pdf_content_type(&with_type(kind)).is_some(), "{kind}");
        }
        for kind in [
            "application/pdf",
            "application/octet-stream",
            "binary/octet-stream",
        ] {
            assert_eq!(non_pdf_content_type(&with_type(kind)), None, "{kind}");
        }
    }
}
