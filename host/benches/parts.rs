//! Where an exchange's CPU goes, part by part, measured in one process side by side.
//!
//! The exchange bench measures the whole server under load over loopback, and its "own work" is
//! what is left after the HTTP floor and the crypto ceiling. This bench takes that remainder
//! apart: it builds the server in this process with the composition root (`App::build`, SQLite,
//! the settings of the exchange bench's server), sets one `rules` identity up over loopback, and
//! then times, in turns, the whole exchange through the router without sockets and each of its
//! parts through the same public calls the handler makes: the token's screening and the
//! identity's lookup, the verification (with and without the RS256 check itself), the decision,
//! the issued token's signature, and the audit record's commit. Every row runs `CONCURRENCY`
//! callers at once on the server's two workers, as at the exchange bench's peak, so the audit
//! log's group commit batches as it does there.
//!
//! Run: `cargo bench -p tollgate --bench parts` (`PARTS_ROUNDS`, `PARTS_CONCURRENCY`).

mod support;

// The server's allocator (host/src/main.rs).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use clap::Parser;
use http_body_util::BodyExt;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::processes::{Issuer, TempDir, serve_args};
use support::stats::{print_table, process_cpu};
use support::{admin, knob};
use tollgate::api::AppState;
use tollgate::app::App;
use tollgate::config::ServeArgs;
use tollgate::exchange::{ExchangeInput, ExchangeService};
use tollgate::store::{DecisionRecord, IdentityRecord};
use tollgate::verify::jwt::Jws;
use tower::ServiceExt;

const PODS: usize = 64;
const TURNS: usize = 10;

#[derive(Parser)]
struct ServeCommand {
    #[command(flatten)]
    serve: ServeArgs,
}

/// One part of the exchange, as the handler runs it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Part {
    /// `POST /oauth2/token` through the router (form, rate limits, handler, JSON answer).
    Router,
    /// The token's screening, the identity's lookup and `exchange_as` (verify, decide, sign,
    /// commit the record).
    Exchange,
    /// The token's screening and the identity's lookup (the identity cache).
    Lookup,
    /// `verify_token`: the issuer's record and key set (cached), the RS256 check, the claims.
    Verify,
    /// The RS256 check alone (jsonwebtoken, the issuer's key), as the crypto ceiling runs it.
    Rs256,
    /// The module's lookup and `decide` (the sandboxed decision and the grant).
    Decide,
    /// Signing the claims of an issued token (ES256, its JSON and base64).
    Sign,
    /// Appending a decision record and waiting for its commit (group commit).
    Audit,
}

const PARTS: [Part; 8] = [
    Part::Router,
    Part::Exchange,
    Part::Lookup,
    Part::Verify,
    Part::Rs256,
    Part::Decide,
    Part::Sign,
    Part::Audit,
];

/// What the rows share: the server's state and router, the requests, and an example of each
/// part's input, taken from an exchange that was allowed.
struct Bench {
    state: AppState,
    router: axum::Router,
    bodies: Vec<String>,
    inputs: Vec<ExchangeInput>,
    claims: Value,
    issued: Value,
    record: DecisionRecord,
    rs256: (jsonwebtoken::DecodingKey, jsonwebtoken::Validation),
}

impl Bench {
    /// The token screened and the identity found, as `run_exchange` does before anything
    /// else: the `Lookup` row, and the first step of every row that needs an identity, so that
    /// subtracting `Lookup` from those rows leaves their own part.
    async fn looked_up<'a>(&self, input: &'a ExchangeInput) -> (Jws<'a>, IdentityRecord) {
        let token = ExchangeService::screen_token(&input.subject_token).expect("screen");
        let identity = self
            .state
            .exchange
            .find_identity(&input.identity)
            .await
            .expect("found");
        (token, identity)
    }

    async fn run(&self, part: Part, i: usize) {
        let exchange = &self.state.exchange;
        let input = &self.inputs[i % self.inputs.len()];
        match part {
            Part::Router => {
                let request = axum::http::Request::post("/oauth2/token")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .extension(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))))
                    .body(Body::from(self.bodies[i % self.bodies.len()].clone()))
                    .expect("request");
                let response = self.router.clone().oneshot(request).await.expect("answer");
                let status = response.status();
                let body = response.into_body().collect().await.expect("body");
                assert_eq!(status, 200, "{:?}", body.to_bytes());
            }
            Part::Exchange => {
                let (token, identity) = self.looked_up(input).await;
                let issued = exchange.exchange_as(&identity, input, token).await;
                assert!(issued.is_ok(), "{issued:?}");
            }
            Part::Lookup => {
                let (token, identity) = self.looked_up(input).await;
                std::hint::black_box((token, identity));
            }
            Part::Verify => {
                let (token, identity) = self.looked_up(input).await;
                let claims = exchange
                    .verify_token(&identity, token, tollgate::common::unix_now())
                    .await
                    .expect("verified");
                std::hint::black_box(claims);
            }
            Part::Rs256 => {
                let (key, validation) = &self.rs256;
                let claims = jsonwebtoken::decode::<Value>(&input.subject_token, key, validation)
                    .expect("verify");
                std::hint::black_box(claims);
            }
            Part::Decide => {
                let (_, identity) = self.looked_up(input).await;
                let module = exchange
                    .policy_module(&identity.tenant, identity.policy_address())
                    .await
                    .expect("module");
                let candidate = exchange.shadow_candidate(&identity).await;
                let now = tollgate::common::unix_now();
                let decided =
                    exchange.decide(&identity, module, candidate, &self.claims, input, now);
                assert!(decided.outcome.is_ok(), "{:?}", decided.outcome);
            }
            Part::Sign => {
                let token = exchange.signer.sign(&self.issued).expect("signed");
                std::hint::black_box(token);
            }
            Part::Audit => {
                exchange
                    .decisions
                    .append(self.record.clone())
                    .await
                    .expect("committed");
            }
        }
    }
}

/// The claims of an issued access token (its payload, decoded).
fn payload(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWS");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&json).expect("JSON claims")
}

fn main() {
    let rounds = knob("PARTS_ROUNDS", 20_000) as usize;
    let concurrency = knob("PARTS_CONCURRENCY", 16) as usize;
    let scratch = TempDir::new("parts");
    let issuer = Issuer::start(&scratch.path().join("issuer"));
    let data = scratch.path().join("server");
    let argv = serve_args("127.0.0.1:0", data.to_str().expect("a UTF-8 path"));
    let args = ServeCommand::parse_from(argv).serve;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let app = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .expect("bind");
        let local = listener.local_addr().expect("address");
        let app = Arc::new(App::build(&args, local).await.expect("server"));
        let serving = app.clone();
        tokio::spawn(async move { serving.serve(listener, std::future::pending()).await });
        app
    });
    let url = app.public_url.clone();
    let bench = runtime.block_on(set_up(&app, &url, &issuer));
    let bench = Arc::new(bench);

    println!(
        "parts bench: {} cores, {rounds} calls per row in {TURNS} turns, {concurrency} at once",
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    let per_turn = rounds / TURNS / concurrency;
    let mut cpu = [Duration::ZERO; PARTS.len()];
    let mut wall = [Duration::ZERO; PARTS.len()];
    let mut calls = [0usize; PARTS.len()];
    // `PARTS_ONLY=Router` (a part's name) spins that row alone, for a profiler.
    let only = std::env::var("PARTS_ONLY").ok();
    for turn in 0..=TURNS {
        for (p, part) in PARTS.iter().enumerate() {
            if only
                .as_ref()
                .is_some_and(|only| *only != format!("{part:?}"))
            {
                continue;
            }
            let (spent, took) = runtime.block_on(timed(&bench, *part, concurrency, per_turn));
            // Turn 0 warms every part up and is not counted.
            if turn > 0 {
                cpu[p] += spent;
                wall[p] += took;
                calls[p] += concurrency * per_turn;
            }
        }
    }
    let micros = |d: Duration, n: usize| d.as_secs_f64() * 1e6 / n as f64;
    let per = |part: Part| {
        let p = PARTS.iter().position(|q| *q == part).expect("a part");
        micros(cpu[p], calls[p])
    };
    let rows: Vec<Vec<String>> = PARTS
        .iter()
        .enumerate()
        .map(|(p, part)| {
            vec![
                format!("{part:?}"),
                format!("{:.1}", micros(cpu[p], calls[p])),
                format!("{:.1}", micros(wall[p], calls[p])),
                describe(*part).into(),
            ]
        })
        .collect();
    print_table(&["part", "CPU µs/call", "wall µs/call", "what"], &rows);
    let crypto = per(Part::Rs256) + per(Part::Sign);
    // The verify and decide rows each look the identity up first, as the handler does once.
    let verify = per(Part::Verify) - per(Part::Lookup);
    let decide = per(Part::Decide) - per(Part::Lookup);
    let parts = per(Part::Lookup) + verify + decide + per(Part::Sign) + per(Part::Audit);
    println!();
    println!(
        "  the router's exchange: {:.1} µs of CPU; less the crypto (the RS256 check and signing, \
         {crypto:.1} µs): {:.1} µs of Tollgate's own work, hyper's aside",
        per(Part::Router),
        per(Part::Router) - crypto
    );
    println!(
        "  the router and handler around the exchange (form, rate limits, JSON answer): {:.1} µs",
        per(Part::Router) - per(Part::Exchange)
    );
    println!(
        "  verification less the RS256 check (issuer, keys, claims): {:.1} µs",
        verify - per(Part::Rs256)
    );
    println!(
        "  exchange_as less its parts (lookup {:.1}, verify {verify:.1}, decide {decide:.1}, sign \
         {:.1}, audit {:.1}: {parts:.1} µs): {:.1} µs (the record, the issued claims, metrics)",
        per(Part::Lookup),
        per(Part::Sign),
        per(Part::Audit),
        per(Part::Exchange) - parts
    );
}

fn describe(part: Part) -> &'static str {
    match part {
        Part::Router => "POST /oauth2/token through the router, no sockets",
        Part::Exchange => "screen, look up, exchange_as (verify, decide, sign, audit)",
        Part::Lookup => "screen the token, look the identity up",
        Part::Verify => "screen + lookup + verify_token (issuer, keys, RS256, claims)",
        Part::Rs256 => "the RS256 check alone (jsonwebtoken)",
        Part::Decide => "screen + lookup + module + decide (sandboxed rules, grant)",
        Part::Sign => "sign an issued token's claims (ES256)",
        Part::Audit => "append one decision record, wait for its commit",
    }
}

/// `concurrency` callers each running `part` `calls` times: the process's CPU and the wall time.
async fn timed(
    bench: &Arc<Bench>,
    part: Part,
    concurrency: usize,
    calls: usize,
) -> (Duration, Duration) {
    let cpu = process_cpu();
    let started = Instant::now();
    let callers: Vec<_> = (0..concurrency)
        .map(|c| {
            let bench = bench.clone();
            tokio::spawn(async move {
                for i in 0..calls {
                    bench.run(part, c * calls + i).await;
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.expect("caller");
    }
    (process_cpu() - cpu, started.elapsed())
}

/// One tenant, one `rules` identity, 64 pods' tokens; one allowed exchange gives each part's
/// example input.
async fn set_up(app: &App, url: &str, issuer: &Issuer) -> Bench {
    let http = admin::client();
    let tenant = admin::create_tenant(&http, url, "bench", issuer).await;
    admin::put_identity(&http, url, &tenant, "deployer", "builtin:rules").await;
    let identity = format!("tenants/{}/identities/deployer", tenant.name);
    let tokens: Vec<String> = (0..PODS)
        .map(|pod| admin::subject_token(issuer, &tenant.audience, &format!("api-{pod}")))
        .collect();
    let bodies = tokens
        .iter()
        .map(|t| admin::exchange_body(&identity, t))
        .collect();
    let inputs: Vec<ExchangeInput> = tokens
        .iter()
        .map(|t| ExchangeInput {
            identity: identity.clone(),
            subject_token: t.clone(),
            client_address: Some("127.0.0.1".into()),
            ..ExchangeInput::default()
        })
        .collect();
    let exchange = &app.state.exchange;
    let found = exchange.find_identity(&identity).await.expect("identity");
    let token = ExchangeService::screen_token(&tokens[0]).expect("screen");
    let claims = exchange
        .verify_token(&found, token, tollgate::common::unix_now())
        .await
        .expect("verified");
    let token = ExchangeService::screen_token(&tokens[0]).expect("screen");
    let issued = exchange
        .exchange_as(&found, &inputs[0], token)
        .await
        .expect("allowed");
    // The record as the exchange wrote it, with the policy request kept for replay.
    let record = exchange
        .store
        .replayable_decisions(&tenant.name, "deployer", 0, 1)
        .await
        .expect("decisions")
        .pop()
        .expect("the exchange's record");
    assert!(record.request.is_some(), "the record keeps its request");
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(issuer.keys.current().public_jwk()).expect("issuer jwk");
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("decoding key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[&tenant.audience]);
    validation.set_issuer(&[&issuer.url]);
    Bench {
        state: app.state.clone(),
        router: app.router.clone(),
        bodies,
        inputs,
        claims,
        issued: payload(&issued.access_token),
        record,
        rs256: (key, validation),
    }
}
