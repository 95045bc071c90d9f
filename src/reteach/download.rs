//! Certificate downloads, streamed.
//!
//! `certificate.url` may point at reteach's API or at a signed storage URL on another host (the
//! spec does not say). The bearer token is sent only to the API's own origin: a storage host must
//! never see our credentials.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use reqwest::{Response, StatusCode};
use url::Url;

use super::client::ReteachClient;
use super::response::{error_for, unavailable};
use super::ReteachError;
use crate::upstream::{send_with_retry, PdfStream};

const DOWNLOAD: &str = "GET certificate";
/// reqwest's timeout covers the whole body, and the body is read at the pace of the Personio
/// upload it feeds: a 30 MB certificate needs more than the 30 s default of API calls.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);
/// Every PDF starts with this.
const PDF_MAGIC: &[u8] = b"%PDF";

impl ReteachClient {
    pub(crate) async fn download(&self, url: &str) -> Result<PdfStream, ReteachError> {
        // A relative URL is resolved against the API (then it is same-origin by construction).
        let target = self.base.join(url).map_err(|_| ReteachError::Rejected {
            endpoint: DOWNLOAD,
            message: "certificate URL is not a valid URL".to_string(),
        })?;
        if target.scheme() != "https"
            && !(target.scheme() == "http" && self.config.tls.allow_insecure_http)
        {
            return Err(ReteachError::Rejected {
                endpoint: DOWNLOAD,
                message: "certificate URL is not https".to_string(),
            });
        }
        let same_origin = target.origin() == self.base.origin();
        let response = if same_origin {
            self.send_authorized(DOWNLOAD, || self.download_request(&target))
                .await?
        } else {
            self.send_anonymous(&target).await?
        };
        match response.status() {
            s if s.is_success() => into_pdf_stream(response).await,
            StatusCode::NOT_FOUND => Err(ReteachError::NotFound {
                what: "the certificate file".to_string(),
            }),
            // A storage host refusing a (probably expired) signed URL says nothing about our
            // credentials: re-reading the participation yields a fresh URL.
            s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) if !same_origin => {
                Err(ReteachError::Rejected {
                    endpoint: DOWNLOAD,
                    message: format!(
                        "the storage host refused the certificate URL (HTTP {})",
                        s.as_u16()
                    ),
                })
            }
            _ => Err(error_for(DOWNLOAD, response, &[]).await),
        }
    }

    fn download_request(&self, target: &Url) -> reqwest::RequestBuilder {
        let timeout = self
            .config
            .tls
            .timeout
            .unwrap_or_default()
            .max(DOWNLOAD_TIMEOUT);
        self.http.get(target.clone()).timeout(timeout)
    }

    async fn send_anonymous(&self, target: &Url) -> Result<Response, ReteachError> {
        send_with_retry(
            "reteach",
            DOWNLOAD,
            &self.config.retry,
            self.config.observer.as_ref(),
            Some(&self.limiter),
            || self.download_request(target),
        )
        .await
        .map_err(unavailable)
    }
}

/// Reads just enough of the body to see the PDF header, then hands on the rest as a stream with
/// the peeked bytes put back in front.
async fn into_pdf_stream(response: Response) -> Result<PdfStream, ReteachError> {
    let length = response.content_length();
    let mut body = response
        .bytes_stream()
        // `without_url`: a signed storage URL is a secret of its own.
        .map_err(|e| std::io::Error::other(e.without_url().to_string()));
    let mut head = BytesMut::new();
    while head.len() < PDF_MAGIC.len() {
        match body.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(error)) => {
                return Err(ReteachError::Unavailable {
                    message: format!("{DOWNLOAD}: response body broken: {error}"),
                })
            }
            None => break,
        }
    }
    if !head.starts_with(PDF_MAGIC) {
        return Err(ReteachError::Rejected {
            endpoint: DOWNLOAD,
            message: "the certificate file is not a PDF".to_string(),
        });
    }
    let head: Bytes = head.freeze();
    let stream = futures::stream::once(async move { Ok(head) }).chain(body);
    Ok(PdfStream {
        length,
        body: Box::pin(stream),
    })
}
