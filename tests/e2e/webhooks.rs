//! End-to-end: webhook notifications from the simulators wake the syncs on a real kube-apiserver.
//! The resources poll only every hour, so a change that arrives within the test's wait can only
//! have come through the receiver. Run with `scripts/test.sh --test e2e -- webhooks::`.

use crate::support;

use std::time::Instant;

use chrono::{Days, Utc};
use reteach_personio_operator::sim::personio::EmployeeSeed;
use reteach_personio_operator::webhook::{ResourceKey, Source};
use serde_json::json;
use support::hooks::{
    start, webhook_count, HookWorld, HOOK_SECRET, HOURLY, PERSONIO_AUTHORIZATION, TOKEN,
};
use support::operator::{is_ready, World, RUN_WAIT};
use support::poll_until;

#[tokio::test]
async fn a_personio_notification_brings_a_new_hire_into_reteach_without_waiting_for_the_interval() {
    let HookWorld {
        world,
        receiver,
        ctx,
    } = start("hooks-personio").await;
    let hired = Utc::now().date_naive() - Days::new(10);
    world.personio.sim.add_employee(
        EmployeeSeed::new("Anna", "Early", "anna@acme.example").with_hire_date(hired),
    );
    world
        .apply(world.employee_sync(
            "personio",
            json!({"interval": HOURLY, "webhook": {"secretRef": {"name": HOOK_SECRET}}}),
        ))
        .await;
    world
        .wait_employee_sync("personio", "the first run", |s| {
            is_ready(&s.common.conditions) && s.last_run.as_ref().is_some_and(|r| r.created == 1)
        })
        .await;
    let path = format!("{receiver}/personio/{}/personio/{TOKEN}", world.namespace);
    world.personio.sim.add_webhook(
        &path,
        PERSONIO_AUTHORIZATION,
        &["person.created", "person.updated", "employment.updated"],
    );

    // Refused requests are counted and wake nothing.
    let key = ResourceKey::new(Source::Personio, &world.namespace, "personio");
    let http = reqwest::Client::new();
    let event = json!({
        "company_id": "7033", "event_name": "person.updated",
        "occurred_at": Utc::now().to_rfc3339(), "payload": {"id": "1"}, "meta": {}
    });
    let forged = http
        .post(&path)
        .header("Authorization", "Bearer guessed")
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    let guessed = format!(
        "{receiver}/personio/{}/personio/{}",
        world.namespace,
        "g".repeat(40)
    );
    let guessed = http
        .post(&guessed)
        .header("Authorization", PERSONIO_AUTHORIZATION)
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(guessed.status().as_u16(), 404);
    assert!(!ctx.webhooks.triggers.is_pending(&key));
    assert_eq!(webhook_count(&ctx, "personio", "unauthenticated"), 2);

    // HR enters a new hire: Personio notifies, the EmployeeSync runs at once.
    let changed = Instant::now();
    let ben = world.personio.sim.add_employee(
        EmployeeSeed::new("Ben", "Brandnew", "ben@acme.example").with_hire_date(hired),
    );
    poll_until("Ben in reteach", RUN_WAIT, || async {
        world.reteach.sim.customer(&ben.to_string())
    })
    .await;
    // Measured, not asserted (BENCHMARKS.md has the comparison with polling).
    eprintln!(
        "new hire in reteach {:?} after the change",
        changed.elapsed()
    );
    let deliveries = world.personio.sim.webhook_deliveries();
    assert!(
        deliveries.iter().any(|d| d.status == Some(202)),
        "{deliveries:?}"
    );
    let synced = world.employee_sync_now("personio").await;
    let status = synced.status.expect("status");
    assert_eq!(
        status.last_run.as_ref().map(|r| r.mode),
        Some(reteach_personio_operator::api::SyncMode::Incremental),
        "a notified run is incremental"
    );

    // The same delivery again is a replay: refused, no run.
    let replay = deliveries.len();
    let body = json!({
        "company_id": "7033", "event_name": "employment.updated",
        "occurred_at": Utc::now().to_rfc3339(), "payload": {"id": ben.to_string()}, "meta": {}
    });
    let send = || {
        http.post(&path)
            .header("Authorization", PERSONIO_AUTHORIZATION)
            .json(&body)
            .send()
    };
    assert_eq!(send().await.unwrap().status().as_u16(), 202);
    assert_eq!(send().await.unwrap().status().as_u16(), 409);
    assert_eq!(webhook_count(&ctx, "personio", "replayed"), 1);
    assert!(replay >= 1);
}

#[tokio::test]
async fn a_webhook_secret_that_cannot_be_used_closes_the_receiver_with_a_warning_and_polling_goes_on(
) {
    let HookWorld {
        world, receiver, ..
    } = start("hooks-bad-secret").await;
    world
        .apply_secret("short", json!({"token": "too-short", "authorization": "x"}))
        .await;
    for (name, secret) in [("missing", "no-such-secret"), ("short", "short")] {
        world
            .apply(world.employee_sync(
                name,
                json!({"interval": HOURLY, "webhook": {"secretRef": {"name": secret}}}),
            ))
            .await;
    }
    world
        .wait_event("missing", "WebhookUnavailable", "no-such-secret not found")
        .await;
    world
        .wait_event("short", "WebhookUnavailable", "at least 32 characters")
        .await;
    // The syncs themselves run as usual.
    for name in ["missing", "short"] {
        world
            .wait_employee_sync(name, "a successful run", |s| is_ready(&s.common.conditions))
            .await;
    }
    let refused = reqwest::Client::new()
        .post(format!(
            "{receiver}/personio/{}/short/too-short",
            world.namespace
        ))
        .header("Authorization", "x")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status().as_u16(),
        404,
        "a closed receiver accepts nothing"
    );
}

#[tokio::test]
async fn reteach_hooks_are_registered_repaired_deliver_a_certificate_and_go_with_the_resource() {
    let hooks = start("hooks-reteach").await;
    let (world, receiver) = (&hooks.world, hooks.receiver.clone());
    let hired = Utc::now().date_naive() - Days::new(10);
    let anna = world.personio.sim.add_employee(
        EmployeeSeed::new("Anna", "Active", "anna@acme.example").with_hire_date(hired),
    );
    world
        .apply(world.employee_sync("personio", json!({"interval": HOURLY})))
        .await;
    world
        .apply(world.certificate_sync(
            "certificates",
            "personio",
            json!({
                "interval": HOURLY,
                "webhook": {"register": true},
            }),
        ))
        .await;
    let target = hooks.target(Source::Reteach, "certificates");
    assert!(target.starts_with(&format!("{receiver}/reteach/")));
    let registered = |events: usize| {
        let sim = world.reteach.sim.clone();
        let target = target.clone();
        move || {
            let sim = sim.clone();
            let target = target.clone();
            async move {
                let ours: Vec<_> = sim
                    .subscriptions()
                    .into_iter()
                    .filter(|s| s.target == target)
                    .collect();
                (ours.len() == events).then_some(ours)
            }
        }
    };
    let subscriptions = poll_until("both reteach subscriptions", RUN_WAIT, registered(2)).await;
    let mut events: Vec<String> = subscriptions.iter().map(|s| s.event.clone()).collect();
    events.sort();
    assert_eq!(events, ["certificate.processed", "participation.completed"]);
    let synced = world
        .wait_certificate_sync("certificates", "the first (empty) run", |s| {
            is_ready(&s.common.conditions)
        })
        .await;
    assert!(synced
        .metadata
        .finalizers
        .unwrap_or_default()
        .contains(&"sync.reteach.io/reteach-subscriptions".to_string()));

    // An admin deletes one subscription in reteach: the operator re-creates it.
    assert!(world.reteach.sim.remove_subscription(&subscriptions[0].id));
    poll_until(
        "the deleted subscription re-created",
        RUN_WAIT,
        registered(2),
    )
    .await;

    // Anna finishes a course: reteach notifies, the certificate is in Personio at once.
    let changed = Instant::now();
    world
        .reteach
        .sim
        .add_completion(&anna.to_string(), "Safety", Utc::now(), true)
        .expect("Anna is in reteach");
    poll_until("the certificate in Personio", RUN_WAIT, || async {
        let documents = world.personio.sim.documents();
        documents.iter().any(|d| d.owner_id == anna).then_some(())
    })
    .await;
    eprintln!(
        "certificate in Personio {:?} after the completion",
        changed.elapsed()
    );
    assert!(world
        .reteach
        .sim
        .webhook_deliveries()
        .iter()
        .any(|d| d.status == Some(202)));

    // Deleting the resource deletes its subscriptions, then the resource goes.
    world
        .certificate_syncs()
        .delete("certificates", &Default::default())
        .await
        .unwrap();
    poll_until("subscriptions deleted", RUN_WAIT, registered(0)).await;
    let api = world.certificate_syncs();
    poll_until("the CertificateSync gone", RUN_WAIT, || async {
        api.get_opt("certificates")
            .await
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await;
}

/// Applies the EmployeeSync `personio`, hourly, with its webhook registered by the operator
/// (`extra` merged into `spec.webhook`).
async fn apply_registering_employee_sync(world: &World, extra: serde_json::Value) {
    let mut webhook = json!({"register": true});
    if let (Some(webhook), Some(extra)) = (webhook.as_object_mut(), extra.as_object()) {
        webhook.extend(extra.clone());
    }
    world
        .apply(world.employee_sync("personio", json!({"interval": HOURLY, "webhook": webhook})))
        .await;
}

#[tokio::test]
async fn an_employee_sync_registers_its_personio_webhook_and_removes_it_when_deleted() {
    let hooks = start("hooks-personio-register").await;
    let world = &hooks.world;
    apply_registering_employee_sync(world, json!({})).await;
    let target = hooks.target(Source::Personio, "personio");
    let derived = hooks.derived(Source::Personio, "personio");
    let sim = world.personio.sim.clone();
    let registered = poll_until("the Personio webhook registered", RUN_WAIT, || {
        let sim = sim.clone();
        let target = target.clone();
        async move {
            let ours: Vec<_> = sim
                .webhooks()
                .into_iter()
                .filter(|w| w.url == target && !w.signing_secrets.is_empty())
                .collect();
            (ours.len() == 1).then(|| ours[0].clone())
        }
    })
    .await;
    assert_eq!(registered.status, "ENABLED");
    assert_eq!(registered.auth_type, "TOKEN");
    assert_eq!(
        registered.token.as_deref(),
        Some(derived.authorization.as_str()),
        "the operator's own derived value, not a Secret's"
    );
    assert_eq!(
        registered.signing_secrets.first().map(String::as_str),
        Some(derived.signing_secret.as_str())
    );
    assert!(registered
        .enabled_events
        .iter()
        .any(|e| e == "person.created"));
    // Fired on the dates themselves: a lock or unlock happens on the day (issue 30).
    for dated in ["employment.started", "employment.terminated"] {
        assert!(
            registered.enabled_events.iter().any(|e| e == dated),
            "{dated} registered"
        );
    }
    world
        .wait_employee_sync("personio", "the first run", |s| {
            is_ready(&s.common.conditions)
        })
        .await;

    let hired = Utc::now().date_naive() - Days::new(10);
    let ben = world.personio.sim.add_employee(
        EmployeeSeed::new("Ben", "Brandnew", "ben@acme.example").with_hire_date(hired),
    );
    poll_until("Ben in reteach", RUN_WAIT, || async {
        world.reteach.sim.customer(&ben.to_string())
    })
    .await;

    // A resource that still names a URL of its own: ignored, with a Warning saying where
    // notifications go; the registration stays where it was.
    apply_registering_employee_sync(world, json!({"url": "https://hooks.elsewhere.example"})).await;
    world
        .wait_event("personio", "WebhookUrlIgnored", &hooks.receiver)
        .await;
    let urls: Vec<String> = sim.webhooks().into_iter().map(|w| w.url).collect();
    assert_eq!(urls, [target]);

    world
        .employee_syncs()
        .delete("personio", &Default::default())
        .await
        .unwrap();
    poll_until("the Personio webhook deleted", RUN_WAIT, || {
        let sim = sim.clone();
        async move { sim.webhooks().is_empty().then_some(()) }
    })
    .await;
    let api = world.employee_syncs();
    poll_until("the EmployeeSync gone", RUN_WAIT, || async {
        api.get_opt("personio")
            .await
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn removing_spec_webhook_deletes_the_registration_and_the_finalizer() {
    let HookWorld { world, .. } = start("hooks-personio-retire").await;
    apply_registering_employee_sync(&world, json!({})).await;
    let sim = world.personio.sim.clone();
    poll_until("the Personio webhook registered", RUN_WAIT, || {
        let sim = sim.clone();
        async move { (sim.webhooks().len() == 1).then_some(()) }
    })
    .await;
    let api = world.employee_syncs();
    let registered = api.get("personio").await.expect("the EmployeeSync");
    assert!(registered
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == "sync.reteach.io/personio-webhook"));

    // The webhook block is dropped (`kubectl edit`, a client-side apply): nothing of ours may
    // stay behind upstream or on the object.
    api.patch(
        "personio",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"spec": {"webhook": null}})),
    )
    .await
    .expect("remove spec.webhook");
    poll_until("the Personio webhook deleted", RUN_WAIT, || {
        let sim = sim.clone();
        async move { sim.webhooks().is_empty().then_some(()) }
    })
    .await;
    poll_until(
        "the finalizer and the recorded URL gone",
        RUN_WAIT,
        || async {
            let object = api.get("personio").await.ok()?;
            let finalizers = object.metadata.finalizers.unwrap_or_default();
            let annotations = object.metadata.annotations.unwrap_or_default();
            (finalizers.is_empty()
                && !annotations.contains_key("sync.reteach.io/webhook-registered-url"))
            .then_some(())
        },
    )
    .await;
}
