//! Outgoing notifications of both simulators: JSON `POST`s sent in the background, as the real
//! upstreams send them, with every delivery recorded for tests and the benchmark.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// How long a receiver may take to answer: Personio counts a delivery as failed after 3 s.
const ACKNOWLEDGE_WITHIN: Duration = Duration::from_secs(3);

/// One delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Where it went.
    pub target: String,
    /// The event name.
    pub event: String,
    /// The receiver's status code; `None` when it did not answer in time.
    pub status: Option<u16>,
    /// When the change happened (simulator clock).
    pub occurred_at: DateTime<Utc>,
}

/// The sender; clones share the log.
#[derive(Clone, Default)]
pub struct HookSender {
    log: Arc<Mutex<Vec<Delivery>>>,
}

/// One notification to send.
pub struct Outgoing {
    /// Target URL.
    pub target: String,
    /// Headers besides `Content-Type: application/json`.
    pub headers: Vec<(String, String)>,
    /// Event name (for the log).
    pub event: String,
    /// The JSON body.
    pub body: Value,
    /// When the change happened.
    pub occurred_at: DateTime<Utc>,
    /// Requests per attempt: Personio sends a second one at once when the first fails
    /// (its "fast attempt"); its later retries over days are not simulated.
    pub tries: usize,
}

impl std::fmt::Debug for HookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookSender").finish_non_exhaustive()
    }
}

impl HookSender {
    /// Sends in the background (needs a Tokio runtime; without one, nothing is sent).
    pub fn send(&self, outgoing: Outgoing) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("no runtime: webhook not sent");
            return;
        };
        let log = self.log.clone();
        runtime.spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(ACKNOWLEDGE_WITHIN)
                .redirect(reqwest::redirect::Policy::none())
                .build();
            let Ok(client) = client else {
                return;
            };
            // The bytes a signature was computed over (`serde_json::to_vec`, as signed).
            let body = serde_json::to_vec(&outgoing.body).unwrap_or_default();
            let mut status = None;
            for _ in 0..outgoing.tries.max(1) {
                let mut request = client
                    .post(&outgoing.target)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
                for (name, value) in &outgoing.headers {
                    request = request.header(name, value);
                }
                status = request.send().await.ok().map(|r| r.status().as_u16());
                // Retried: no answer, or a 5xx other than 501.
                let retry = status.is_none_or(|s| s >= 500 && s != 501);
                if !retry {
                    break;
                }
            }
            let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
            log.push(Delivery {
                target: outgoing.target,
                event: outgoing.event,
                status,
                occurred_at: outgoing.occurred_at,
            });
        });
    }

    /// Every delivery finished so far, in order of completion.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
