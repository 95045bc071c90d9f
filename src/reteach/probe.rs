//! Read-only probes for `preflight`: one page of customers, one page of completed participations
//! with the filters the certificate sync sends, and the headers of one certificate download.
//! Nothing here writes to reteach.

use chrono::{DateTime, Utc};
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use url::Url;

use super::client::ReteachClient;
use super::download::{follow_redirect, redirect_location, refused};
use super::download_policy::Hop;
use super::participations::completed_query;
use super::response::error_for;
use super::wire;
use super::ReteachError;

use super::customers::LIST as CUSTOMERS;
use super::participations::LIST as PARTICIPATIONS;
const CERTIFICATE: &str = "HEAD certificate";
/// Participations read per probe page.
const PARTICIPATION_SAMPLE: u64 = 50;

/// The first customer page (one customer).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomerSample {
    /// `resultCount` of the listing, when reteach sends it.
    pub total: Option<u64>,
    /// Customers on the page.
    pub returned: usize,
}

/// One participation as the listing returned it (ids, status and times only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParticipationSeen {
    /// Participation id.
    pub id: String,
    /// `status` as sent.
    pub status: String,
    /// `completedAt`, when set and readable.
    pub completed_at: Option<DateTime<Utc>>,
    /// `certificate.id`, when a certificate exists.
    pub certificate_id: Option<String>,
    /// `certificate.url`, once the PDF is generated. A signed URL is a secret of its own: never
    /// print it.
    pub certificate_url: Option<String>,
}

/// The first page of `GET /participation` with the certificate sync's filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParticipationSample {
    /// `resultCount`, when sent.
    pub total: Option<u64>,
    /// The participations on the page.
    pub items: Vec<ParticipationSeen>,
}

/// What a certificate URL answered, headers only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateHead {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` without parameters, lower case.
    pub content_type: Option<String>,
    /// `Content-Length`, when sent.
    pub content_length: Option<u64>,
    /// Whether the final URL is on the API's origin (then it got the bearer token; other hosts
    /// never do).
    pub same_origin: bool,
    /// `HEAD`, or `GET` when the host refused HEAD (the body was dropped unread).
    pub method: &'static str,
    /// Redirects followed to get there (each one checked like the URL itself).
    pub redirects: usize,
}

impl ReteachClient {
    /// `GET /customer?page=1&limit=1`.
    pub async fn sample_customers(&self) -> Result<CustomerSample, ReteachError> {
        let url = self.url(&["customer"])?;
        let query = [("page", "1"), ("limit", "1")];
        let value = self
            .call_json(CUSTOMERS, &[], || self.http.get(url.clone()).query(&query))
            .await?;
        let (items, total) = wire::page(&value, CUSTOMERS)?;
        Ok(CustomerSample {
            total,
            returned: items.len(),
        })
    }

    /// The first page of `GET /participation?status=COMPLETED[&completedAtSince=…]`, as sent (not
    /// filtered again here: the probe wants to see whether reteach applied the filters).
    pub async fn sample_completed_participations(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<ParticipationSample, ReteachError> {
        let url = self.url(&["participation"])?;
        let query = completed_query(since, 1, PARTICIPATION_SAMPLE);
        let value = self
            .call_json(PARTICIPATIONS, &[], || {
                self.http.get(url.clone()).query(&query)
            })
            .await?;
        let (items, total) = wire::page(&value, PARTICIPATIONS)?;
        Ok(ParticipationSample {
            total,
            items: items.iter().filter_map(participation_seen).collect(),
        })
    }

    /// Asks for a certificate's headers: `HEAD`, or a `GET` whose body is dropped unread when the
    /// host does not allow HEAD. The URL and every redirect (followed by hand, at most
    /// [`MAX_REDIRECTS`]) pass the same [`super::DownloadPolicy`] as a run's download: the bearer
    /// token only to the API origin, other hosts only when allowlisted and public. A refused hop
    /// is an error with a [`ReteachError::certificate_url_refusal`], decided before anything is
    /// sent to it, so the answer says nothing about a host outside the allowlist.
    pub async fn probe_certificate(&self, url: &str) -> Result<CertificateHead, ReteachError> {
        let mut target = self
            .base
            .join(url)
            .map_err(|_| refused("the certificate URL is not a valid URL"))?;
        let mut redirects = 0;
        loop {
            let hop = self.check_hop(&target).await?;
            let (response, method) = self.ask_headers(&target, hop).await?;
            if let Some(location) = redirect_location(&response) {
                target = follow_redirect(&target, &location, &mut redirects)?;
                continue;
            }
            if hop == Hop::Api && response.status() == StatusCode::UNAUTHORIZED {
                return Err(error_for(CERTIFICATE, response, &[]).await);
            }
            // Dropping the response unread closes the connection: no PDF body is transferred
            // beyond what was already in flight.
            return Ok(certificate_head(&response, method, hop, redirects));
        }
    }

    /// `HEAD`, then `GET` when the host refuses HEAD.
    async fn ask_headers(
        &self,
        target: &Url,
        hop: Hop,
    ) -> Result<(Response, &'static str), ReteachError> {
        let head = self
            .send_hop(CERTIFICATE, hop, || self.hop_request(Method::HEAD, target))
            .await?;
        if !matches!(
            head.status(),
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
        ) {
            return Ok((head, "HEAD"));
        }
        let get = self
            .send_hop(CERTIFICATE, hop, || self.hop_request(Method::GET, target))
            .await?;
        Ok((get, "GET"))
    }
}

fn certificate_head(
    response: &Response,
    method: &'static str,
    hop: Hop,
    redirects: usize,
) -> CertificateHead {
    CertificateHead {
        status: response.status().as_u16(),
        content_type: response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase()),
        content_length: response
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok()),
        same_origin: hop == Hop::Api,
        method,
        redirects,
    }
}

fn participation_seen(value: &Value) -> Option<ParticipationSeen> {
    let certificate = value.get("certificate").filter(|c| c.is_object());
    Some(ParticipationSeen {
        id: wire::text(value, "id")?,
        status: wire::text(value, "status").unwrap_or_default(),
        completed_at: wire::timestamp(value, "completedAt"),
        certificate_id: certificate.and_then(|c| wire::text(c, "id")),
        certificate_url: certificate
            .and_then(|c| wire::text(c, "url"))
            .filter(|url| !url.trim().is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_participation_without_certificate() {
        let seen = participation_seen(&json!({
            "id": "p1", "status": "STARTED", "completedAt": null, "certificate": null
        }))
        .unwrap();
        assert_eq!(seen.status, "STARTED");
        assert_eq!(seen.completed_at, None);
        assert_eq!(seen.certificate_url, None);
    }

    #[test]
    fn blank_certificate_url_counts_as_not_ready() {
        let seen = participation_seen(&json!({
            "id": "p2", "status": "COMPLETED", "completedAt": "2026-11-01T10:00:00Z",
            "certificate": {"id": "c2", "url": " "}
        }))
        .unwrap();
        assert_eq!(seen.certificate_id.as_deref(), Some("c2"));
        assert_eq!(seen.certificate_url, None);
    }
}
