//! TLS verification is always on: a server signed by a private CA is trusted only when that CA
//! comes in through `caBundleRef` (`TlsOptions::ca_bundle_pem`), and plain `http://` needs the
//! explicit opt-in. The server is a real HTTPS listener on loopback; its certificate is signed by
//! the test CA in `tests/fixtures/tls/` (regenerate with `gen.sh` there).

use std::path::PathBuf;
use std::sync::Arc;

use reteach_personio_operator::personio::{
    PersonioApi, PersonioClient, PersonioConfig, PersonioCredentials,
};
use reteach_personio_operator::upstream::{build_http_client, TlsOptions, UrlPolicyError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

fn ca_pem() -> Vec<u8> {
    std::fs::read(fixture("ca.pem")).expect("test CA")
}

/// An HTTPS server on 127.0.0.1 answering every request with `{"ok":true}`; returns its port.
async fn https_server() -> u16 {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture("server.pem"))
        .expect("server certificate")
        .collect::<Result<_, _>>()
        .expect("server certificate");
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).expect("server key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust us aborts the handshake: nothing to answer.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = vec![0u8; 4096];
                let _ = tls.read(&mut request).await;
                let body = r#"{"ok":true}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test]
async fn trusts_a_private_ca_given_as_ca_bundle() {
    let port = https_server().await;
    let options = TlsOptions {
        ca_bundle_pem: Some(ca_pem()),
        ..TlsOptions::default()
    };
    let base = format!("https://localhost:{port}/");
    let (client, url) = build_http_client(&base, &options).expect("client");
    let response = client
        .get(url)
        .send()
        .await
        .expect("TLS handshake with the private CA");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), r#"{"ok":true}"#);
}

#[tokio::test]
async fn refuses_a_server_of_a_private_ca_without_the_bundle() {
    let port = https_server().await;
    let base = format!("https://localhost:{port}/");
    let (client, url) = build_http_client(&base, &TlsOptions::default()).expect("client");
    let error = client.get(url).send().await.expect_err("unknown issuer");
    assert!(error.is_connect(), "fails in the handshake: {error:?}");
}

#[tokio::test]
async fn checks_the_host_name_even_with_the_ca_bundle() {
    let port = https_server().await;
    let options = TlsOptions {
        ca_bundle_pem: Some(ca_pem()),
        ..TlsOptions::default()
    };
    // The certificate is for localhost and 127.0.0.1, not for 127.0.0.2.
    let listener_alias = format!("https://127.0.0.2:{port}/");
    let (client, url) = build_http_client(&listener_alias, &options).expect("client");
    assert!(client.get(url).send().await.is_err());
}

#[tokio::test]
async fn personio_client_uses_the_ca_bundle_for_its_calls() {
    let port = https_server().await;
    let mut config = PersonioConfig::new(
        format!("https://localhost:{port}"),
        PersonioCredentials::new("id", "secret"),
    );
    config.tls.ca_bundle_pem = Some(ca_pem());
    config.retry = reteach_personio_operator::upstream::RetryPolicy::once();
    let client = PersonioClient::new(config).expect("client");
    // The server answers every path with `{"ok":true}`: a readable, wrong auth answer proves the
    // TLS connection was made with the bundle (without it the error is a connection failure).
    let error = client.check_credentials().await.expect_err("not Personio");
    let message = error.to_string();
    assert!(
        !message.contains("connection"),
        "the handshake must succeed: {message}"
    );
}

#[test]
fn refuses_plain_http_without_the_opt_in() {
    let error = build_http_client("http://127.0.0.1:8080", &TlsOptions::default()).unwrap_err();
    assert!(
        matches!(error, UrlPolicyError::InsecureScheme(_)),
        "{error}"
    );
}

#[tokio::test]
async fn client_without_the_opt_in_refuses_every_plain_http_request() {
    let (client, _) =
        build_http_client("https://localhost:1/", &TlsOptions::default()).expect("client");
    let error = client
        .get("http://127.0.0.1:1/")
        .send()
        .await
        .expect_err("https only");
    assert!(
        error.is_builder() || error.to_string().contains("https"),
        "{error:?}"
    );
}
