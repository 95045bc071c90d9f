//! Bad resource specs and credentials, one test each, through the pure validation paths the
//! reconcilers use (`api::duration`, `upstream::build_http_client`, the client constructors,
//! `jobs::resolve_category`, `RunFailure` conversions): each gives a precise message and the
//! right condition (Stalled for a human to fix). The same cases on a real apiserver are in the
//! end-to-end suites.

use crate::support;

use std::time::Duration;

use reteach_personio_operator::api::duration::{
    parse_duration_at_least, parse_full_resync_interval, parse_interval, DurationError,
    MAX_INTERVAL,
};
use reteach_personio_operator::api::DocumentCategoryRef;
use reteach_personio_operator::credentials::CredentialsError;
use reteach_personio_operator::jobs::run_failure::RunFailure;
use reteach_personio_operator::jobs::Disposition;
use reteach_personio_operator::jobs::{resolve_category, JobError};
use reteach_personio_operator::personio::{
    PersonioApi, PersonioClient, PersonioConfig, PersonioCredentials,
};
use reteach_personio_operator::reteach::{
    ReteachApi, ReteachClient, ReteachConfig, ReteachCredentials,
};
use reteach_personio_operator::upstream::{build_http_client, TlsOptions, UrlPolicyError};

use support::sims::{personio_config, reteach_config, Sims, CATEGORY};

const MINUTE: Duration = Duration::from_secs(60);

fn stalled(failure: impl Into<RunFailure>) -> (String, String) {
    let failure = failure.into();
    assert_eq!(
        failure.disposition,
        Disposition::Stalled,
        "expected Stalled, got {failure:?}"
    );
    (failure.reason.to_string(), failure.message)
}

// ---- intervals ----

#[test]
fn rejects_an_interval_without_unit() {
    let error = parse_duration_at_least("5", MINUTE).unwrap_err();
    assert_eq!(error, DurationError::Invalid("5".into()));
    assert!(error.to_string().contains("e.g. 30s, 5m, 1h30m"), "{error}");
}

#[test]
fn rejects_an_interval_below_the_one_minute_minimum() {
    let error = parse_duration_at_least("30s", MINUTE).unwrap_err();
    assert_eq!(
        error.to_string(),
        "\"30s\" is shorter than the minimum of 1m"
    );
}

#[test]
fn rejects_a_negative_interval() {
    assert!(matches!(
        parse_duration_at_least("-5m", MINUTE),
        Err(DurationError::Invalid(_))
    ));
}

#[test]
fn rejects_an_interval_in_words_or_with_unknown_unit() {
    for text in ["five minutes", "5 min", "1d", "", "m5", "1.2.3m"] {
        assert!(
            matches!(
                parse_duration_at_least(text, MINUTE),
                Err(DurationError::Invalid(_))
            ),
            "{text:?} must be refused"
        );
    }
}

#[test]
fn rejects_an_absurdly_large_interval_instead_of_overflowing() {
    assert!(parse_duration_at_least("99999999999999999999999h", MINUTE).is_err());
}

#[test]
fn accepts_compound_intervals_at_or_above_the_minimum() {
    assert_eq!(parse_duration_at_least("1m", MINUTE), Ok(MINUTE));
    assert_eq!(
        parse_duration_at_least("1h30m", MINUTE),
        Ok(Duration::from_secs(5_400))
    );
}

#[test]
fn rejects_an_interval_above_one_day_naming_the_maximum() {
    let error = parse_interval("3000000000h", MINUTE).unwrap_err();
    assert_eq!(
        error.to_string(),
        "\"3000000000h\" is longer than the maximum of 24h"
    );
    assert!(parse_interval("25h", MINUTE).is_err());
    assert_eq!(parse_interval("24h", MINUTE), Ok(MAX_INTERVAL));
}

#[test]
fn rejects_a_full_resync_interval_above_thirty_days() {
    assert!(matches!(
        parse_full_resync_interval("721h", MINUTE),
        Err(DurationError::TooLong { .. })
    ));
    assert!(parse_full_resync_interval("720h", MINUTE).is_ok());
}

// ---- Secrets ----

#[test]
fn stalls_naming_the_missing_secret_and_its_keys() {
    let failure = RunFailure::from(CredentialsError::SecretNotFound {
        namespace: "academy".into(),
        name: "personio-api".into(),
        keys: "clientId, clientSecret".into(),
    });
    let (reason, message) = stalled(failure);
    assert_eq!(reason, "SecretNotFound");
    assert_eq!(
        message,
        "Secret academy/personio-api not found; create it with the keys clientId, clientSecret"
    );
}

#[test]
fn stalls_naming_the_missing_key_and_the_field_to_change() {
    let failure = RunFailure::from(CredentialsError::KeyMissing {
        namespace: "academy".into(),
        name: "reteach-api".into(),
        key: "clientCode".into(),
        field: "reteach.credentialsSecretRef.clientCodeKey".into(),
    });
    let (reason, message) = stalled(failure);
    assert_eq!(reason, "SecretKeyMissing");
    assert!(message.contains("\"clientCode\""), "{message}");
    assert!(
        message.contains("reteach.credentialsSecretRef.clientCodeKey"),
        "{message}"
    );
}

#[test]
fn stalls_when_a_secret_value_is_not_text() {
    let failure = RunFailure::from(CredentialsError::NotUtf8 {
        namespace: "academy".into(),
        name: "personio-api".into(),
        key: "clientSecret".into(),
    });
    let (reason, message) = stalled(failure);
    assert_eq!(reason, "SecretKeyMissing");
    assert!(message.contains("not valid UTF-8"), "{message}");
}

#[test]
fn retries_an_apiserver_hiccup_reading_a_secret_instead_of_stalling() {
    let failure = RunFailure::from(CredentialsError::Api {
        namespace: "academy".into(),
        name: "personio-api".into(),
        message: "connection refused".into(),
        transient: true,
    });
    assert!(failure.disposition == Disposition::Retry, "{failure:?}");
}

#[tokio::test]
async fn stalls_when_personio_rejects_the_client_secret() {
    let sims = Sims::start().await;
    let mut config = personio_config(&sims.personio, &sims.personio_server);
    config.credentials.secret = "wrong-secret".into();
    let client = PersonioClient::new(config).expect("client");
    let error = client.check_credentials().await.unwrap_err();
    let failure = RunFailure::from(error);
    let (reason, message) = stalled(failure);
    assert_eq!(reason, "PersonioCredentialsRejected");
    assert!(!message.contains("wrong-secret"), "never echoes the secret");
}

#[tokio::test]
async fn stalls_when_reteach_rejects_the_client_code() {
    let sims = Sims::start().await;
    let mut config = reteach_config(&sims.reteach, &sims.reteach_server);
    config.credentials.client_code = "wrong-code".into();
    let client = ReteachClient::new(config).expect("client");
    let error = client.me().await.unwrap_err();
    let failure = RunFailure::from(error);
    let (reason, message) = stalled(failure);
    assert_eq!(reason, "ReteachCredentialsRejected");
    assert!(!message.contains("wrong-code"), "never echoes the secret");
}

#[test]
fn refuses_empty_personio_credentials_before_calling_personio() {
    let config = PersonioConfig::new(
        "https://api.personio.de",
        PersonioCredentials::new(" ", "secret"),
    );
    let error = PersonioClient::new(config).unwrap_err();
    let (reason, message) = stalled(error);
    assert_eq!(reason, "InvalidSpec");
    assert!(message.contains("must not be empty"), "{message}");
}

// ---- document category ----

fn category(id: Option<i64>, name: Option<&str>) -> DocumentCategoryRef {
    DocumentCategoryRef {
        id,
        name: name.map(str::to_string),
    }
}

#[tokio::test]
async fn stalls_on_an_unknown_category_name_listing_the_existing_ones() {
    let sims = Sims::start().await;
    let error = resolve_category(&sims.personio_client, &category(None, Some("Zertifikate")))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("\"Zertifikate\" does not exist"),
        "{message}"
    );
    assert!(
        message.contains(&format!("{CATEGORY} (id {})", sims.category_id)),
        "{message}"
    );
    let (reason, _) = stalled(error);
    assert_eq!(reason, "UnknownDocumentCategory");
}

#[tokio::test]
async fn stalls_on_an_unknown_category_id() {
    let sims = Sims::start().await;
    let error = resolve_category(&sims.personio_client, &category(Some(987_654), None))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("id 987654 does not exist"),
        "{error}"
    );
    assert!(error.is_config());
}

#[tokio::test]
async fn resolves_a_category_by_name_or_by_id() {
    let sims = Sims::start().await;
    let by_name = resolve_category(&sims.personio_client, &category(None, Some(CATEGORY)))
        .await
        .expect("by name");
    let by_id = resolve_category(
        &sims.personio_client,
        &category(Some(sims.category_id), None),
    )
    .await
    .expect("by id");
    assert_eq!((by_name, by_id), (sims.category_id, sims.category_id));
}

#[tokio::test]
async fn stalls_when_the_category_sets_both_id_and_name_or_neither() {
    let sims = Sims::start().await;
    for wanted in [
        category(Some(1), Some(CATEGORY)),
        category(None, None),
        category(None, Some("  ")),
    ] {
        let error = resolve_category(&sims.personio_client, &wanted)
            .await
            .unwrap_err();
        assert!(matches!(error, JobError::InvalidCategoryRef), "{wanted:?}");
        let (reason, message) = stalled(error);
        assert_eq!(reason, "InvalidSpec");
        assert_eq!(
            message,
            "spec.documentCategory must set exactly one of id or name"
        );
    }
}

// ---- base URLs and TLS ----

#[test]
fn refuses_a_plain_http_base_url_without_the_opt_in() {
    let error = build_http_client("http://api.personio.de", &TlsOptions::default()).unwrap_err();
    assert!(
        matches!(error, UrlPolicyError::InsecureScheme(_)),
        "{error}"
    );
    assert!(error.to_string().contains("allowInsecureHttp"), "{error}");
}

#[test]
fn stalls_a_personio_spec_with_a_plain_http_base_url() {
    let config = PersonioConfig::new(
        "http://personio.internal",
        PersonioCredentials::new("id", "secret"),
    );
    let error = PersonioClient::new(config).unwrap_err();
    let (reason, message) = stalled(error);
    assert_eq!(reason, "InvalidSpec");
    assert!(message.contains("is not https"), "{message}");
}

#[test]
fn stalls_a_reteach_spec_with_a_plain_http_base_url() {
    let config = ReteachConfig::new(
        "http://reteach.internal",
        ReteachCredentials::new("id", "secret", "code"),
    );
    let error = ReteachClient::new(config).unwrap_err();
    let (reason, message) = stalled(error);
    assert_eq!(reason, "InvalidSpec");
    assert!(message.contains("is not https"), "{message}");
}

#[test]
fn refuses_a_base_url_that_is_not_a_url_or_not_http() {
    for url in ["api.personio.de", "ftp://api.personio.de", "https://", ""] {
        let error = build_http_client(url, &TlsOptions::default()).unwrap_err();
        assert!(
            matches!(error, UrlPolicyError::InvalidUrl(_)),
            "{url:?}: {error}"
        );
    }
}

#[test]
fn refuses_a_ca_bundle_that_is_not_pem() {
    let options = TlsOptions {
        ca_bundle_pem: Some(b"-----BEGIN CERTIFICATE-----\nnot base64\n".to_vec()),
        ..TlsOptions::default()
    };
    let error = build_http_client("https://api.personio.de", &options).unwrap_err();
    assert!(
        matches!(error, UrlPolicyError::InvalidCaBundle(_)),
        "{error}"
    );
}
