//! End-to-end, hostile resources: a resource author who wants the operator to send a credential
//! or a notification somewhere else (issue 25). Notifications go only to the operator's public
//! URL, registered tokens are the operator's own derived values, and a `secretRef` naming an API
//! credentials Secret is refused: no request to either simulator or to any other listener
//! carries a credential value or a foreign URL, and a Warning Event says why. Also: nothing is
//! registered while suspended, and a receiver answers at once after a restart whatever the
//! start-up spread. Run with `scripts/test.sh --test e2e -- webhooks_hostile::`.

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{Days, Utc};
use reteach_personio_operator::controller::pacing::{Pacing, RunSlots, StartupSpread};
use reteach_personio_operator::sim::personio::EmployeeSeed;
use reteach_personio_operator::webhook::Source;
use serde_json::json;
use support::hooks::{start, start_paced, HookWorld, HOURLY};
use support::operator::{World, PERSONIO_SECRET, RETEACH_SECRET, RUN_WAIT};
use support::poll_until;

/// The key names of the API credentials Secrets.
const CREDENTIAL_KEYS: [&str; 3] = ["clientId", "clientSecret", "clientCode"];

/// A listener that counts every connection: where a hostile resource wants its notifications.
struct ForeignListener {
    url: String,
    connections: Arc<AtomicUsize>,
}

async fn foreign_listener() -> ForeignListener {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    ForeignListener { url, connections }
}

/// Every credential value of both simulators.
fn credential_values(world: &World) -> Vec<String> {
    let (personio_id, personio_secret) = world.personio.sim.credentials();
    let reteach = world.reteach.sim.credentials();
    vec![
        personio_id,
        personio_secret,
        reteach.client_id,
        reteach.client_secret,
        reteach.client_code,
    ]
}

/// Every (tokenKey, authorizationKey) pair of credential keys.
fn key_pairs() -> Vec<(&'static str, &'static str)> {
    CREDENTIAL_KEYS
        .iter()
        .flat_map(|token| CREDENTIAL_KEYS.iter().map(move |auth| (*token, *auth)))
        .collect()
}

/// Asserts that nothing the simulators hold or saw carries a credential or a foreign URL: the
/// Personio webhooks (URL, token, signing secret), the reteach subscriptions, every request
/// line both simulators received, and every delivery they made.
fn assert_nothing_leaked(hooks: &HookWorld, foreign: &ForeignListener) {
    let world = &hooks.world;
    let credentials = credential_values(world);
    let leaks = |what: &str, text: &str| {
        for credential in &credentials {
            assert!(
                !text.contains(credential.as_str()),
                "{what} carries a credential: {text}"
            );
        }
        assert!(
            !text.contains(&foreign.url),
            "{what} names the foreign URL: {text}"
        );
    };
    for webhook in world.personio.sim.webhooks() {
        leaks("a Personio webhook URL", &webhook.url);
        assert!(
            webhook
                .url
                .starts_with(&format!("{}/personio/", hooks.receiver)),
            "{}",
            webhook.url
        );
        leaks(
            "a Personio webhook token",
            webhook.token.as_deref().unwrap_or_default(),
        );
        for secret in &webhook.signing_secrets {
            leaks("a Personio signing secret", secret);
        }
    }
    for subscription in world.reteach.sim.subscriptions() {
        leaks("a reteach subscription", &subscription.target);
        assert!(subscription
            .target
            .starts_with(&format!("{}/reteach/", hooks.receiver)));
    }
    let requests = world
        .personio
        .sim
        .control()
        .requests()
        .into_iter()
        .chain(world.reteach.sim.control().requests());
    for request in requests {
        let line = format!(
            "{} {}?{}",
            request.method,
            request.path,
            request.query.unwrap_or_default()
        );
        leaks("a request to a simulator", &line);
    }
    let deliveries = world
        .personio
        .sim
        .webhook_deliveries()
        .into_iter()
        .chain(world.reteach.sim.webhook_deliveries());
    for delivery in deliveries {
        leaks("a delivery", &delivery.target);
        assert!(
            delivery.target.starts_with(&hooks.receiver),
            "{}",
            delivery.target
        );
    }
    assert_eq!(
        foreign.connections.load(Ordering::SeqCst),
        0,
        "the foreign listener was contacted"
    );
}

#[tokio::test]
async fn a_foreign_url_and_a_credentials_secret_ref_register_only_the_operators_own_target_and_tokens(
) {
    let hooks = start("hostile-register").await;
    let world = &hooks.world;
    let foreign = foreign_listener().await;
    // Every combination of credential keys as tokenKey/authorizationKey, from both Secrets, with
    // the operator asked to register a foreign URL.
    let pairs = key_pairs();
    for (index, (token_key, authorization_key)) in pairs.iter().enumerate() {
        let secret = [PERSONIO_SECRET, RETEACH_SECRET][index % 2];
        world
            .apply(world.employee_sync(
                &format!("register-{index}"),
                json!({"interval": HOURLY, "webhook": {
                    "register": true,
                    "url": foreign.url,
                    "secretRef": {"name": secret, "tokenKey": token_key,
                                  "authorizationKey": authorization_key},
                }}),
            ))
            .await;
    }
    world
        .apply(world.certificate_sync(
            "certificates",
            "register-0",
            json!({"interval": HOURLY, "webhook": {
                "register": true,
                "url": foreign.url,
                "secretRef": {"name": RETEACH_SECRET, "tokenKey": "clientSecret"},
            }}),
        ))
        .await;
    let sim = world.personio.sim.clone();
    let count = pairs.len();
    poll_until("every Personio webhook registered", RUN_WAIT, || {
        let sim = sim.clone();
        async move {
            let signed = sim
                .webhooks()
                .iter()
                .filter(|w| !w.signing_secrets.is_empty())
                .count();
            (signed == count).then_some(())
        }
    })
    .await;
    let reteach = world.reteach.sim.clone();
    poll_until("both reteach subscriptions", RUN_WAIT, || {
        let reteach = reteach.clone();
        async move { (reteach.subscriptions().len() == 2).then_some(()) }
    })
    .await;
    for index in 0..count {
        let name = format!("register-{index}");
        let derived = hooks.derived(Source::Personio, &name);
        let target = hooks.target(Source::Personio, &name);
        let webhook = sim
            .webhooks()
            .into_iter()
            .find(|w| w.url == target)
            .unwrap_or_else(|| panic!("no webhook for {name}"));
        assert_eq!(
            webhook.token.as_deref(),
            Some(derived.authorization.as_str())
        );
        world
            .wait_event(&name, "WebhookUrlIgnored", &hooks.receiver)
            .await;
    }
    world
        .wait_event(
            "certificates",
            "WebhookUrlIgnored",
            "deprecated and ignored",
        )
        .await;

    // Personio and reteach deliver: only to the operator's receiver.
    let hired = Utc::now().date_naive() - Days::new(10);
    world.personio.sim.add_employee(
        EmployeeSeed::new("Ben", "Brandnew", "ben@acme.example").with_hire_date(hired),
    );
    poll_until("a delivery to every webhook", RUN_WAIT, || {
        let sim = sim.clone();
        async move { (sim.webhook_deliveries().len() >= count).then_some(()) }
    })
    .await;
    assert!(world
        .personio
        .sim
        .webhook_deliveries()
        .iter()
        .all(|d| d.status == Some(202)));
    assert_nothing_leaked(&hooks, &foreign);
}

#[tokio::test]
async fn a_secret_ref_naming_a_credentials_secret_is_refused_for_every_key_combination() {
    let hooks = start("hostile-manual").await;
    let world = &hooks.world;
    let foreign = foreign_listener().await;
    let pairs = key_pairs();
    let mut names = Vec::new();
    for (index, (token_key, authorization_key)) in pairs.iter().enumerate() {
        for secret in [PERSONIO_SECRET, RETEACH_SECRET] {
            let name = format!("manual-{secret}-{index}");
            // Suspended: only the receiver is at stake here, no run needed.
            world
                .apply(world.employee_sync(
                    &name,
                    json!({"interval": HOURLY, "suspend": true, "webhook": {
                        "url": foreign.url,
                        "secretRef": {"name": secret, "tokenKey": token_key,
                                      "authorizationKey": authorization_key},
                    }}),
                ))
                .await;
            names.push(name);
        }
    }
    world
        .apply(world.employee_sync("personio", json!({"interval": HOURLY, "suspend": true})))
        .await;
    world
        .apply(world.certificate_sync(
            "certificates",
            "personio",
            json!({"interval": HOURLY, "suspend": true, "webhook": {
                "secretRef": {"name": RETEACH_SECRET, "tokenKey": "clientCode"},
            }}),
        ))
        .await;
    for name in &names {
        let secret = if name.contains(PERSONIO_SECRET) {
            PERSONIO_SECRET
        } else {
            RETEACH_SECRET
        };
        let event = world
            .wait_event(name, "WebhookUnavailable", "holds API credentials")
            .await;
        let note = event.note.unwrap_or_default();
        assert!(
            note.contains(&format!("{}/{secret}", world.namespace)),
            "{note}"
        );
        assert!(note.contains("register: true"), "{note}");
    }
    world
        .wait_event(
            "certificates",
            "WebhookUnavailable",
            "through its EmployeeSync",
        )
        .await;

    // The receivers stay closed: a credential as path token opens nothing.
    let http = reqwest::Client::new();
    for credential in credential_values(world) {
        for name in names.iter().take(4) {
            let answer = http
                .post(format!(
                    "{}/personio/{}/{name}/{credential}",
                    hooks.receiver, world.namespace
                ))
                .header("Authorization", &credential)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status().as_u16(), 404);
        }
    }
    assert!(world.personio.sim.webhooks().is_empty());
    assert!(world.reteach.sim.subscriptions().is_empty());
    assert_nothing_leaked(&hooks, &foreign);
}

#[tokio::test]
async fn nothing_is_registered_while_suspended() {
    let hooks = start("hostile-suspended").await;
    let world = &hooks.world;
    let spec = |suspend: bool| json!({"interval": HOURLY, "suspend": suspend, "webhook": {"register": true}});
    world
        .apply(world.employee_sync("personio", spec(true)))
        .await;
    world
        .wait_employee_sync("personio", "the suspended status", |s| {
            s.common
                .conditions
                .iter()
                .any(|c| c.message.contains("spec.suspend"))
        })
        .await;
    // Several refresh periods (2 s) pass: still nothing upstream.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(world.personio.sim.webhooks().is_empty());
    assert_eq!(world.personio.sim.control().count("POST /v2/webhooks"), 0);
    world
        .apply(world.employee_sync("personio", spec(false)))
        .await;
    let target = hooks.target(Source::Personio, "personio");
    let sim = world.personio.sim.clone();
    poll_until("registered once resumed", RUN_WAIT, || {
        let sim = sim.clone();
        let target = target.clone();
        async move { sim.webhooks().iter().any(|w| w.url == target).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn a_registered_receiver_answers_at_once_after_a_restart_whatever_the_startup_spread() {
    // A restart: resources that ran before, overdue now, and an operator whose start-up spread
    // holds every one of them for at least 10 minutes.
    let pacing = Pacing {
        spread: StartupSpread {
            started: Utc::now() + chrono::Duration::minutes(10),
            limit: Duration::from_secs(3600),
        },
        slots: RunSlots::new(0),
    };
    let start = Arc::new(tokio::sync::Notify::new());
    let hooks = start_paced("hostile-restart", |_| {}, Some(pacing), Some(start.clone())).await;
    let world = &hooks.world;
    world
        .apply(world.employee_sync("personio", json!({"interval": HOURLY})))
        .await;
    world
        .apply(world.certificate_sync(
            "certificates",
            "personio",
            json!({"interval": HOURLY, "webhook": {"register": true}}),
        ))
        .await;
    let ran_before = json!({"status": {
        "observedGeneration": 1,
        "lastSyncTime": (Utc::now() - chrono::Duration::hours(2)).to_rfc3339(),
        "nextSyncTime": (Utc::now() - chrono::Duration::hours(1)).to_rfc3339(),
    }});
    let patch = kube::api::Patch::Merge(&ran_before);
    let params = kube::api::PatchParams::default();
    world
        .employee_syncs()
        .patch_status("personio", &params, &patch)
        .await
        .unwrap();
    world
        .certificate_syncs()
        .patch_status("certificates", &params, &patch)
        .await
        .unwrap();
    start.notify_one();

    let target = hooks.target(Source::Reteach, "certificates");
    let http = reqwest::Client::new();
    let answered = poll_until(
        "the receiver to answer",
        Duration::from_secs(10),
        || async {
            let status = http
                .post(&target)
                .json(&json!({"event": "participation.completed", "n": Utc::now().to_rfc3339()}))
                .send()
                .await
                .ok()?
                .status()
                .as_u16();
            (status == 202).then_some(status)
        },
    )
    .await;
    assert_eq!(answered, 202);
    assert!(
        world.reteach.sim.control().requests().is_empty()
            && world.personio.sim.control().requests().is_empty(),
        "opened from the watch: no run and no registration happened"
    );
}

#[tokio::test]
async fn an_old_registration_under_a_resources_own_url_is_replaced_by_the_operators() {
    // Before issue 25: the resource named a foreign URL and its credentials Secret, and the
    // operator registered that URL with the client secret as the token.
    let hooks = start("hostile-migration").await;
    let world = &hooks.world;
    let foreign = foreign_listener().await;
    let (_, client_secret) = world.personio.sim.credentials();
    let namespace = world.namespace.clone();
    let old = world.personio.sim.add_webhook(
        &format!(
            "{}/personio/{namespace}/personio/{client_secret}",
            foreign.url
        ),
        &client_secret,
        &["person.created"],
    );
    let mut sync = world.employee_sync(
        "personio",
        json!({"interval": HOURLY, "webhook": {
            "register": true,
            "url": foreign.url,
            "secretRef": {"name": PERSONIO_SECRET, "tokenKey": "clientId",
                          "authorizationKey": "clientSecret"},
        }}),
    );
    sync["metadata"]["finalizers"] = json!(["sync.reteach.io/personio-webhook"]);
    sync["metadata"]["annotations"] =
        json!({"sync.reteach.io/webhook-registered-url": foreign.url});
    world.apply(sync).await;

    let target = hooks.target(Source::Personio, "personio");
    let sim = world.personio.sim.clone();
    poll_until("only the operator's own webhook left", RUN_WAIT, || {
        let sim = sim.clone();
        let target = target.clone();
        async move {
            let webhooks = sim.webhooks();
            let only_ours = webhooks.len() == 1
                && webhooks[0].url == target
                && !webhooks[0].signing_secrets.is_empty();
            only_ours.then_some(())
        }
    })
    .await;
    assert!(sim.webhooks().iter().all(|w| w.id != old));
    let annotations = world
        .employee_sync_now("personio")
        .await
        .metadata
        .annotations
        .unwrap_or_default();
    assert_eq!(
        annotations.get("sync.reteach.io/webhook-registered-url"),
        Some(&hooks.receiver)
    );
    world
        .wait_event("personio", "WebhookUrlIgnored", &hooks.receiver)
        .await;
    assert_eq!(foreign.connections.load(Ordering::SeqCst), 0);
}
