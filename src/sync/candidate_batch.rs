//! The certificate job handles completions in completion order, but reteach lists them in no
//! documented order. Holding a whole backfill in memory to sort it costs about 1 KiB per
//! certificate, so the job walks the listing in passes instead: each pass keeps only the
//! `capacity` earliest completions not handled yet ([`CandidateBatch`]), handles them, and the
//! next pass starts after the last one handled. Memory stays bounded by the batch size whatever
//! the number of certificates; the price is re-reading the listing pages once per batch (a few
//! reads per thousand uploads, against Personio's upload limit of 60 a minute).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};

use chrono::{DateTime, Utc};

use super::model::Completion;

/// Default number of completions one pass over the reteach listing keeps in memory.
pub const DEFAULT_BATCH_SIZE: usize = 1_000;

/// Where a completion sorts in processing order: by completion time, then by participation id
/// (stable while reteach generates the certificate, unlike the certificate id).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProcessingKey {
    /// `completedAt` in reteach.
    pub completed_at: DateTime<Utc>,
    /// reteach participation id.
    pub participation_id: String,
}

impl ProcessingKey {
    /// The key of `completion`.
    pub fn of(completion: &Completion) -> Self {
        Self {
            completed_at: completion.completed_at,
            participation_id: completion.participation_id.clone(),
        }
    }
}

fn compare(a: &Completion, b: &Completion) -> Ordering {
    a.completed_at
        .cmp(&b.completed_at)
        .then_with(|| a.participation_id.cmp(&b.participation_id))
}

/// Orders candidates for processing (see [`ProcessingKey`]), so the cursor only ever moves
/// forward over handled certificates.
pub fn sort_candidates(candidates: &mut [Completion]) {
    candidates.sort_by(compare);
}

/// A completion ordered by its processing key inside the heap.
struct Ordered(Completion);

impl PartialEq for Ordered {
    fn eq(&self, other: &Self) -> bool {
        compare(&self.0, &other.0) == Ordering::Equal
    }
}

impl Eq for Ordered {}

impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(&self.0, &other.0)
    }
}

/// The `capacity` earliest completions of one pass over the listing, in bounded memory.
///
/// Completions at or before `after` (handled by an earlier pass) are ignored. A participation
/// listed twice (reteach pages shift while new completions arrive) is kept once.
pub struct CandidateBatch {
    capacity: usize,
    after: Option<ProcessingKey>,
    /// Max-heap: the latest kept completion is evicted first when an earlier one arrives.
    heap: BinaryHeap<Ordered>,
    kept: HashSet<String>,
    eligible: usize,
}

impl CandidateBatch {
    /// An empty batch keeping at most `capacity` (at least 1) completions later than `after`.
    pub fn new(capacity: usize, after: Option<ProcessingKey>) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            after,
            heap: BinaryHeap::with_capacity(capacity + 1),
            kept: HashSet::with_capacity(capacity + 1),
            eligible: 0,
        }
    }

    /// Offers one listed completion (already filtered for what the ledger has handled).
    pub fn offer(&mut self, completion: Completion) {
        if self
            .after
            .as_ref()
            .is_some_and(|after| ProcessingKey::of(&completion) <= *after)
        {
            return;
        }
        if self.kept.contains(&completion.participation_id) {
            return;
        }
        self.eligible += 1;
        if self.heap.len() == self.capacity {
            let Some(latest) = self.heap.peek() else {
                return;
            };
            if compare(&completion, &latest.0) != Ordering::Less {
                return;
            }
            if let Some(Ordered(evicted)) = self.heap.pop() {
                self.kept.remove(&evicted.participation_id);
            }
        }
        self.kept.insert(completion.participation_id.clone());
        self.heap.push(Ordered(completion));
    }

    /// How many completions this pass found to handle (the kept ones and those left for later
    /// passes). A participation listed twice by shifting pages counts twice only when it is beyond
    /// the batch.
    pub fn eligible(&self) -> usize {
        self.eligible
    }

    /// Whether completions were left for a later pass.
    pub fn is_truncated(&self) -> bool {
        self.eligible > self.heap.len()
    }

    /// The kept completions in processing order.
    pub fn into_sorted(self) -> Vec<Completion> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|ordered| ordered.0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(participation: &str, minute: u32) -> Completion {
        Completion {
            participation_id: participation.into(),
            certificate_id: Some(format!("cert-{participation}")),
            certificate_url: None,
            course_name: "Safety".into(),
            completed_at: format!("2026-01-01T00:{minute:02}:00Z").parse().unwrap(),
            customer_external_id: Some("1".into()),
            customer_id: "c1".into(),
        }
    }

    fn ids(completions: &[Completion]) -> Vec<&str> {
        completions
            .iter()
            .map(|c| c.participation_id.as_str())
            .collect()
    }

    #[test]
    fn orders_candidates_by_completion_then_participation() {
        let mut candidates = vec![
            completion("p3", 2),
            completion("p2", 1),
            completion("p1", 1),
        ];
        sort_candidates(&mut candidates);
        assert_eq!(ids(&candidates), ["p1", "p2", "p3"]);
    }

    #[test]
    fn keeps_the_earliest_in_order() {
        let mut batch = CandidateBatch::new(3, None);
        for (id, minute) in [("e", 5), ("a", 1), ("d", 4), ("b", 2), ("f", 6), ("c", 3)] {
            batch.offer(completion(id, minute));
        }
        assert_eq!(batch.eligible(), 6);
        assert!(batch.is_truncated());
        assert_eq!(ids(&batch.into_sorted()), ["a", "b", "c"]);
    }

    #[test]
    fn skips_what_an_earlier_pass_handled() {
        let after = ProcessingKey::of(&completion("b", 2));
        let mut batch = CandidateBatch::new(10, Some(after));
        for (id, minute) in [("a", 1), ("b", 2), ("c", 2), ("d", 3)] {
            batch.offer(completion(id, minute));
        }
        assert_eq!(batch.eligible(), 2);
        assert!(!batch.is_truncated());
        assert_eq!(ids(&batch.into_sorted()), ["c", "d"]);
    }

    #[test]
    fn keeps_a_participation_listed_twice_once() {
        let mut batch = CandidateBatch::new(10, None);
        batch.offer(completion("a", 1));
        batch.offer(completion("a", 1));
        batch.offer(completion("b", 2));
        assert_eq!(batch.eligible(), 2);
        assert_eq!(ids(&batch.into_sorted()), ["a", "b"]);
    }

    #[test]
    fn passes_cover_every_completion_exactly_once() {
        // 25 completions in scrambled order, several sharing a completion time, walked in
        // passes of 4 the way the job does.
        let all: Vec<Completion> = (0..25u32)
            .map(|i| completion(&format!("p{:02}", (i * 7) % 25), ((i * 7) % 25) / 3))
            .collect();
        let mut handled = Vec::new();
        let mut after = None;
        loop {
            let mut batch = CandidateBatch::new(4, after.clone());
            all.iter().cloned().for_each(|c| batch.offer(c));
            let more = batch.is_truncated();
            let kept = batch.into_sorted();
            after = kept.last().map(ProcessingKey::of).or(after);
            handled.extend(kept);
            if !more {
                break;
            }
        }
        let mut expected = all.clone();
        sort_candidates(&mut expected);
        assert_eq!(ids(&handled), ids(&expected));
    }
}
