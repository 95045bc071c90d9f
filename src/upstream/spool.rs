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
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::PdfStream;

/// Where PDFs are held while they are copied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpoolOptions {
    /// A writable directory for PDFs in transit (for example an `emptyDir` mount); `None` keeps
    /// them in memory.
    pub scratch_dir: Option<PathBuf>,
    /// The process-wide allowance for PDFs held in memory; `None`: no allowance (each PDF is
    /// still at most the limit).
    pub memory: Option<PdfMemory>,
}

/// How many bytes of PDFs all runs together may hold in memory (`--pdf-memory-mib`), so memory
/// is bounded by configuration, not by how many certificate runs a burst of webhook
/// notifications starts (issue 26). A PDF reserves its announced size (the limit when none is
/// announced) before it is read and keeps it until its upload is done; a run that finds the
/// allowance spent waits, without its run slot ([`super::paused`]).
#[derive(Clone)]
pub struct PdfMemory {
    kib: Arc<Semaphore>,
    total_kib: u32,
}

impl PdfMemory {
    /// An allowance of `bytes`, at least one PDF of `largest` bytes.
    pub fn new(bytes: u64, largest: u64) -> Self {
        let kib = u32::try_from(bytes.max(largest).div_ceil(1024)).unwrap_or(u32::MAX >> 3);
        let kib = kib.min(u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX >> 3));
        Self {
            kib: Arc::new(Semaphore::new(kib as usize)),
            total_kib: kib,
        }
    }

    /// Bytes not reserved now.
    pub fn available_bytes(&self) -> u64 {
        self.kib.available_permits() as u64 * 1024
    }

    /// KiB to reserve for `bytes` (capped at the allowance).
    fn kib_for(&self, bytes: u64) -> u32 {
        u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_kib)
    }

    /// Waits until `bytes` (capped at the allowance) are free and reserves them.
    async fn reserve(&self, bytes: u64) -> Option<OwnedSemaphorePermit> {
        self.reserve_kib(self.kib_for(bytes)).await
    }

    /// Grows `permit` to `bytes` in all (capped at the allowance).
    async fn grow(&self, permit: &mut OwnedSemaphorePermit, bytes: u64) {
        let held = u32::try_from(permit.num_permits()).unwrap_or(u32::MAX);
        let missing = self.kib_for(bytes).saturating_sub(held);
        if missing > 0 {
            if let Some(more) = self.reserve_kib(missing).await {
                permit.merge(more);
            }
        }
    }

    async fn reserve_kib(&self, kib: u32) -> Option<OwnedSemaphorePermit> {
        let semaphore = self.kib.clone();
        match semaphore.clone().try_acquire_many_owned(kib) {
            Ok(permit) => Some(permit),
            // Never closed; a run goes without a reservation rather than not at all.
            Err(_) => super::paused(semaphore.acquire_many_owned(kib)).await.ok(),
        }
    }
}

/// Room in the [`PdfMemory`] allowance held for one PDF, taken before its download is sent (a
/// download that waited for room after its request went out could time out meanwhile) and
/// shrunk to the announced size once the response headers are in.
#[derive(Debug)]
pub struct PdfReservation {
    memory: PdfMemory,
    permit: Option<OwnedSemaphorePermit>,
}

impl PdfReservation {
    /// Gives back what `bytes` do not need.
    fn shrink_to(&mut self, bytes: u64) {
        if let Some(permit) = self.permit.as_mut() {
            let keep = self.memory.kib_for(bytes) as usize;
            let excess = permit.num_permits().saturating_sub(keep);
            if excess > 0 {
                drop(permit.split(excess));
            }
        }
    }
}

impl PdfMemory {
    /// Waits (without the run slot) until `bytes` — the largest PDF that may come — are free,
    /// and holds them for one download.
    pub async fn reserve_largest(&self, bytes: u64) -> PdfReservation {
        PdfReservation {
            memory: self.clone(),
            permit: self.reserve(bytes).await,
        }
    }
}

impl PartialEq for PdfMemory {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.kib, &other.kib)
    }
}

impl Eq for PdfMemory {}

impl std::fmt::Debug for PdfMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdfMemory")
            .field("total_kib", &self.total_kib)
            .field("available_kib", &self.kib.available_permits())
            .finish()
    }
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
    spool_announced(body, None, limit, options, None).await
}

/// [`spool`] of a body whose sender announced `announced` bytes (`Content-Length`): in memory,
/// that much of the [`PdfMemory`] allowance is reserved up front (the limit when nothing was
/// announced; a body longer than announced reserves the rest up to the limit).
/// `reserved`: room taken before the request was sent (see [`PdfReservation`]); it is shrunk to
/// the announced size, or given back at once when the PDF goes to the scratch directory.
pub async fn spool_announced<S>(
    body: S,
    announced: Option<u64>,
    limit: u64,
    options: &SpoolOptions,
    reserved: Option<PdfReservation>,
) -> Result<PdfStream, SpoolError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin,
{
    match &options.scratch_dir {
        None => {
            let reservation = match reserved {
                Some(mut reservation) => {
                    reservation.shrink_to(announced.unwrap_or(limit).min(limit));
                    reservation.permit
                }
                None => match &options.memory {
                    Some(memory) => memory.reserve(announced.unwrap_or(limit).min(limit)).await,
                    None => None,
                },
            };
            let memory = options.memory.as_ref();
            spool_in_memory(body, announced, limit, memory, reservation).await
        }
        Some(dir) => spool_to_file(body, limit, dir).await,
    }
}

async fn spool_in_memory<S>(
    mut body: S,
    announced: Option<u64>,
    limit: u64,
    memory: Option<&PdfMemory>,
    mut reservation: Option<OwnedSemaphorePermit>,
) -> Result<PdfStream, SpoolError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    let mut reserved = announced.unwrap_or(limit).min(limit);
    let mut held = BytesMut::with_capacity(usize::try_from(reserved).unwrap_or(0));
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(SpoolError::Source)?;
        let length = (held.len() as u64).saturating_add(chunk.len() as u64);
        if length > limit {
            return Err(SpoolError::TooLarge { limit });
        }
        if length > reserved {
            // Longer than announced: reserve the rest up to the limit before holding more.
            if let (Some(memory), Some(permit)) = (memory, reservation.as_mut()) {
                memory.grow(permit, limit).await;
            }
            reserved = limit;
        }
        held.extend_from_slice(&chunk);
    }
    let bytes = held.freeze();
    let length = bytes.len() as u64;
    // The reservation lives as long as the stream: until the upload has sent the bytes.
    let body = futures::stream::once(async move { Ok(bytes) }).map(move |chunk| {
        let _held_until_dropped = &reservation;
        chunk
    });
    Ok(PdfStream {
        length: Some(length),
        body: Box::pin(body),
    })
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

    /// Options holding PDFs in `memory`'s allowance.
    fn with_memory(memory: &PdfMemory) -> SpoolOptions {
        SpoolOptions {
            memory: Some(memory.clone()),
            ..SpoolOptions::default()
        }
    }

    /// Options spooling PDFs to files in `dir`.
    fn in_dir(dir: impl Into<PathBuf>) -> SpoolOptions {
        SpoolOptions {
            scratch_dir: Some(dir.into()),
            ..SpoolOptions::default()
        }
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
        pdf.assert_carries(b"%PDF-1.7\nbody%%EOF").await;
    }

    #[tokio::test]
    async fn file_spool_knows_the_exact_length_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let options = in_dir(dir.path());
        let pdf = spool(chunks(vec![b"%PDF-1.7\n", b"body"]), 100, &options)
            .await
            .unwrap();
        pdf.assert_carries(b"%PDF-1.7\nbody").await;
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn more_bytes_than_the_limit_are_refused_in_both_spools() {
        let dir = tempfile::tempdir().unwrap();
        for options in [SpoolOptions::default(), in_dir(dir.path())] {
            let result = spool(chunks(vec![b"12345", b"67890", b"1"]), 10, &options).await;
            assert!(
                matches!(result, Err(SpoolError::TooLarge { limit: 10 })),
                "{options:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_missing_scratch_directory_is_named() {
        let options = in_dir("/nonexistent/scratch");
        let error = spool(chunks(vec![b"%PDF"]), 10, &options)
            .await
            .unwrap_err();
        assert!(matches!(error, SpoolError::Scratch { .. }), "{error:?}");
        assert!(error.to_string().contains("/nonexistent/scratch"));
    }

    #[tokio::test]
    async fn pdfs_in_memory_never_hold_more_than_the_allowance() {
        // Room for two PDFs of 10 bytes (rounded to KiB: two of 1 KiB).
        let memory = PdfMemory::new(2048, 10);
        let options = with_memory(&memory);
        let first = spool_announced(chunks(vec![b"%PDF-1"]), Some(6), 10, &options, None)
            .await
            .unwrap();
        let second = spool_announced(chunks(vec![b"%PDF-2"]), Some(6), 10, &options, None)
            .await
            .unwrap();
        assert_eq!(memory.available_bytes(), 0);
        let third = tokio::spawn({
            let options = options.clone();
            async move {
                spool_announced(chunks(vec![b"%PDF-3"]), Some(6), 10, &options, None)
                    .await
                    .map(|pdf| pdf.length)
            }
        });
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert!(!third.is_finished(), "a third PDF waits for room");
        assert_eq!(first.read_all().await, b"%PDF-1");
        assert_eq!(third.await.unwrap().unwrap(), Some(6));
        drop(second);
        assert_eq!(memory.available_bytes(), 2048, "everything given back");
    }

    #[tokio::test]
    async fn a_body_longer_than_announced_reserves_up_to_the_limit() {
        let memory = PdfMemory::new(8 * 1024, 4 * 1024);
        let options = with_memory(&memory);
        let long = vec![b'x'; 3000];
        let body = futures::stream::iter(vec![Ok(Bytes::from(long))]);
        let pdf = spool_announced(body, Some(10), 4 * 1024, &options, None)
            .await
            .unwrap();
        assert_eq!(pdf.length, Some(3000));
        assert_eq!(memory.available_bytes(), 4 * 1024, "the limit is reserved");
        drop(pdf);
        assert_eq!(memory.available_bytes(), 8 * 1024);
    }

    #[tokio::test]
    async fn room_taken_before_the_download_shrinks_to_the_announced_size() {
        let memory = PdfMemory::new(64 * 1024, 32 * 1024);
        let options = with_memory(&memory);
        let reservation = memory.reserve_largest(32 * 1024).await;
        assert_eq!(
            memory.available_bytes(),
            32 * 1024,
            "the largest PDF, before the request"
        );
        let pdf = spool_announced(
            chunks(vec![b"%PDF-1"]),
            Some(6),
            32 * 1024,
            &options,
            Some(reservation),
        )
        .await
        .unwrap();
        assert_eq!(
            memory.available_bytes(),
            63 * 1024,
            "one KiB kept for 6 bytes"
        );
        drop(pdf);
        assert_eq!(memory.available_bytes(), 64 * 1024);
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
