use super::*;
use std::time::Duration;

use crate::upstream::{hold_slot_while, paused, send_with_retry, NoopObserver, RetryPolicy};

/// Lets every ready task run.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn run_slots_never_let_more_than_the_limit_run_and_record_the_peak() {
    let slots = RunSlots::with_namespace_share(3, 100);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(slots.acquire("a", Priority::Routine).await);
    }
    let waiting = tokio::spawn({
        let slots = slots.clone();
        async move { slots.acquire("a", Priority::Routine).await }
    });
    settle().await;
    assert!(!waiting.is_finished(), "a fourth run got a slot");
    assert_eq!(slots.running(), 3);
    held.pop();
    let fourth = waiting.await.unwrap();
    assert_eq!((slots.running(), slots.peak()), (3, 3));
    drop(fourth);
    drop(held);
    assert_eq!(slots.running(), 0);
}

#[tokio::test]
async fn zero_means_no_limit() {
    let slots = RunSlots::new(0);
    let held: Vec<_> =
        futures::future::join_all((0..50).map(|_| slots.acquire("a", Priority::Routine))).await;
    assert_eq!((slots.running(), slots.peak()), (50, 50));
    drop(held);
}

#[test]
fn the_namespace_cap_is_a_share_of_the_slots_and_at_least_one() {
    assert_eq!(namespace_cap(32, 25), 8);
    assert_eq!(namespace_cap(32, 100), 32);
    assert_eq!(namespace_cap(3, 25), 1);
    assert_eq!(namespace_cap(1, 1), 1);
    assert_eq!(
        namespace_cap(10, 0),
        1,
        "a share of 0 % still lets runs start"
    );
}

#[tokio::test]
async fn requested_and_spec_change_runs_go_first() {
    let slots = RunSlots::with_namespace_share(1, 100);
    let first = slots.acquire("a", Priority::Routine).await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for (name, priority) in [
        ("routine", Priority::Routine),
        ("resumed", Priority::Resumed),
        ("requested", Priority::Urgent),
    ] {
        let (slots, order) = (slots.clone(), order.clone());
        waiters.push(tokio::spawn(async move {
            let _slot = slots.acquire("b", priority).await;
            order.lock().unwrap().push(name);
        }));
        settle().await;
    }
    drop(first);
    for waiter in waiters {
        waiter.await.unwrap();
    }
    assert_eq!(
        *order.lock().unwrap(),
        vec!["requested", "resumed", "routine"]
    );
}

#[tokio::test]
async fn a_namespace_never_holds_more_than_its_share_and_others_pass_it() {
    // 8 slots, 25 %: two per namespace.
    let slots = RunSlots::with_namespace_share(8, 25);
    let crowded: Vec<_> = (0..6)
        .map(|_| {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire("crowded", Priority::Routine).await })
        })
        .collect();
    settle().await;
    assert_eq!(
        slots.running(),
        2,
        "the crowded namespace holds its two slots"
    );
    // Queued behind four waiters of the crowded namespace, another academy starts at once.
    let other = tokio::time::timeout(
        Duration::from_secs(1),
        slots.acquire("other", Priority::Routine),
    )
    .await
    .expect("the other namespace is not held up by the crowded one's queue");
    assert_eq!(slots.running(), 3);
    drop(other);
    for waiter in &crowded {
        waiter.abort();
    }
}

#[tokio::test]
async fn a_waiter_that_gives_up_loses_nothing() {
    let slots = RunSlots::with_namespace_share(1, 100);
    let held = slots.acquire("a", Priority::Routine).await;
    let gave_up = tokio::time::timeout(
        Duration::from_millis(10),
        slots.acquire("b", Priority::Routine),
    )
    .await;
    assert!(gave_up.is_err());
    drop(held);
    let again = tokio::time::timeout(
        Duration::from_secs(1),
        slots.acquire("c", Priority::Routine),
    )
    .await;
    assert!(again.is_ok(), "the slot came back after the waiter left");
    assert_eq!(slots.running(), 1);
}

#[tokio::test(start_paused = true)]
async fn two_hundred_notified_runs_at_once_never_run_more_than_the_limit() {
    let slots = RunSlots::new(8);
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let runs = (0..200).map(|n| {
        let (slots, running, most) = (slots.clone(), running.clone(), most.clone());
        async move {
            // 200 academies, each notified once (a course deadline passes for all of them).
            let _slot = slots
                .acquire(&format!("academy-{n}"), Priority::of(DueReason::Notified))
                .await;
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(3)).await;
            running.fetch_sub(1, Ordering::SeqCst);
        }
    });
    futures::future::join_all(runs).await;
    assert_eq!(most.load(Ordering::SeqCst), 8);
    assert_eq!(slots.peak(), 8);
    assert_eq!(slots.running(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_paused_run_holds_no_slot_and_resumes_before_routine_runs() {
    let slots = RunSlots::with_namespace_share(1, 100);
    let slot = slots.acquire("throttled", Priority::Routine).await;
    let sleeper = tokio::spawn(hold_slot_while(slot, async {
        paused(tokio::time::sleep(Duration::from_secs(300))).await;
        "resumed"
    }));
    settle().await;
    assert_eq!(slots.running(), 0, "sleeping on Retry-After holds no slot");
    let healthy = slots.acquire("healthy", Priority::Routine).await;
    // The sleeper wakes while the healthy run works: it waits for the slot, then goes first.
    tokio::time::sleep(Duration::from_secs(301)).await;
    assert!(!sleeper.is_finished());
    let queued_later = tokio::spawn({
        let slots = slots.clone();
        async move { slots.acquire("later", Priority::Routine).await }
    });
    settle().await;
    drop(healthy);
    assert_eq!(sleeper.await.unwrap(), "resumed");
    let _later = queued_later.await.unwrap();
    assert_eq!(slots.peak(), 1);
}

/// A Personio stand-in: `/throttled` answers 429 with `Retry-After: 300`, `/ok` 200.
async fn throttling_upstream() -> String {
    use axum::http::StatusCode;
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/throttled",
            get(|| async { (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "300")], "") }),
        )
        .route("/ok", get(|| async { "{}" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A GET of `url` with retries, as the Personio client sends one; the answer's status.
async fn get_status(
    http: &reqwest::Client,
    url: &str,
    policy: &RetryPolicy,
) -> Result<u16, crate::upstream::SendError> {
    send_with_retry("personio", "employees", policy, &NoopObserver, None, || {
        http.get(url)
    })
    .await
    .map(|r| r.status().as_u16())
}

#[tokio::test(start_paused = true)]
async fn a_throttled_namespace_does_not_keep_a_healthy_one_waiting() {
    let base = throttling_upstream().await;
    let http = reqwest::Client::new();
    // Every slot is taken by the throttled academy (share 100 %: the pause alone must free them).
    let slots = RunSlots::with_namespace_share(4, 100);
    let policy = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let t0 = tokio::time::Instant::now();
    let mut throttled = Vec::new();
    for _ in 0..4 {
        let slot = slots.acquire("throttled", Priority::Routine).await;
        let (http, url, policy) = (http.clone(), format!("{base}/throttled"), policy.clone());
        throttled.push(tokio::spawn(hold_slot_while(slot, async move {
            get_status(&http, &url, &policy).await
        })));
    }
    let slot = slots.acquire("healthy", Priority::Routine).await;
    let waited = t0.elapsed();
    let url = format!("{base}/ok");
    let status = hold_slot_while(slot, async { get_status(&http, &url, &policy).await })
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(
        waited < Duration::from_secs(5),
        "the healthy academy waited {waited:?} behind Retry-After: 300"
    );
    for run in throttled {
        let outcome = run.await.unwrap();
        assert!(
            outcome.is_err(),
            "the throttled runs give up after their attempts"
        );
    }
    assert!(
        t0.elapsed() >= Duration::from_secs(600),
        "two Retry-After waits"
    );
    assert_eq!(slots.running(), 0);
}
