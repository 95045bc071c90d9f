//! REST hook subscriptions (`GET/POST /subscription`, `DELETE /subscription/{id}`; lms README
//! §1.8): the operator keeps a CertificateSync's hooks registered when it is asked to.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::client::{found, ReteachClient};
use super::wire;
use super::ReteachError;

const LIST: &str = "GET /subscription";
const CREATE: &str = "POST /subscription";
const DELETE: &str = "DELETE /subscription/{id}";

/// One REST hook subscription as reteach lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReteachSubscription {
    /// reteach's id.
    pub id: String,
    /// Where reteach posts.
    pub target: String,
    /// The event.
    pub event: String,
}

fn subscription(value: &Value) -> Option<ReteachSubscription> {
    Some(ReteachSubscription {
        id: wire::text(value, "id")?,
        target: wire::text(value, "target")?,
        event: wire::text(value, "event")?,
    })
}

/// REST hook management (`/subscription`), offered by the HTTP client through
/// [`super::ReteachApi::subscriptions`].
#[async_trait]
pub trait ReteachSubscriptions: Send + Sync {
    /// The academy's REST hook subscriptions (`GET /subscription`).
    async fn list_subscriptions(&self) -> Result<Vec<ReteachSubscription>, ReteachError>;

    /// Subscribes `target` to `event` (`POST /subscription`).
    async fn create_subscription(&self, target: &str, event: &str) -> Result<(), ReteachError>;

    /// Deletes a subscription (`DELETE /subscription/{id}`); an unknown id counts as deleted.
    async fn delete_subscription(&self, id: &str) -> Result<(), ReteachError>;
}

#[async_trait]
impl ReteachSubscriptions for ReteachClient {
    async fn list_subscriptions(&self) -> Result<Vec<ReteachSubscription>, ReteachError> {
        let url = self.url(&["subscription"])?;
        let value = self
            .call_json(LIST, &[], || self.http.get(url.clone()))
            .await?;
        // The spec answers a bare array; accept a `{results: [...]}` page as well.
        let items = value
            .as_array()
            .or_else(|| value.get("results").and_then(Value::as_array))
            .ok_or_else(|| ReteachError::malformed(LIST, "no array of subscriptions"))?;
        Ok(items.iter().filter_map(subscription).collect())
    }

    async fn create_subscription(&self, target: &str, event: &str) -> Result<(), ReteachError> {
        let url = self.url(&["subscription"])?;
        let body = json!({ "target": target, "event": event });
        self.call_json(CREATE, &[target], || {
            self.http.post(url.clone()).json(&body)
        })
        .await?;
        Ok(())
    }

    async fn delete_subscription(&self, id: &str) -> Result<(), ReteachError> {
        let url = self.url(&["subscription", id])?;
        // Already gone counts as deleted.
        found(
            self.call_json(DELETE, &[], || self.http.delete(url.clone()))
                .await,
        )?;
        Ok(())
    }
}
