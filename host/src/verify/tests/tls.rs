//! TokenReview over TLS: the tenant's CA is trusted for its API server, and nothing else is.

use super::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair as CertKey};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types};

/// A CA and a server certificate for 127.0.0.1 signed by it.
struct Pki {
    ca_pem: String,
    server_config: Arc<rustls::ServerConfig>,
}

fn pki() -> Pki {
    let ca_key = CertKey::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = CertKey::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        server_config: Arc::new(server_config),
    }
}

/// An HTTPS server answering every request with `answer` (201); returns its base URL.
async fn tls_server(config: Arc<rustls::ServerConfig>, answer: Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let acceptor = TlsAcceptor::from(config);
    let body = answer.to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, body) = (acceptor.clone(), body.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                read_request(&mut tls).await;
                let response = format!(
                    "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    base
}

/// Reads one request: headers, then `Content-Length` bytes of body.
async fn read_request(stream: &mut (impl AsyncReadExt + Unpin)) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return;
            }
        }
    }
}

fn issuer(api_server: &str, ca_pem: Option<String>) -> IssuerConfig {
    IssuerConfig {
        cache_key: "acme/tls".to_owned(),
        issuer_url: ISSUER.to_owned(),
        source: IssuerSource::TokenReview {
            api_server: api_server.to_owned(),
            ca_pem,
            reviewer_token: "reviewer".to_owned(),
            any_issuer: false,
        },
    }
}

fn authenticated() -> Value {
    json!({ "status": {
        "authenticated": true,
        "audiences": [AUDIENCE],
        "user": { "username": "system:serviceaccount:prod:deployer", "uid": "sa-uid-1" },
    }})
}

#[tokio::test]
async fn the_tenant_ca_is_trusted_and_only_it() {
    let pki = pki();
    let base = tls_server(pki.server_config.clone(), authenticated()).await;
    let key = TestKey::rsa("cluster", Algorithm::RS256);
    let token = key.sign(&claims_with("kubernetes.io", None));
    let config = issuer(&base, Some(pki.ca_pem.clone()));
    verifier().validate_issuer(&config).unwrap();
    let verified = check(&config, &token).await.unwrap();
    assert_eq!(verified["sub"], "system:serviceaccount:prod:deployer");
    // Without the CA (public roots only) or with another CA, the handshake fails: denial.
    let other_ca = self::pki().ca_pem;
    for ca in [None, Some(other_ca)] {
        let result = check(&issuer(&base, ca), &token).await;
        let Err(VerifyError::TokenReview(why)) = result else {
            panic!("{result:?}");
        };
        assert!(why.contains("certificate"), "{why}");
    }
}
