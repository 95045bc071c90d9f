//! A world whose operator also serves the webhook receiver on a loopback port, with the
//! receiver's URL as the operator's public webhook URL and a fixed operator key, so tests can
//! compute every derived token.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reteach_personio_operator::controller::http::Readiness;
use reteach_personio_operator::controller::pacing::Pacing;
use reteach_personio_operator::controller::{Context, Tunables};
use reteach_personio_operator::webhook::{
    DerivedSecrets, KeyRing, OperatorKey, PublicUrl, ResourceKey, Source,
};
use serde_json::json;

use super::operator::{test_tunables, World, NO_RECHECK, RUN_WAIT};
use super::poll_until;

/// Path token of the manual webhook Secret [`HOOK_SECRET`].
pub const TOKEN: &str = "tok-0123456789abcdefghijklmnopqrstuvwxyz";
/// `Authorization` value of the manual webhook Secret.
pub const PERSONIO_AUTHORIZATION: &str = "Bearer from-personio-0123456789";
/// A manual webhook Secret (labelled), with `token` and `authorization`.
pub const HOOK_SECRET: &str = "webhook";
/// Polling so rare that nothing in these tests comes from it.
pub const HOURLY: &str = "1h";

/// The operator's webhook key in these tests.
pub fn test_key_ring() -> KeyRing {
    KeyRing {
        current: OperatorKey::new(vec![42; 32]).unwrap(),
        previous: None,
    }
}

/// A world with the webhook receiver.
pub struct HookWorld {
    pub world: World,
    /// The receiver's base URL (also the operator's public webhook URL).
    pub receiver: String,
    pub ctx: Arc<Context>,
}

impl HookWorld {
    /// The secrets the operator derives for a resource of this world.
    pub fn derived(&self, source: Source, name: &str) -> DerivedSecrets {
        test_key_ring().secrets(&ResourceKey::new(source, &self.world.namespace, name))
    }

    /// The target the operator registers for a resource of this world.
    pub fn target(&self, source: Source, name: &str) -> String {
        let key = ResourceKey::new(source, &self.world.namespace, name);
        key.target(&self.receiver, &self.derived(source, name).token)
    }
}

/// Starts a [`HookWorld`] (both API Secrets and [`HOOK_SECRET`] applied); `tune` adjusts the
/// operator's settings.
pub async fn start_with(prefix: &str, tune: impl FnOnce(&mut Tunables)) -> HookWorld {
    start_paced(prefix, tune, None, None).await
}

/// [`start_with`], with the operator's start-up spread and run slots (`pacing`, `None`: off),
/// and its controllers started only once `start` is notified (`None`: at once); the receiver
/// listens from the beginning.
pub async fn start_paced(
    prefix: &str,
    tune: impl FnOnce(&mut Tunables),
    pacing: Option<Pacing>,
    start: Option<Arc<tokio::sync::Notify>>,
) -> HookWorld {
    // Bound here and handed over, so that no simulator started meanwhile can take the port.
    let socket =
        std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("no free port: {e}"));
    let addr = socket
        .local_addr()
        .unwrap_or_else(|e| panic!("no local address: {e}"));
    let receiver = format!("http://{addr}");
    let mut tunables = Tunables {
        webhooks_enabled: true,
        webhook_min_gap: Duration::from_secs(1),
        webhook_refresh: Duration::from_secs(2),
        webhook_public_url: Some(PublicUrl::parse(&receiver, true).unwrap()),
        webhook_keys: Some(test_key_ring()),
        ..test_tunables(NO_RECHECK)
    };
    tune(&mut tunables);
    let slot: Arc<Mutex<Option<Arc<Context>>>> = Arc::default();
    let ctx_slot = slot.clone();
    let world = World::start_driving(prefix, tunables, move |operator, _| {
        let operator = match pacing {
            Some(pacing) => operator.with_pacing(pacing),
            None => operator,
        };
        *ctx_slot.lock().unwrap() = Some(operator.context());
        tokio::spawn(operator.serve_webhooks_on(socket));
        Box::pin(async move {
            if let Some(start) = start {
                start.notified().await;
            }
            operator.run(Readiness::default()).await
        })
    })
    .await;
    let health = format!("{receiver}/healthz");
    poll_until("the webhook receiver to listen", RUN_WAIT, || async {
        reqwest::get(&health)
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await;
    world.apply_secrets().await;
    world
        .apply_secret(
            HOOK_SECRET,
            json!({"token": TOKEN, "authorization": PERSONIO_AUTHORIZATION}),
        )
        .await;
    let ctx = slot.lock().unwrap().clone().expect("operator context");
    HookWorld {
        world,
        receiver,
        ctx,
    }
}

/// [`start_with`] with the default test settings.
pub async fn start(prefix: &str) -> HookWorld {
    start_with(prefix, |_| {}).await
}

/// `reteach_personio_webhook_requests_total{source, outcome}`.
pub fn webhook_count(ctx: &Context, source: &str, outcome: &str) -> u64 {
    let needle = format!(
        "reteach_personio_webhook_requests_total{{source=\"{source}\",outcome=\"{outcome}\"}} "
    );
    ctx.metrics
        .encode()
        .lines()
        .find_map(|line| line.strip_prefix(needle.as_str()))
        .map_or(0, |value| value.trim().parse().unwrap())
}
