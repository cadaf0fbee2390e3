//! End to end, per verification mode: a real `tollgate serve`, real `tollgate dev issuer`
//! processes (or a TokenReview double in this process), everything on loopback, and for each
//! mode a token the server must accept and tokens it must refuse through `/oauth2/token`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tollgate_tests::attack::put_issuer;
use tollgate_tests::cluster::{dev_token, rotate};
use tollgate_tests::jwt::{kid, now as unix_now, segment, with_payload};
use tollgate_tests::server::{DevIssuer, Server, TempDir, identity_name};

const TENANT: &str = "acme";
/// The server's least time between two key fetches of one issuer (`VerifySettings`).
const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// A ServiceAccount token of `state_dir`'s keys for prod/deployer in pod `api-1`.
fn mint(state_dir: &Path, audience: &str, issuer: Option<&str>) -> String {
    let mut args = vec![
        "-n",
        "prod",
        "-s",
        "deployer",
        "--pod",
        "api-1",
        "--audience",
        audience,
    ];
    args.extend(
        issuer
            .map(|issuer| ["--issuer", issuer])
            .into_iter()
            .flatten(),
    );
    dev_token(state_dir, &args)
}

/// PUTs identity `id` of [`TENANT`] trusting `issuer`, letting namespace `prod` have
/// `registry.pull`.
async fn bind(server: &Server, key: &str, id: &str, issuer: &str) {
    let body = json!({
        "issuer": issuer,
        "config": {"namespaces": ["prod"], "grant": {"scopes": ["registry.pull"]}},
        "scopes": ["registry.pull"],
    });
    let (status, answer) = server.put_identity(TENANT, id, key, body).await;
    assert_eq!(status, 200, "{answer}");
}

/// An RFC 8693 exchange of `token` for identity `id` of [`TENANT`].
async fn exchange(server: &Server, id: &str, token: &str) -> (u16, Value) {
    server
        .exchange(&identity_name(TENANT, id), token, &[])
        .await
}

/// Asserts a successful exchange and returns the issued token's claims.
fn assert_allowed((status, body): &(u16, Value), context: &str) -> Value {
    assert_eq!(*status, 200, "{context}: {body}");
    let token = body["access_token"].as_str().expect("access_token");
    assert_eq!(body["token_type"], "Bearer", "{context}");
    assert_eq!(body["scope"], "registry.pull", "{context}");
    segment(token, 1)
}

/// Asserts the generic denial of the token endpoint.
fn assert_denied((status, body): &(u16, Value), context: &str) {
    assert_eq!(*status, 400, "{context}: {body}");
    assert_eq!(body["error"], "invalid_request", "{context}: {body}");
    assert!(body.get("access_token").is_none(), "{context}: {body}");
}

/// The newest decision's reason, asserting it is a denial of the verify stage.
async fn last_denial(server: &Server, tenant: &str, key: &str) -> String {
    let decisions = server.decisions(tenant, key).await;
    let newest = decisions.first().expect("a decision");
    assert_eq!(newest["allowed"], false, "{newest}");
    assert_eq!(newest["code"], "invalid-token", "{newest}");
    newest["reason"].as_str().unwrap_or_default().to_owned()
}

/// A server with tenant `acme`: (server, tenant API key, tenant audience).
async fn server_with_tenant() -> (Server, String, String) {
    let server = tokio::task::spawn_blocking(Server::start_fresh)
        .await
        .unwrap();
    let (key, audience) = server.create_tenant(TENANT).await;
    (server, key, audience)
}

/// A dev issuer started on a fresh state dir (blocking process start, off the runtime).
async fn start_issuer(state: &TempDir) -> DevIssuer {
    let dir = state.path().to_owned();
    tokio::task::spawn_blocking(move || DevIssuer::start(&dir))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_accepts_the_issuers_key_and_refuses_a_key_it_does_not_publish() {
    let (server, key, audience) = server_with_tenant().await;
    let cluster = TempDir::new("discovery");
    let issuer = start_issuer(&cluster).await;
    let (status, body) = put_issuer(
        &server,
        TENANT,
        &key,
        "dev",
        json!({"issuer_url": issuer.url}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"]["mode"], "discovery");
    bind(&server, &key, "deployer", "dev").await;

    let token = mint(cluster.path(), &audience, None);
    let answer = exchange(&server, "deployer", &token).await;
    let issued = assert_allowed(&answer, "discovery");
    assert_eq!(issued["iss"], server.url.as_str());
    assert_eq!(issued["sub"], "tenants/acme/identities/deployer");
    assert_eq!(issued["act"]["iss"], issuer.url.as_str());
    assert_eq!(issued["act"]["sub"], "system:serviceaccount:prod:deployer");
    assert_eq!(issued["kubernetes"]["namespace"], "prod");
    assert_eq!(issued["kubernetes"]["pod"], "api-1");

    // Another cluster's key, claiming the same issuer URL: its kid is not published.
    let impostor = TempDir::new("discovery-impostor");
    let forged = mint(impostor.path(), &audience, Some(&issuer.url));
    assert_eq!(segment(&forged, 1)["iss"], issuer.url.as_str());
    assert_ne!(kid(&forged), kid(&token));
    assert_denied(
        &exchange(&server, "deployer", &forged).await,
        "unpublished key",
    );
    let reason = last_denial(&server, TENANT, &key).await;
    assert!(reason.contains("kid: no key with id"), "{reason}");

    // The same forgery carrying the real kid fails on the signature.
    let mut header = segment(&forged, 0);
    header["kid"] = json!(kid(&token));
    let relabelled = relabel(&forged, &header);
    assert_denied(
        &exchange(&server, "deployer", &relabelled).await,
        "real kid, wrong key",
    );
    let reason = last_denial(&server, TENANT, &key).await;
    assert!(reason.contains("signature"), "{reason}");

    // A token for another audience is refused although the key is right.
    let elsewhere = mint(cluster.path(), "https://elsewhere.example", None);
    assert_denied(
        &exchange(&server, "deployer", &elsewhere).await,
        "other audience",
    );
    assert!(
        last_denial(&server, TENANT, &key)
            .await
            .contains("aud: token audience is not accepted")
    );
    drop(issuer);
}

/// `token` with its header replaced (signature kept).
fn relabel(token: &str, header: &Value) -> String {
    use base64::Engine;
    let parts: Vec<&str> = token.split('.').collect();
    let encoded =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header.to_string().as_bytes());
    format!("{encoded}.{}.{}", parts[1], parts[2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_jwks_verifies_with_the_issuer_stopped_and_expires() {
    let (server, key, audience) = server_with_tenant().await;
    let cluster = TempDir::new("static");
    let issuer = start_issuer(&cluster).await;
    let jwks: Value = server
        .http
        .get(format!("{}/openid/v1/jwks", issuer.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1, "{jwks}");
    let issuer_url = issuer.url.clone();
    issuer.stop();
    // Nothing answers at the issuer any more: only the pasted keys can vouch for tokens.
    assert!(
        server
            .http
            .get(format!("{issuer_url}/openid/v1/jwks"))
            .send()
            .await
            .is_err()
    );

    let source = json!({"mode": "static_jwks", "jwks": jwks, "expires_at": unix_now() + 3600});
    let (status, body) = put_issuer(
        &server,
        TENANT,
        &key,
        "pasted",
        json!({"issuer_url": issuer_url, "source": source}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    bind(&server, &key, "deployer", "pasted").await;

    let token = mint(cluster.path(), &audience, None);
    let issued = assert_allowed(&exchange(&server, "deployer", &token).await, "static");
    assert_eq!(issued["act"]["iss"], issuer_url.as_str());
    assert_eq!(issued["kubernetes"]["pod"], "api-1");

    let impostor = TempDir::new("static-impostor");
    let forged = mint(impostor.path(), &audience, Some(&issuer_url));
    assert_denied(
        &exchange(&server, "deployer", &forged).await,
        "key not in the static set",
    );
    let reason = last_denial(&server, TENANT, &key).await;
    assert!(reason.contains("kid: no key with id"), "{reason}");

    // A static set whose `expires_at` has passed is refused at registration.
    let expired = json!({"mode": "static_jwks", "jwks": jwks, "expires_at": unix_now() - 60});
    let (status, body) = put_issuer(
        &server,
        TENANT,
        &key,
        "stale",
        json!({"issuer_url": issuer_url, "source": expired}),
    )
    .await;
    assert_eq!(status, 422, "registering an expired set: {body}");
    // One that expires later is accepted, then every exchange against it is refused.
    let expiring = json!({"mode": "static_jwks", "jwks": jwks, "expires_at": unix_now() + 4});
    let (status, body) = put_issuer(
        &server,
        TENANT,
        &key,
        "stale",
        json!({"issuer_url": issuer_url, "source": expiring}),
    )
    .await;
    assert_eq!(status, 200, "registering an expiring set: {body}");
    bind(&server, &key, "stale", "stale").await;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_denied(
        &exchange(&server, "stale", &token).await,
        "expired static set",
    );
    let reason = last_denial(&server, TENANT, &key).await;
    assert!(
        reason.contains("keys: the issuer's static keys have expired"),
        "{reason}"
    );
    // The same token still works for the identity whose set is current.
    assert_allowed(&exchange(&server, "deployer", &token).await, "static again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_cluster_key_is_accepted_after_the_single_refetch() {
    let (server, key, audience) = server_with_tenant().await;
    let cluster = TempDir::new("rotation");
    let issuer = start_issuer(&cluster).await;
    let (status, body) = put_issuer(
        &server,
        TENANT,
        &key,
        "dev",
        json!({"issuer_url": issuer.url}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    bind(&server, &key, "deployer", "dev").await;

    let before = mint(cluster.path(), &audience, None);
    assert_allowed(
        &exchange(&server, "deployer", &before).await,
        "before rotation",
    );
    // The keys were fetched during that exchange: the refetch window starts no later than now.
    let fetched = Instant::now();

    rotate(cluster.path());
    let after = mint(cluster.path(), &audience, None);
    assert_ne!(kid(&after), kid(&before));
    // The old key is still published and cached.
    assert_allowed(
        &exchange(&server, "deployer", &before).await,
        "old kid after rotation",
    );

    // Within the refetch interval the unknown kid does not make the server fetch again (a flood
    // of random kids costs the issuer one request per interval): refused for now.
    if fetched.elapsed() < REFETCH_INTERVAL - Duration::from_secs(5) {
        assert_denied(
            &exchange(&server, "deployer", &after).await,
            "new kid within the refetch interval",
        );
        let reason = last_denial(&server, TENANT, &key).await;
        assert!(reason.contains("kid: no key with id"), "{reason}");
    }

    // Once the interval has passed, the unknown kid triggers one refetch that brings it.
    let wait = (REFETCH_INTERVAL + Duration::from_secs(1)).saturating_sub(fetched.elapsed());
    tokio::time::sleep(wait).await;
    let issued = assert_allowed(
        &exchange(&server, "deployer", &after).await,
        "new kid after the refetch",
    );
    assert_eq!(issued["act"]["iss"], issuer.url.as_str());
    assert_allowed(
        &exchange(&server, "deployer", &before).await,
        "old kid still published",
    );
    // Further tokens with the new key are served from the cache.
    let again = mint(cluster.path(), &audience, None);
    assert_allowed(
        &exchange(&server, "deployer", &again).await,
        "new kid cached",
    );
    drop(issuer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_keys_keep_working_when_the_issuer_goes_down() {
    let (server, key, audience) = server_with_tenant().await;
    let cluster = TempDir::new("down");
    let issuer = start_issuer(&cluster).await;
    let (status, body) = put_issuer(
        &server,
        TENANT,
        &key,
        "dev",
        json!({"issuer_url": issuer.url}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    bind(&server, &key, "deployer", "dev").await;

    let first = mint(cluster.path(), &audience, None);
    assert_allowed(&exchange(&server, "deployer", &first).await, "issuer up");
    let issuer_url = issuer.url.clone();
    issuer.stop();
    assert!(
        server
            .http
            .get(format!("{issuer_url}/.well-known/openid-configuration"))
            .send()
            .await
            .is_err(),
        "the issuer is down"
    );

    let fresh = mint(cluster.path(), &audience, None);
    assert_ne!(segment(&fresh, 1)["jti"], segment(&first, 1)["jti"]);
    let issued = assert_allowed(
        &exchange(&server, "deployer", &fresh).await,
        "issuer down, key cached",
    );
    assert_eq!(issued["act"]["iss"], issuer_url.as_str());

    // Being down does not turn into accepting what the cached keys do not vouch for.
    let impostor = TempDir::new("down-impostor");
    let forged = mint(impostor.path(), &audience, Some(&issuer_url));
    assert_denied(
        &exchange(&server, "deployer", &forged).await,
        "unknown key while the issuer is down",
    );

    // Without cached keys an unreachable issuer is a denial, not an acceptance.
    let (status, body) = put_issuer(
        &server,
        TENANT,
        &key,
        "gone",
        json!({"issuer_url": issuer_url}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    bind(&server, &key, "gone", "gone").await;
    assert_denied(
        &exchange(&server, "gone", &fresh).await,
        "issuer down, nothing cached",
    );
    let reason = last_denial(&server, TENANT, &key).await;
    assert!(reason.contains("fetch: fetching the"), "{reason}");
}

// --- TokenReview -----------------------------------------------------------------------------

const REVIEWER_TOKEN: &str = "reviewer-secret";
const CLUSTER_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// How the TokenReview double answers the next review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Authenticated,
    NotAuthenticated,
    OtherAudience,
    MalformedUsername,
    ServerError,
    OtherNamespace,
    OtherPod,
}

/// A Kubernetes API server's TokenReview endpoint, as far as Tollgate uses it.
struct ApiServer {
    answer: Mutex<Answer>,
    /// Bodies of the well-formed, authorized reviews received.
    reviews: Mutex<Vec<Value>>,
    /// Requests refused for a missing or wrong bearer token or a malformed body.
    refused: Mutex<Vec<String>>,
}

impl ApiServer {
    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }
}

fn status_object(code: u16, reason: &str, message: &str) -> Json<Value> {
    Json(json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    }))
}

async fn token_review(
    State(api): State<Arc<ApiServer>>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, Json<Value>) {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    if authorization != Some(&format!("Bearer {REVIEWER_TOKEN}")) {
        api.refused
            .lock()
            .unwrap()
            .push(format!("authorization {authorization:?}"));
        return (
            StatusCode::UNAUTHORIZED,
            status_object(401, "Unauthorized", "Unauthorized"),
        );
    }
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let token = request["spec"]["token"].as_str().unwrap_or_default();
    let well_formed = content_type == Some("application/json")
        && request["apiVersion"] == "authentication.k8s.io/v1"
        && request["kind"] == "TokenReview"
        && token.split('.').count() == 3
        && request["spec"]["audiences"].is_array();
    if !well_formed {
        api.refused.lock().unwrap().push(body);
        return (
            StatusCode::BAD_REQUEST,
            status_object(400, "BadRequest", "malformed TokenReview"),
        );
    }
    api.reviews.lock().unwrap().push(request.clone());
    let answer = *api.answer.lock().unwrap();
    if answer == Answer::ServerError {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            status_object(500, "InternalError", "etcdserver: request timed out"),
        );
    }
    // The API server knows the objects' uids; the dev token carries the same ones.
    let claims = segment(token, 1);
    let k8s = &claims["kubernetes.io"];
    let namespace = match answer {
        Answer::OtherNamespace => "staging",
        _ => "prod",
    };
    let username = match answer {
        Answer::MalformedUsername => "system:serviceaccount:prod".to_owned(),
        _ => format!("system:serviceaccount:{namespace}:deployer"),
    };
    // The pod the token was bound to was deleted and recreated (or the token was taken from
    // another pod): the API server vouches for another pod uid.
    let pod_uid = match answer {
        Answer::OtherPod => json!("00000000-0000-4000-8000-000000000000"),
        _ => k8s["pod"]["uid"].clone(),
    };
    let audiences = match answer {
        Answer::OtherAudience => json!(["https://kubernetes.default.svc"]),
        _ => request["spec"]["audiences"].clone(),
    };
    let status = if answer == Answer::NotAuthenticated {
        json!({"authenticated": false, "user": {}, "error": "invalid bearer token, token has been invalidated"})
    } else {
        json!({
            "authenticated": true,
            "user": {
                "username": username,
                "uid": k8s["serviceaccount"]["uid"],
                "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{namespace}"), "system:authenticated"],
                "extra": {
                    "authentication.kubernetes.io/credential-id": [format!("JTI={}", claims["jti"].as_str().unwrap_or_default())],
                    "authentication.kubernetes.io/pod-name": [k8s["pod"]["name"]],
                    "authentication.kubernetes.io/pod-uid": [pod_uid],
                },
            },
            "audiences": audiences,
        })
    };
    let mut spec = request["spec"].clone();
    spec["token"] = json!(token);
    let review = json!({
        "kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null}, "spec": spec, "status": status,
    });
    (StatusCode::CREATED, Json(review))
}

/// Serves the double on 127.0.0.1:0; the task ends with the test's runtime.
async fn start_api_server() -> (Arc<ApiServer>, String) {
    let api = Arc::new(ApiServer {
        answer: Mutex::new(Answer::Authenticated),
        reviews: Mutex::new(Vec::new()),
        refused: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .route(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            post(token_review),
        )
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (api, format!("http://{address}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_review_allows_what_the_api_server_vouches_for_and_nothing_else() {
    let (server, key, audience) = server_with_tenant().await;
    let (api, api_url) = start_api_server().await;
    let source = json!({"mode": "token_review", "api_server": api_url, "ca_pem": null, "reviewer_token": REVIEWER_TOKEN});
    let (status, body) = put_issuer(
        &server,
        TENANT,
        &key,
        "cluster",
        json!({"issuer_url": CLUSTER_ISSUER, "source": source}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"]["reviewer_token"], "<redacted>");
    bind(&server, &key, "deployer", "cluster").await;

    // The cluster's key is never shown to Tollgate: only the API server judges the token.
    let cluster = TempDir::new("token-review");
    let token = mint(cluster.path(), &audience, Some(CLUSTER_ISSUER));
    let issued = assert_allowed(
        &exchange(&server, "deployer", &token).await,
        "authenticated",
    );
    assert_eq!(issued["act"]["sub"], "system:serviceaccount:prod:deployer");
    assert_eq!(issued["act"]["iss"], CLUSTER_ISSUER);
    assert_eq!(issued["kubernetes"]["namespace"], "prod");
    assert_eq!(issued["kubernetes"]["service_account"], "deployer");
    assert_eq!(issued["kubernetes"]["pod"], "api-1");
    {
        let reviews = api.reviews.lock().unwrap();
        assert_eq!(reviews.len(), 1, "{reviews:?}");
        assert_eq!(reviews[0]["spec"]["token"], token.as_str());
        assert_eq!(reviews[0]["spec"]["audiences"], json!([audience]));
        assert!(api.refused.lock().unwrap().is_empty());
    }

    let cases = [
        (
            Answer::NotAuthenticated,
            "token_review_denied: token review denied: not authenticated",
        ),
        (
            Answer::OtherAudience,
            "token_review_denied: token review denied: no accepted audience",
        ),
        (
            Answer::MalformedUsername,
            "token_review_denied: token review denied: user is not a service account",
        ),
        (
            Answer::ServerError,
            "token_review_failed: token review failed: server answered with status 500",
        ),
        (
            Answer::OtherNamespace,
            "token_review_denied: token review denied: token `sub` disagrees with the review",
        ),
        (
            Answer::OtherPod,
            "token_review_denied: token review denied: token `pod.uid` disagrees with the review",
        ),
    ];
    for (answer, expected) in cases {
        api.set(answer);
        let context = format!("{answer:?}");
        assert_denied(&exchange(&server, "deployer", &token).await, &context);
        let reason = last_denial(&server, TENANT, &key).await;
        assert!(reason.contains(expected), "{context}: {reason}");
    }

    // The API server vouches for prod:deployer, but the token's own claims name another
    // namespace: the token and the review must agree.
    api.set(Answer::Authenticated);
    let mut claims = segment(&token, 1);
    claims["sub"] = json!("system:serviceaccount:staging:deployer");
    claims["kubernetes.io"]["namespace"] = json!("staging");
    let disagreeing = with_payload(&token, &claims);
    assert_denied(
        &exchange(&server, "deployer", &disagreeing).await,
        "token namespace disagrees",
    );
    let reason = last_denial(&server, TENANT, &key).await;
    assert!(
        reason.contains("token_review_denied: token review denied: token `sub` disagrees"),
        "{reason}"
    );
    // A token whose own `sub` and `kubernetes.io` disagree is refused before the API server is
    // asked (and, like any token refused before its identity is looked up, not recorded).
    let asked = api.reviews.lock().unwrap().len();
    let recorded = server.decisions(TENANT, &key).await.len();
    let mut claims = segment(&token, 1);
    claims["kubernetes.io"]["namespace"] = json!("staging");
    assert_denied(
        &exchange(&server, "deployer", &with_payload(&token, &claims)).await,
        "token's own claims disagree",
    );
    assert_eq!(
        api.reviews.lock().unwrap().len(),
        asked,
        "a review was asked"
    );
    assert_eq!(server.decisions(TENANT, &key).await.len(), recorded);

    // A token of another issuer is refused before the API server is asked.
    let asked = api.reviews.lock().unwrap().len();
    let foreign = mint(
        cluster.path(),
        &audience,
        Some("https://other-cluster.example"),
    );
    assert_denied(
        &exchange(&server, "deployer", &foreign).await,
        "other issuer",
    );
    let reason = last_denial(&server, TENANT, &key).await;
    assert!(reason.contains("iss: issuer does not match"), "{reason}");
    assert_eq!(
        api.reviews.lock().unwrap().len(),
        asked,
        "no review was asked"
    );

    // A wrong reviewer token: the API server refuses the review, the exchange is denied.
    let source = json!({"mode": "token_review", "api_server": api_url, "ca_pem": null, "reviewer_token": "stale-reviewer"});
    let (status, body) = put_issuer(
        &server,
        TENANT,
        &key,
        "cluster",
        json!({"issuer_url": CLUSTER_ISSUER, "source": source}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_denied(
        &exchange(&server, "deployer", &token).await,
        "wrong reviewer token",
    );
    let reason = last_denial(&server, TENANT, &key).await;
    assert!(
        reason
            .contains("token_review_failed: token review failed: server answered with status 401"),
        "{reason}"
    );
    assert_eq!(api.refused.lock().unwrap().len(), 1);

    // The decision log shows each denial with the verify layer's code, and the one allow.
    let decisions = server.decisions(TENANT, &key).await;
    let reasons: Vec<&str> = decisions
        .iter()
        .filter(|d| d["allowed"] == false)
        .filter_map(|d| d["reason"].as_str())
        .collect();
    assert_eq!(reasons.len(), 9, "{reasons:#?}");
    for (_, expected) in cases {
        assert!(
            reasons.iter().any(|r| r.contains(expected)),
            "{expected} in {reasons:#?}"
        );
    }
    let allowed: Vec<&Value> = decisions.iter().filter(|d| d["allowed"] == true).collect();
    assert_eq!(allowed.len(), 1, "{decisions:#?}");
    assert_eq!(allowed[0]["subject"], "system:serviceaccount:prod:deployer");
    assert!(
        decisions
            .iter()
            .all(|d| !d.to_string().contains(REVIEWER_TOKEN)),
        "the reviewer token never reaches the log"
    );
}
