//! Checks a downloaded certificate before it is streamed to Personio: Personio refuses files over
//! 30 MB and the upload cannot be taken back, so an HTML error page served with status 200 or an
//! oversized file is caught here, before any byte is sent.

use bytes::Bytes;
use futures::StreamExt;

use crate::upstream::PdfStream;

/// Largest document Personio accepts (`POST /v1/company/documents`).
pub const MAX_DOCUMENT_BYTES: u64 = 30 * 1024 * 1024;
/// How far into the file the `%PDF-` header may start (the PDF spec tolerates leading bytes).
const HEADER_WINDOW: usize = 1024;
const PDF_HEADER: &[u8] = b"%PDF-";

/// Why a download cannot be uploaded.
#[derive(Debug, thiserror::Error)]
pub enum PdfCheckError {
    /// The file does not start like a PDF.
    #[error("certificate file is not a PDF")]
    NotPdf,
    /// The announced size exceeds Personio's limit.
    #[error("certificate file is larger than Personio accepts (30 MB)")]
    TooLarge,
    /// The download broke off while the header was read.
    #[error("certificate download interrupted: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads just enough of `pdf` to see its header and returns a stream that still yields every byte.
pub async fn check_pdf(mut pdf: PdfStream) -> Result<PdfStream, PdfCheckError> {
    if pdf.length.is_some_and(|length| length > MAX_DOCUMENT_BYTES) {
        return Err(PdfCheckError::TooLarge);
    }
    let mut head: Vec<u8> = Vec::new();
    let mut consumed: Vec<Bytes> = Vec::new();
    let mut found = false;
    while head.len() < HEADER_WINDOW + PDF_HEADER.len() {
        match pdf.body.next().await {
            Some(chunk) => {
                let chunk = chunk?;
                head.extend_from_slice(&chunk[..chunk.len().min(HEADER_WINDOW + PDF_HEADER.len())]);
                consumed.push(chunk);
                if head.windows(PDF_HEADER.len()).any(|w| w == PDF_HEADER) {
                    found = true;
                    break;
                }
            }
            None => break,
        }
    }
    if !found {
        return Err(PdfCheckError::NotPdf);
    }
    let replay = futures::stream::iter(consumed.into_iter().map(Ok));
    Ok(PdfStream {
        length: pdf.length,
        body: Box::pin(replay.chain(pdf.body)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(parts: &[&'static [u8]], length: Option<u64>) -> PdfStream {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        PdfStream {
            length,
            body: Box::pin(futures::stream::iter(chunks)),
        }
    }

    #[tokio::test]
    async fn passes_a_pdf_through_unchanged() {
        let checked = check_pdf(chunked(&[b"%PD", b"F-1.7\n", b"rest"], Some(13)))
            .await
            .unwrap();
        checked.assert_carries(b"%PDF-1.7\nrest").await;
    }

    #[tokio::test]
    async fn refuses_an_html_page() {
        let result = check_pdf(PdfStream::from_bytes(&b"<html>Login</html>"[..])).await;
        assert!(matches!(result, Err(PdfCheckError::NotPdf)));
    }

    #[tokio::test]
    async fn refuses_an_empty_file() {
        let result = check_pdf(chunked(&[], Some(0))).await;
        assert!(matches!(result, Err(PdfCheckError::NotPdf)));
    }

    #[tokio::test]
    async fn refuses_an_announced_oversized_file() {
        let result = check_pdf(chunked(&[b"%PDF-1.7"], Some(MAX_DOCUMENT_BYTES + 1))).await;
        assert!(matches!(result, Err(PdfCheckError::TooLarge)));
    }

    #[tokio::test]
    async fn reports_a_broken_download() {
        let pdf = PdfStream {
            length: None,
            body: Box::pin(futures::stream::iter(vec![Err(std::io::Error::other(
                "reset",
            ))])),
        };
        assert!(matches!(check_pdf(pdf).await, Err(PdfCheckError::Io(_))));
    }
}
