//! `GET /certificates/{id}/download`: a valid PDF generated on the fly and streamed, so a test can
//! ask for a 30 MB+ file without the simulator holding it in memory.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::{self, StreamExt};

use super::errors::nest_error;
use super::model::SimCertificate;
use super::ReteachSim;

const HEADER: &[u8] = b"%PDF-1.4\n";
/// Padding is written as PDF comment lines of this length (including the newline).
const LINE: usize = 1024;
/// Lines per streamed chunk (64 KiB).
const LINES_PER_CHUNK: usize = 64;

/// Objects, cross-reference table and trailer of a one-page PDF whose objects start at `offset`.
fn pdf_tail(offset: usize) -> Vec<u8> {
    let objects = [
        "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
        "2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n",
        "3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>\nendobj\n",
    ];
    let mut out = String::new();
    let mut offsets = Vec::new();
    for object in objects {
        offsets.push(offset + out.len());
        out.push_str(object);
    }
    let xref_at = offset + out.len();
    out.push_str("xref\n0 4\n0000000000 65535 f \n");
    for at in offsets {
        out.push_str(&format!("{at:010} 00000 n \n"));
    }
    out.push_str(&format!(
        "trailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n"
    ));
    out.into_bytes()
}

/// `len` bytes of padding: comment lines `%xxx…x\n`, the last one possibly shorter.
fn padding_chunk(start: usize, end: usize, total: usize) -> Bytes {
    let mut chunk = Vec::with_capacity(end - start);
    for i in start..end {
        let byte = if i + 1 == total || i % LINE == LINE - 1 {
            b'\n'
        } else if i % LINE == 0 {
            b'%'
        } else {
            b'x'
        };
        chunk.push(byte);
    }
    Bytes::from(chunk)
}

/// Total length and padding length of a PDF of about `size` bytes (never below the minimal PDF).
pub(crate) fn pdf_layout(size: u64) -> (u64, usize) {
    let size = usize::try_from(size).unwrap_or(usize::MAX / 2);
    let minimal = HEADER.len() + pdf_tail(HEADER.len()).len();
    let mut padding = size.saturating_sub(minimal);
    // The trailer's `startxref` number grows with the padding; shrink until the total fits.
    while padding > 0 && HEADER.len() + padding + pdf_tail(HEADER.len() + padding).len() > size {
        padding -= 1;
    }
    let total = HEADER.len() + padding + pdf_tail(HEADER.len() + padding).len();
    (total as u64, padding)
}

/// The PDF bytes, streamed in chunks.
pub(crate) fn pdf_body(size: u64) -> (u64, Body) {
    let (total, padding) = pdf_layout(size);
    let chunk = LINE * LINES_PER_CHUNK;
    let head = stream::once(async { Ok::<Bytes, std::io::Error>(Bytes::from_static(HEADER)) });
    let pad = stream::iter((0..padding).step_by(chunk))
        .map(move |start| Ok(padding_chunk(start, (start + chunk).min(padding), padding)));
    let tail = stream::once(async move { Ok(Bytes::from(pdf_tail(HEADER.len() + padding))) });
    (total, Body::from_stream(head.chain(pad).chain(tail)))
}

/// `GET /certificates/{id}/download` (bearer required, like the API).
pub(crate) async fn download(
    State(sim): State<ReteachSim>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let certificate = sim.with_state(|state| state.certificates.get(&id).cloned());
    let Some(certificate) = certificate.filter(|c| c.pdf_ready) else {
        return nest_error(StatusCode::NOT_FOUND, "Certificate not found");
    };
    if let Some(redirect) = super::storage::first_redirect(&sim, &id, &headers) {
        return redirect;
    }
    pdf_response(&sim, &certificate)
}

/// The PDF of `certificate` (or the HTML page of a broken one), with `Content-Length` unless the
/// simulator is told to stream without it.
pub(crate) fn pdf_response(sim: &ReteachSim, certificate: &SimCertificate) -> Response {
    if certificate.not_pdf {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>Storage error</body></html>",
        )
            .into_response();
    }
    let announce = sim.with_state(|state| state.announce_pdf_length);
    let (length, body) = pdf_body(certificate.size);
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if announce {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"certificate.pdf\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn bytes(size: u64) -> (u64, Vec<u8>) {
        let (length, body) = pdf_body(size);
        let collected = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap()
            .to_vec();
        (length, collected)
    }

    /// The byte offset the PDF trailer gives for its cross-reference table.
    fn xref_offset(text: &str) -> usize {
        text.split("startxref\n")
            .nth(1)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    #[tokio::test]
    async fn small_pdf_is_complete_and_consistent() {
        let (length, pdf) = bytes(0).await;
        assert_eq!(length as usize, pdf.len());
        assert!(pdf.starts_with(b"%PDF-1.4"));
        assert!(pdf.ends_with(b"%%EOF\n"));
        let text = String::from_utf8(pdf.clone()).unwrap();
        let xref = xref_offset(&text);
        assert!(text[xref..].starts_with("xref"));
    }

    #[tokio::test]
    async fn padded_pdf_has_the_requested_size_and_valid_offsets() {
        let (length, pdf) = bytes(200_000).await;
        assert_eq!(length, 200_000);
        assert_eq!(pdf.len(), 200_000);
        let text = String::from_utf8(pdf).unwrap();
        let xref = xref_offset(&text);
        assert!(text[xref..].starts_with("xref"));
        let first_obj: usize = text[xref..].lines().nth(3).unwrap()[..10].parse().unwrap();
        assert!(text[first_obj..].starts_with("1 0 obj"));
    }
}
