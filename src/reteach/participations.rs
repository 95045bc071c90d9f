//! Participation endpoints: completed participations with their certificates. The listing is
//! streamed page by page; duplicates from shifting pages are left to the caller, which keeps
//! only a bounded batch (see `sync::candidate_batch`).

use chrono::{DateTime, SecondsFormat, Utc};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use super::client::ReteachClient;
use super::customers::{last_page, PAGE_LIMIT};
use super::wire;
use super::ReteachError;
use crate::sync::Completion;

pub const LIST: &str = "GET /participation";
const GET_ONE: &str = "GET /participation/{id}";

/// The query of one page of `GET /participation` for completed participations, completed at or
/// after `since` when given.
pub(super) fn completed_query(
    since: Option<DateTime<Utc>>,
    page: u64,
    limit: u64,
) -> Vec<(&'static str, String)> {
    let mut query = vec![("status", "COMPLETED".to_string())];
    if let Some(since) = since {
        query.push((
            "completedAtSince",
            since.to_rfc3339_opts(SecondsFormat::Millis, true),
        ));
    }
    query.push(("page", page.to_string()));
    query.push(("limit", limit.to_string()));
    query
}

impl ReteachClient {
    /// Streams completed participations page by page, holding one page at a time.
    pub(crate) fn completions(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> BoxStream<'_, Result<Completion, ReteachError>> {
        stream::try_unfold(Some(1u64), move |next| async move {
            let Some(page) = next else {
                return Ok(None);
            };
            let (completions, last) = self.completion_page(since, page).await?;
            Ok(Some((completions, (!last).then_some(page + 1))))
        })
        .map_ok(|page| stream::iter(page.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    /// One page of the listing and whether it is the last one.
    async fn completion_page(
        &self,
        since: Option<DateTime<Utc>>,
        page: u64,
    ) -> Result<(Vec<Completion>, bool), ReteachError> {
        let url = self.url(&["participation"])?;
        let query = completed_query(since, page, PAGE_LIMIT);
        let value = self
            .call_json(LIST, &[], || self.http.get(url.clone()).query(&query))
            .await?;
        let (items, total) = wire::page(&value, LIST)?;
        // The filters are newer than the 2022 spec: filter again, in case they are ignored.
        let completions = items
            .iter()
            .filter_map(wire::completion)
            .filter(|c| since.is_none_or(|since| c.completed_at >= since))
            .collect();
        Ok((completions, last_page(page, items.len(), total)))
    }

    pub(crate) async fn one_completion(
        &self,
        id: &str,
    ) -> Result<Option<Completion>, ReteachError> {
        let value = self.get_one(GET_ONE, &["participation", id], &[]).await?;
        Ok(value.as_ref().and_then(wire::completion))
    }
}
