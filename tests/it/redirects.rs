//! API and token requests never follow a redirect (issue 25): an allowed upstream that answers a
//! token request with 307/308 (which would make an HTTP client re-send the body — the client
//! secret — to the target) or an API call with 302 gets one request, the redirect target gets
//! nothing, and the caller gets a typed error naming the endpoint and the base URL to check.

use crate::listener;

use std::time::Duration;

use listener::Listener;
use reteach_personio_operator::jobs::{Classify, Disposition, Reason};
use reteach_personio_operator::personio::{
    PersonioApi, PersonioClient, PersonioConfig, PersonioCredentials, PersonioError,
    PersonioRateLimits,
};
use reteach_personio_operator::reteach::{
    ReteachApi, ReteachClient, ReteachConfig, ReteachCredentials, ReteachError,
};
use reteach_personio_operator::upstream::RetryPolicy;

const PERSONIO_ID: &str = "personio-client-id";
const PERSONIO_SECRET: &str = "personio-client-secret";
const RETEACH_ID: &str = "reteach-client-id";
const RETEACH_SECRET: &str = "reteach-client-secret";
const RETEACH_CODE: &str = "reteach-client-code";

/// A pair: the allowed upstream redirecting `redirects` to the outside listener.
async fn pair(redirects: Vec<(&'static str, u16)>) -> (Listener, Listener) {
    let outside = Listener::outside().await;
    let allowed = Listener::redirecting(redirects, &outside.url()).await;
    (allowed, outside)
}

/// Five attempts, as in production: a redirect must not be retried either.
fn retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

fn personio(base: &str) -> PersonioClient {
    let mut config =
        PersonioConfig::new(base, PersonioCredentials::new(PERSONIO_ID, PERSONIO_SECRET));
    config.tls.allow_insecure_http = true;
    config.limits = PersonioRateLimits::unlimited();
    config.retry = retries();
    PersonioClient::new(config).unwrap()
}

fn reteach(base: &str) -> ReteachClient {
    let mut config = ReteachConfig::new(
        base,
        ReteachCredentials::new(RETEACH_ID, RETEACH_SECRET, RETEACH_CODE),
    );
    config.tls.allow_insecure_http = true;
    config.retry = retries();
    ReteachClient::new(config).unwrap()
}

fn assert_personio_redirected(error: PersonioError, endpoint: &str, status: u16) {
    match &error {
        PersonioError::Redirected {
            endpoint: named,
            status: got,
        } => assert_eq!((*named, *got), (endpoint, status)),
        other => panic!("expected a redirect error, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(endpoint) && message.contains("spec.personio.baseUrl"),
        "{message}"
    );
    let classified = error.classify();
    assert_eq!(classified.reason, Reason::UpstreamRedirected);
    assert_eq!(classified.disposition, Disposition::Stalled);
}

fn assert_reteach_redirected(error: ReteachError, endpoint: &str, status: u16) {
    match &error {
        ReteachError::Redirected {
            endpoint: named,
            status: got,
        } => assert_eq!((*named, *got), (endpoint, status)),
        other => panic!("expected a redirect error, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(endpoint) && message.contains("spec.reteach.baseUrl"),
        "{message}"
    );
    assert_eq!(error.classify().reason, Reason::UpstreamRedirected);
    assert_eq!(error.classify().disposition, Disposition::Stalled);
}

#[tokio::test]
async fn personio_v1_token_request_redirected_with_307_or_308_sends_nothing_to_the_target() {
    for status in [307, 308] {
        let (allowed, outside) = pair(vec![("POST /v1/auth", status)]).await;
        let error = personio(&allowed.url())
            .check_credentials()
            .await
            .unwrap_err();
        assert_personio_redirected(error, "POST /v1/auth", status);
        assert_eq!(
            allowed.lines(),
            vec!["POST /v1/auth"],
            "sent once, not retried"
        );
        assert!(allowed.seen()[0].body.contains(PERSONIO_SECRET));
        outside.assert_untouched();
    }
}

#[tokio::test]
async fn personio_v2_token_request_redirected_with_307_or_308_sends_nothing_to_the_target() {
    for status in [307, 308] {
        let (allowed, outside) = pair(vec![("POST /v2/auth/token", status)]).await;
        let error = personio(&allowed.url())
            .list_documents("1", 3)
            .await
            .unwrap_err();
        assert_personio_redirected(error, "POST /v2/auth/token", status);
        assert_eq!(allowed.lines(), vec!["POST /v2/auth/token"]);
        outside.assert_untouched();
    }
}

#[tokio::test]
async fn reteach_token_request_redirected_with_307_or_308_sends_nothing_to_the_target() {
    for status in [307, 308] {
        let (allowed, outside) = pair(vec![("POST /oauth/authorize", status)]).await;
        let error = reteach(&allowed.url()).me().await.unwrap_err();
        assert_reteach_redirected(error, "POST /oauth/authorize", status);
        assert_eq!(allowed.lines(), vec!["POST /oauth/authorize"]);
        assert!(allowed.seen()[0].body.contains(RETEACH_SECRET));
        outside.assert_untouched();
    }
}

#[tokio::test]
async fn a_get_api_call_answered_with_302_sends_the_token_nowhere_else() {
    let (allowed, outside) = pair(vec![("GET /v1/company/employees", 302)]).await;
    let error = personio(&allowed.url())
        .list_employees(None)
        .await
        .unwrap_err();
    assert_personio_redirected(error, "GET /v1/company/employees", 302);
    assert_eq!(
        allowed.lines(),
        vec!["POST /v1/auth", "GET /v1/company/employees"]
    );
    assert!(allowed.seen()[1].authorization);
    outside.assert_untouched();

    let (allowed, outside) = pair(vec![("GET /me", 302)]).await;
    let error = reteach(&allowed.url()).me().await.unwrap_err();
    assert_reteach_redirected(error, "GET /me", 302);
    assert_eq!(allowed.lines(), vec!["POST /oauth/authorize", "GET /me"]);
    outside.assert_untouched();
}

/// The listener itself works: without redirects the same calls succeed against it, so the tests
/// above fail for the redirect and nothing else.
#[tokio::test]
async fn the_same_calls_succeed_without_a_redirect() {
    let (allowed, outside) = pair(Vec::new()).await;
    personio(&allowed.url()).check_credentials().await.unwrap();
    let answer = reteach(&allowed.url()).me().await;
    // `{}` is no academy: the call went through and the body was judged, not the status.
    assert!(
        !matches!(answer, Err(ReteachError::Redirected { .. })),
        "{answer:?}"
    );
    outside.assert_untouched();
}
