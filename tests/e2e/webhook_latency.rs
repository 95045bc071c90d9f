//! The latency benchmark of issue 19, on a real kube-apiserver with the simulators: time from a
//! change in one simulator to the change in the other, with webhook notifications versus polling
//! only. The figures are printed and copied into BENCHMARKS.md ("Webhook latency"); the test only
//! asserts that every change arrived. Run with
//! `scripts/test.sh --test e2e -- webhook_latency:: --nocapture`.

use crate::support;

use std::time::{Duration, Instant};

use chrono::{Days, Utc};
use reteach_personio_operator::controller::http::Readiness;
use reteach_personio_operator::controller::Tunables;
use reteach_personio_operator::sim::personio::EmployeeSeed;
use reteach_personio_operator::webhook::PublicUrl;
use serde_json::json;
use support::operator::{is_ready, test_tunables, World, NO_RECHECK};
use support::poll_until;

const TOKEN: &str = "tok-0123456789abcdefghijklmnopqrstuvwxyz";
const AUTHORIZATION: &str = "Bearer from-personio-0123456789";
/// Changes measured per scenario.
const SAMPLES: usize = 5;
/// Polling interval of the polling-only scenarios (scaled down from 5m/30m so the test ends).
const POLL_SECONDS: u64 = 10;
/// How long one change may take to arrive.
const ARRIVAL: Duration = Duration::from_secs(60);

async fn world(prefix: &str, webhooks: bool) -> (World, String) {
    // Bound here and handed over, so that no simulator started meanwhile can take the port.
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let receiver = format!("http://{}", socket.local_addr().unwrap());
    let tunables = Tunables {
        webhooks_enabled: webhooks,
        webhook_min_gap: Duration::from_secs(1),
        webhook_public_url: Some(PublicUrl::parse(&receiver, true).unwrap()),
        webhook_keys: Some(support::hooks::test_key_ring()),
        ..test_tunables(NO_RECHECK)
    };
    let world = World::start_driving(prefix, tunables, move |operator, _| {
        if webhooks {
            tokio::spawn(operator.serve_webhooks_on(socket));
        }
        Box::pin(operator.run(Readiness::default()))
    })
    .await;
    world.apply_secrets().await;
    world
        .apply_secret(
            "webhook",
            json!({"token": TOKEN, "authorization": AUTHORIZATION}),
        )
        .await;
    (world, receiver)
}

/// A random wait of up to `max`, so that changes fall at any phase of the polling schedule.
async fn random_phase(max: Duration) {
    let millis = rand::random_range(0..max.as_millis().max(1) as u64);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

/// Polls `probe` every 20 ms (finer than the shared helper) and returns the time until it held.
async fn time_until(what: &str, probe: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    while !probe() {
        assert!(
            started.elapsed() < ARRIVAL,
            "{what} did not arrive within {ARRIVAL:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let median = samples[samples.len() / 2];
    let max = samples[samples.len() - 1];
    let min = samples[0];
    eprintln!(
        "LATENCY {name}: median {:.2} s, min {:.2} s, max {:.2} s over {} changes",
        median.as_secs_f64(),
        min.as_secs_f64(),
        max.as_secs_f64(),
        samples.len()
    );
}

async fn new_hires(world: &World, prefix: &str, phase: Duration) -> Vec<Duration> {
    let hired = Utc::now().date_naive() - Days::new(10);
    let mut samples = Vec::new();
    for i in 0..SAMPLES {
        random_phase(phase).await;
        let email = format!("{prefix}-{i}@acme.example");
        let id = world
            .personio
            .sim
            .add_employee(EmployeeSeed::new("New", "Hire", &email).with_hire_date(hired));
        let sim = world.reteach.sim.clone();
        samples.push(time_until("a new hire", || sim.customer(&id.to_string()).is_some()).await);
    }
    samples
}

async fn employee_world(prefix: &str, webhooks: bool) -> World {
    let (world, receiver) = world(prefix, webhooks).await;
    let spec = if webhooks {
        json!({"interval": "1h", "webhook": {"secretRef": {"name": "webhook"}}})
    } else {
        json!({"interval": format!("{POLL_SECONDS}s")})
    };
    world.apply(world.employee_sync("personio", spec)).await;
    world
        .wait_employee_sync("personio", "the first run", |s| {
            is_ready(&s.common.conditions)
        })
        .await;
    if webhooks {
        let target = format!("{receiver}/personio/{}/personio/{TOKEN}", world.namespace);
        world
            .personio
            .sim
            .add_webhook(&target, AUTHORIZATION, &["person.created"]);
    }
    world
}

#[tokio::test]
async fn new_hire_latency_with_webhooks_and_with_polling_only() {
    let (hooked, polled) = tokio::join!(
        employee_world("lat-es-hook", true),
        employee_world("lat-es-poll", false)
    );
    let phase = Duration::from_secs(POLL_SECONDS);
    let (with_hooks, polling) = tokio::join!(
        new_hires(&hooked, "hook", Duration::from_secs(2)),
        new_hires(&polled, "poll", phase)
    );
    report("new hire → reteach, webhooks (interval 1h)", with_hooks);
    report(
        &format!("new hire → reteach, polling only (interval {POLL_SECONDS}s)"),
        polling,
    );
}

async fn certificate_world(prefix: &str, webhooks: bool) -> (World, i64) {
    let (world, _) = world(prefix, webhooks).await;
    let hired = Utc::now().date_naive() - Days::new(10);
    let anna = world.personio.sim.add_employee(
        EmployeeSeed::new("Anna", "Active", "anna@acme.example").with_hire_date(hired),
    );
    world
        .apply(world.employee_sync("personio", json!({"interval": "1h"})))
        .await;
    let spec = if webhooks {
        json!({"interval": "1h", "webhook": {"register": true}})
    } else {
        json!({"interval": format!("{POLL_SECONDS}s")})
    };
    world
        .apply(world.certificate_sync("certificates", "personio", spec))
        .await;
    world
        .wait_certificate_sync("certificates", "the first run", |s| {
            is_ready(&s.common.conditions)
        })
        .await;
    if webhooks {
        let sim = world.reteach.sim.clone();
        poll_until("subscriptions", ARRIVAL, || {
            let sim = sim.clone();
            async move { (sim.subscriptions().len() == 2).then_some(()) }
        })
        .await;
    }
    (world, anna)
}

async fn completions(world: &World, anna: i64, phase: Duration) -> Vec<Duration> {
    let mut samples = Vec::new();
    for i in 0..SAMPLES {
        random_phase(phase).await;
        let course = format!("Course {i}");
        world
            .reteach
            .sim
            .add_completion(&anna.to_string(), &course, Utc::now(), true)
            .expect("Anna is in reteach");
        let sim = world.personio.sim.clone();
        let expected = i + 1;
        let waited = time_until("a certificate", move || {
            sim.documents()
                .iter()
                .filter(|d| d.owner_id == anna)
                .count()
                >= expected
        })
        .await;
        samples.push(waited);
    }
    samples
}

#[tokio::test]
async fn certificate_latency_with_webhooks_and_with_polling_only() {
    let ((hooked, anna_hooked), (polled, anna_polled)) = tokio::join!(
        certificate_world("lat-cs-hook", true),
        certificate_world("lat-cs-poll", false)
    );
    let (with_hooks, polling) = tokio::join!(
        completions(&hooked, anna_hooked, Duration::from_secs(2)),
        completions(&polled, anna_polled, Duration::from_secs(POLL_SECONDS))
    );
    report(
        "completion → Personio document, webhooks (interval 1h)",
        with_hooks,
    );
    report(
        &format!("completion → Personio document, polling only (interval {POLL_SECONDS}s)"),
        polling,
    );
}
