//! What one run learned from Personio's document listings: which employees were listed and which
//! certificates their documents carry markers of. Kept as 128-bit fingerprints, not strings, so a
//! backfill over 10,000 employees holds a few hundred KiB, not megabytes; a collision (about
//! one in 10^30 at that size) is far below any other failure mode.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use crate::personio::{PersonioApi, PersonioError};
use crate::sync::certificate_plan::marker_ids;

/// The markers of listed employees.
#[derive(Debug, Default)]
pub(crate) struct MarkerCache {
    listed: HashSet<u128>,
    present: HashSet<u128>,
}

fn fingerprint(parts: &[&str]) -> u128 {
    let half = |salt: u8| {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut hasher);
        parts.hash(&mut hasher);
        hasher.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

impl MarkerCache {
    /// Whether `employee`'s documents were listed in this run.
    pub(crate) fn is_listed(&self, employee: &str) -> bool {
        self.listed.contains(&fingerprint(&[employee]))
    }

    /// Records a listing of `employee`'s documents (the certificate ids in their markers).
    pub(crate) fn record<'a>(
        &mut self,
        employee: &str,
        certificates: impl IntoIterator<Item = &'a str>,
    ) {
        self.listed.insert(fingerprint(&[employee]));
        for certificate in certificates {
            self.present.insert(fingerprint(&[employee, certificate]));
        }
    }

    /// Records one certificate uploaded to `employee` in this run.
    pub(crate) fn add(&mut self, employee: &str, certificate: &str) {
        self.present.insert(fingerprint(&[employee, certificate]));
    }

    /// Whether `employee`'s documents carry the marker of `certificate` (as listed).
    pub(crate) fn contains(&self, employee: &str, certificate: &str) -> bool {
        self.present
            .contains(&fingerprint(&[employee, certificate]))
    }
}

/// Lists `employee`'s documents in `category_id` and returns the certificate ids of their
/// markers.
pub(crate) async fn list_markers(
    personio: &dyn PersonioApi,
    employee: &str,
    category_id: i64,
) -> Result<Vec<String>, PersonioError> {
    let documents = personio.list_documents(employee, category_id).await?;
    Ok(documents
        .iter()
        .filter_map(|doc| doc.comment.as_deref())
        .flat_map(marker_ids)
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_listed_employees_and_their_markers_only() {
        let mut cache = MarkerCache::default();
        assert!(!cache.is_listed("7"));
        cache.record("7", ["a", "b"]);
        assert!(cache.is_listed("7"));
        assert!(cache.contains("7", "a"));
        assert!(!cache.contains("7", "c"));
        assert!(!cache.contains("8", "a"), "markers belong to one employee");
        cache.add("7", "c");
        assert!(cache.contains("7", "c"));
    }
}
