//! Holding one certificate PDF between download and upload, so the upload can announce its exact
//! `Content-Length` (Personio's upload endpoint is not documented to accept a chunked body, while
//! every server accepts a known length) and a file larger than Personio's 30 MB limit is refused
//! before anything is sent.
//!
//! The PDF is kept in memory (at most [`super::MAX_PDF_BYTES`] per certificate, and a sync handles
//! one certificate at a time) or, when a scratch directory is configured, in an anonymous file
//! there that the operating system removes when it is closed — also after a crash. The scratch
//! directory is meant for an `emptyDir` volume, so the operator keeps a read-only root file system.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::PdfStream;

/// Where PDFs are held while they are copied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpoolOptions {
    /// A writable directory for PDFs in transit (for example an `emptyDir` mount); `None` keeps
    /// them in memory.
    pub scratch_dir: Option<PathBuf>,
}

/// Why a PDF could not be spooled.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The file is larger than the limit (counted while reading, whatever was announced).
    #[error("the file is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The source broke off while it was read.
    #[error("the download broke off: {0}")]
    Source(std::io::Error),
    /// The scratch directory could not be used.
    #[error("cannot use the scratch directory {dir}: {source}")]
    Scratch {
        /// The configured directory.
        dir: String,
        /// What failed.
        source: std::io::Error,
    },
}

/// Reads `body` completely (at most `limit` bytes) into memory or the scratch directory and
/// returns it as a stream of known, exact length.
pub async fn spool<S>(body: S, limit: u64, options: &SpoolOptions) -> Result<PdfStream, SpoolError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin,
{
    match &options.scratch_dir {
        None => spool_in_memory(body, limit).await,
        Some(dir) => spool_to_file(body, limit, dir).await,
    }
}

async fn spool_in_memory<S>(mut body: S, limit: u64) -> Result<PdfStream, SpoolError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    let mut held = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(SpoolError::Source)?;
        if (held.len() as u64).saturating_add(chunk.len() as u64) > limit {
            return Err(SpoolError::TooLarge { limit });
        }
        held.extend_from_slice(&chunk);
    }
    Ok(PdfStream::from_bytes(held.freeze()))
}

async fn spool_to_file<S>(mut body: S, limit: u64, dir: &Path) -> Result<PdfStream, SpoolError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    let scratch = |source| SpoolError::Scratch {
        dir: dir.display().to_string(),
        source,
    };
    let owned_dir = dir.to_path_buf();
    // An unnamed file: nothing is left behind, whatever happens to the process.
    let file = tokio::task::spawn_blocking(move || tempfile::tempfile_in(owned_dir))
        .await
        .map_err(|e| scratch(std::io::Error::other(e.to_string())))?
        .map_err(scratch)?;
    let mut file = tokio::fs::File::from_std(file);
    let mut length = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(SpoolError::Source)?;
        length = length.saturating_add(chunk.len() as u64);
        if length > limit {
            return Err(SpoolError::TooLarge { limit });
        }
        file.write_all(&chunk).await.map_err(scratch)?;
    }
    file.flush().await.map_err(scratch)?;
    file.seek(SeekFrom::Start(0)).await.map_err(scratch)?;
    let stream = tokio_util::io::ReaderStream::new(file).map_ok(Bytes::from);
    Ok(PdfStream {
        length: Some(length),
        body: Box::pin(stream),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: Vec<&'static [u8]>) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
        futures::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p))))
    }

    async fn collect(pdf: PdfStream) -> Vec<u8> {
        let parts: Vec<Bytes> = pdf.body.try_collect().await.unwrap();
        parts.concat()
    }

    #[tokio::test]
    async fn memory_spool_knows_the_exact_length() {
        let pdf = spool(
            chunks(vec![b"%PDF-1.7\n", b"body", b"%%EOF"]),
            100,
            &SpoolOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(pdf.length, Some(18));
        assert_eq!(collect(pdf).await, b"%PDF-1.7\nbody%%EOF");
    }

    #[tokio::test]
    async fn file_spool_knows_the_exact_length_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let options = SpoolOptions {
            scratch_dir: Some(dir.path().to_path_buf()),
        };
        let pdf = spool(chunks(vec![b"%PDF-1.7\n", b"body"]), 100, &options)
            .await
            .unwrap();
        assert_eq!(pdf.length, Some(13));
        assert_eq!(collect(pdf).await, b"%PDF-1.7\nbody");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn more_bytes_than_the_limit_are_refused_in_both_spools() {
        let dir = tempfile::tempdir().unwrap();
        for options in [
            SpoolOptions::default(),
            SpoolOptions {
                scratch_dir: Some(dir.path().to_path_buf()),
            },
        ] {
            let result = spool(chunks(vec![b"12345", b"67890", b"1"]), 10, &options).await;
            assert!(
                matches!(result, Err(SpoolError::TooLarge { limit: 10 })),
                "{options:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_missing_scratch_directory_is_named() {
        let options = SpoolOptions {
            scratch_dir: Some(PathBuf::from("/nonexistent/scratch")),
        };
        let error = spool(chunks(vec![b"%PDF"]), 10, &options)
            .await
            .unwrap_err();
        assert!(matches!(error, SpoolError::Scratch { .. }), "{error:?}");
        assert!(error.to_string().contains("/nonexistent/scratch"));
    }

    #[tokio::test]
    async fn a_broken_source_is_reported_as_such() {
        let body = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"%PDF")),
            Err(std::io::Error::other("reset")),
        ]);
        let error = spool(body, 100, &SpoolOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(error, SpoolError::Source(_)), "{error:?}");
    }
}
