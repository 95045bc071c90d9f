//! A certificate PDF on its way from reteach to Personio, streamed so that memory stays flat no
//! matter how many (or how large) certificates are copied.

use bytes::Bytes;
use futures::stream::BoxStream;

/// A streamed file body with its length when the sender announced one.
pub struct PdfStream {
    /// Size in bytes from `Content-Length`, when known.
    pub length: Option<u64>,
    /// The body chunks.
    pub body: BoxStream<'static, Result<Bytes, std::io::Error>>,
}

impl PdfStream {
    /// A stream over bytes already in memory (tests, simulators).
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self {
            length: Some(bytes.len() as u64),
            body: Box::pin(futures::stream::once(async move { Ok(bytes) })),
        }
    }
}

#[cfg(test)]
impl PdfStream {
    /// The whole body, in memory; panics when it breaks off (tests).
    pub async fn read_all(self) -> Vec<u8> {
        use futures::TryStreamExt;
        let chunks: Vec<Bytes> = self.body.try_collect().await.unwrap();
        chunks.concat()
    }

    /// Asserts that the stream announces the length of `expected` and carries exactly it (tests).
    pub async fn assert_carries(self, expected: &[u8]) {
        assert_eq!(self.length, Some(expected.len() as u64), "announced length");
        assert_eq!(self.read_all().await, expected);
    }
}

impl std::fmt::Debug for PdfStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdfStream")
            .field("length", &self.length)
            .finish()
    }
}
