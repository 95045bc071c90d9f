//! reteach client behind the [`ReteachApi`] trait: OAuth, customers, participations with
//! certificates, certificate downloads. See `../shared/reference/lms/README.md`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

use crate::sync::{Completion, CustomerFields, CustomerPatch, ReteachCustomer};
use crate::upstream::PdfStream;

mod auth;
mod client;
mod config;
mod customers;
mod download;
mod download_policy;
mod error;
mod participations;
mod probe;
mod response;
mod subscriptions;
mod tags;
mod wire;

#[cfg(test)]
mod field_round_trip_tests;

pub use client::ReteachClient;

/// The endpoint names the client records its requests under (the `endpoint` label of the request
/// metrics; the bench counts by them).
pub mod endpoints {
    pub use super::auth::AUTHORIZE as AUTH;
    pub use super::customers::{CREATE, GET_ONE as LOOKUP, LIST, UPDATE};
    pub use super::download::DOWNLOAD;
    pub use super::participations::LIST as PARTICIPATIONS;
}
pub use config::{
    DownloadPolicy, ReteachConfig, ReteachCredentials, DEFAULT_BASE_URL,
    DEFAULT_REQUESTS_PER_SECOND,
};
pub use error::ReteachError;
pub use probe::{CertificateHead, CustomerSample, ParticipationSample, ParticipationSeen};
pub use subscriptions::{ReteachSubscription, ReteachSubscriptions};

/// Items per page of reteach's list endpoints (its maximum); one user listing request covers
/// this many users.
pub const USERS_PER_PAGE: u64 = customers::PAGE_LIMIT;

/// The academy the credentials belong to (`GET /me`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Academy {
    /// reteach's academy id.
    pub id: String,
    /// Display name of the academy (empty when reteach sends none).
    pub name: String,
}

/// What the operator needs from reteach.
#[async_trait]
pub trait ReteachApi: Send + Sync {
    /// The academy of the credentials; doubles as the credential check.
    async fn me(&self) -> Result<Academy, ReteachError>;

    /// Every customer (pages of 250).
    async fn list_customers(&self) -> Result<Vec<ReteachCustomer>, ReteachError>;

    /// The customer with this `externalId`, if any.
    async fn find_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<ReteachCustomer>, ReteachError>;

    /// The customer with this e-mail address, if any.
    async fn find_by_email(&self, email: &str) -> Result<Option<ReteachCustomer>, ReteachError>;

    /// Find-or-create (`POST /customer`).
    async fn create_customer(
        &self,
        fields: &CustomerFields,
    ) -> Result<ReteachCustomer, ReteachError>;

    /// Sends only the changed fields (`PUT /customer/{id}`).
    async fn update_customer(
        &self,
        id: &str,
        patch: &CustomerPatch,
    ) -> Result<ReteachCustomer, ReteachError>;

    /// Adds tags to a user, creating tags reteach does not know yet: `PUT /customer/{id}/tags`
    /// for one, `PUT /customer/{id}/multiple-tags` with mode `ADD` for several (never `REPLACE`,
    /// which would remove the tags set by hand).
    async fn add_tags(&self, customer_id: &str, names: &[String]) -> Result<(), ReteachError>;

    /// Removes one tag (by id or name) from a user: `DELETE /customer/{id}/tags/{tagIdOrName}`.
    /// A tag the user does not have is a [`ReteachError::NotFound`].
    async fn remove_tag(&self, customer_id: &str, tag: &str) -> Result<(), ReteachError>;

    /// Completed participations as reteach lists them (in no documented order, possibly with a
    /// participation repeated when pages shift), streamed page by page so a backfill is never held
    /// in memory; with `since`, only those completed at or after it.
    fn completed_participations(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> BoxStream<'_, Result<Completion, ReteachError>>;

    /// One participation, re-read (for pending certificates).
    async fn participation(&self, id: &str) -> Result<Option<Completion>, ReteachError>;

    /// Streams the certificate PDF.
    async fn download_certificate(&self, url: &str) -> Result<PdfStream, ReteachError>;

    /// The REST hook management of this client; the default has none.
    fn subscriptions(&self) -> Result<&dyn ReteachSubscriptions, ReteachError> {
        Err(ReteachError::Config(
            "this reteach client cannot manage subscriptions".to_string(),
        ))
    }
}

#[async_trait]
impl ReteachApi for ReteachClient {
    async fn me(&self) -> Result<Academy, ReteachError> {
        self.get_me().await
    }

    async fn list_customers(&self) -> Result<Vec<ReteachCustomer>, ReteachError> {
        self.all_customers().await
    }

    async fn find_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<ReteachCustomer>, ReteachError> {
        self.customer_by_external_id(external_id).await
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<ReteachCustomer>, ReteachError> {
        self.customer_by_email(email).await
    }

    async fn create_customer(
        &self,
        fields: &CustomerFields,
    ) -> Result<ReteachCustomer, ReteachError> {
        self.find_or_create(fields).await
    }

    async fn update_customer(
        &self,
        id: &str,
        patch: &CustomerPatch,
    ) -> Result<ReteachCustomer, ReteachError> {
        self.put_customer(id, patch).await
    }

    async fn add_tags(&self, customer_id: &str, names: &[String]) -> Result<(), ReteachError> {
        self.put_tags(customer_id, names).await
    }

    async fn remove_tag(&self, customer_id: &str, tag: &str) -> Result<(), ReteachError> {
        self.delete_tag(customer_id, tag).await
    }

    fn completed_participations(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> BoxStream<'_, Result<Completion, ReteachError>> {
        self.completions(since)
    }

    async fn participation(&self, id: &str) -> Result<Option<Completion>, ReteachError> {
        self.one_completion(id).await
    }

    async fn download_certificate(&self, url: &str) -> Result<PdfStream, ReteachError> {
        self.download(url).await
    }

    fn subscriptions(&self) -> Result<&dyn ReteachSubscriptions, ReteachError> {
        Ok(self)
    }
}
