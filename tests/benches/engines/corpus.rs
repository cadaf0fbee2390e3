//! The decision corpus: a few identities with different `rules` configs, and deterministic
//! verified-claims payloads against them, about half allowed and every rule kind denying some.
//!
//! Every pattern is of a shape all five engines can express exactly (see `cedar.rs`): a literal,
//! one `*` anywhere, or any number of `**`. Array-valued claims are matched with literal
//! patterns only (Cedar has no quantifier over set elements).

use serde_json::{Value, json};

/// Seconds since the epoch at which every decision is taken.
pub const NOW: i64 = 1_700_000_000;

/// xorshift64*: deterministic, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn hex(&mut self, len: usize) -> String {
        format!("{:016x}", self.next())[..len].to_owned()
    }
}

/// One identity: its tenant and name, its `rules` config and a generator of valid tokens.
pub struct Identity {
    pub tenant: &'static str,
    pub name: &'static str,
    pub config: Value,
    valid: fn(&mut Rng) -> Spec,
}

/// What a token says, before it is rendered as claims.
#[derive(Clone)]
struct Spec {
    ns: String,
    sa: String,
    sa_uid: String,
    sub: Option<String>,
    aud: Vec<String>,
    pod: Option<String>,
    node: Option<String>,
    iat: Option<i64>,
    ext: Option<Value>,
    kubernetes: bool,
}

impl Spec {
    fn new(rng: &mut Rng, ns: &str, sa: &str, aud: &[&str]) -> Self {
        Spec {
            ns: ns.into(),
            sa: sa.into(),
            sa_uid: format!("sa-{}", rng.hex(8)),
            sub: None,
            aud: aud.iter().map(|a| a.to_string()).collect(),
            pod: Some(format!("app-{}", rng.hex(5))),
            node: None,
            iat: Some(NOW - rng.below(300) as i64),
            ext: None,
            kubernetes: true,
        }
    }

    fn claims(&self, rng: &mut Rng) -> Value {
        let object = |name: &Option<String>, rng: &mut Rng| {
            name.as_ref()
                .map(|n| json!({"name": n, "uid": rng.hex(12)}))
        };
        let mut claims = json!({
            "iss": "https://k8s.example",
            "sub": self.sub.clone().unwrap_or_else(|| format!("system:serviceaccount:{}:{}", self.ns, self.sa)),
            "aud": self.aud,
            "exp": NOW + 3000,
            "jti": rng.hex(16),
        });
        if let Some(iat) = self.iat {
            claims["iat"] = json!(iat);
            claims["nbf"] = json!(iat);
        }
        if self.kubernetes {
            let mut k8s = json!({
                "namespace": self.ns,
                "serviceaccount": {"name": self.sa, "uid": self.sa_uid},
            });
            if let Some(pod) = object(&self.pod, rng) {
                k8s["pod"] = pod;
            }
            if let Some(node) = object(&self.node, rng) {
                k8s["node"] = node;
            }
            claims["kubernetes.io"] = k8s;
        }
        if let Some(ext) = &self.ext {
            claims["ext"] = ext.clone();
        }
        claims
    }
}

const ACME_AUD: &str = "https://sts.example.com/acme";
const CI_UIDS: [&str; 3] = ["sa-ci-0001", "sa-ci-0002", "sa-ci-0003"];

/// The identities of the corpus, one `rules` config each.
pub fn identities() -> Vec<Identity> {
    vec![
        Identity {
            tenant: "acme",
            name: "deployer",
            config: json!({
                "subjects": ["system:serviceaccount:prod:*", "system:serviceaccount:staging:deployer"],
                "namespaces": ["prod", "staging"],
                "service_accounts": ["deployer", "ci-*"],
                "audiences": [ACME_AUD],
                "pod": {"required": true, "names": ["api-*", "worker-*"]},
                "node": {"required": false, "names": ["pool-a-*"]},
                "max_token_age_seconds": 3600,
                "claims": {"/kubernetes.io/pod/name": ["api-*", "worker-*"]},
                "grant": {"scopes": ["registry.pull", "registry.push"], "ttl_seconds": 900}
            }),
            valid: |rng| {
                let staging = rng.chance(25);
                let ns = if staging { "staging" } else { "prod" };
                let sa = if staging {
                    "deployer"
                } else {
                    rng.pick(&["deployer", "ci-runner", "ci-build"])
                };
                let audiences = 1 + rng.below(2) as usize;
                let mut s = Spec::new(rng, ns, sa, &[ACME_AUD, "tollgate"][..audiences]);
                s.pod = Some(format!("{}-{}", rng.pick(&["api", "worker"]), rng.hex(6)));
                s.node = rng.chance(50).then(|| format!("pool-a-{}", rng.hex(4)));
                s.iat = Some(NOW - rng.below(3600) as i64);
                s
            },
        },
        Identity {
            tenant: "ci",
            name: "runner",
            config: json!({
                "namespaces": ["ci-*"],
                "service_accounts": ["runner-*"],
                "service_account_uids": CI_UIDS,
                "audiences": ["https://sts.example.com/ci", "tollgate"],
                "max_token_age_seconds": 600,
                "grant": {"scopes": ["artifacts.write"]}
            }),
            valid: |rng| {
                let ns = format!("ci-{}", rng.pick(&["main", "pr", "nightly"]));
                let sa = format!("runner-{}", rng.below(40));
                let aud = rng.pick(&["https://sts.example.com/ci", "tollgate"]);
                let mut s = Spec::new(rng, &ns, &sa, &[aud]);
                s.sa_uid = rng.pick(&CI_UIDS).into();
                s.iat = Some(NOW - rng.below(600) as i64);
                s
            },
        },
        Identity {
            tenant: "ml",
            name: "trainer",
            config: json!({
                "subjects": ["system:serviceaccount:batch**"],
                "namespaces": ["batch", "batch-*"],
                "pod": {"required": false},
                "node": {"required": true, "names": ["gpu-*-large", "pool-b-*"]},
                "grant": {"scopes": ["datasets.read"], "ttl_seconds": 3600}
            }),
            valid: |rng| {
                let ns = rng.pick(&["batch", "batch-nightly", "batch-eu"]);
                let sa = rng.pick(&["trainer", "etl"]);
                let mut s = Spec::new(rng, ns, sa, &["tollgate"]);
                s.node = Some(if rng.chance(50) {
                    format!("gpu-{}-large", rng.pick(&["a100", "h100", "l4"]))
                } else {
                    format!("pool-b-{}", rng.below(9))
                });
                if rng.chance(30) {
                    s.pod = None;
                }
                s
            },
        },
        Identity {
            tenant: "platform",
            name: "app",
            config: json!({
                "subjects": ["system:serviceaccount:team-*:app"],
                "claims": {"/ext/groups": ["platform", "sre"], "/ext/tier": ["1", "2"]},
                "grant": {"scopes": ["config.read"]}
            }),
            valid: |rng| {
                let ns = format!("team-{}", rng.pick(&["a", "b", "payments"]));
                let mut s = Spec::new(rng, &ns, "app", &["tollgate"]);
                let group = rng.pick(&["platform", "sre"]);
                let groups = if rng.chance(50) {
                    json!([rng.pick(&["dev", "oncall"]), group])
                } else {
                    json!([group])
                };
                s.ext = Some(json!({"groups": groups, "tier": 1 + rng.below(2)}));
                s
            },
        },
        Identity {
            tenant: "analytics",
            name: "reporter",
            config: json!({
                "namespaces": ["analytics"],
                "service_accounts": ["reporter"],
                "audiences": ["https://sts.example.com/analytics", "https://sts.example.com/shared"],
                "pod": {"required": true},
                "claims": {"/ext/team": ["data-*"], "/ext/mfa": ["true"]},
                "grant": {"scopes": ["warehouse.read"], "ttl_seconds": 600}
            }),
            valid: |rng| {
                let aud = rng.pick(&[
                    "https://sts.example.com/analytics",
                    "https://sts.example.com/shared",
                ]);
                let mut s = Spec::new(rng, "analytics", "reporter", &["tollgate", aud]);
                let team = format!("data-{}", rng.pick(&["eng", "science", "ops"]));
                s.ext = Some(json!({"team": team, "mfa": true}));
                s
            },
        },
        Identity {
            tenant: "infra",
            name: "mirror",
            config: json!({
                "subjects": ["system:serviceaccount:**:mirror"],
                "service_account_uids": ["sa-mirror-1", "sa-mirror-2"],
                "max_token_age_seconds": 86400,
                "grant": {"scopes": ["registry.pull"]}
            }),
            valid: |rng| {
                let ns = rng.pick(&["infra", "mirror", "kube-system"]);
                let mut s = Spec::new(rng, ns, "mirror", &["tollgate"]);
                s.sa_uid = rng.pick(&["sa-mirror-1", "sa-mirror-2"]).into();
                s.iat = Some(NOW - rng.below(86400) as i64);
                s
            },
        },
    ]
}

/// One mutation of a valid token; most make some identity's rules deny it.
fn mutate(s: &mut Spec, rng: &mut Rng) {
    match rng.below(14) {
        0 => {
            s.ns = rng
                .pick(&["dev", "prod-eu", "ci", "batchx", "default", "team"])
                .into()
        }
        1 => {
            let sub = format!("system:serviceaccount:{}:{}", s.ns, s.sa);
            s.sub = Some(match rng.below(3) {
                0 => format!("{sub}:extra"),
                1 => format!("system:serviceaccount:{}/x:{}", s.ns, s.sa),
                _ => format!("system:serviceaccount:{}:x:{}", s.ns, s.sa),
            });
        }
        2 => {
            s.sa = rng
                .pick(&["default", "runner", "reporter-2", "deployer-old", "app2"])
                .into()
        }
        3 => s.sa_uid = format!("sa-{}", rng.hex(8)),
        4 => {
            s.aud = vec![
                rng.pick(&["https://sts.example.com/other", "tollgate-dev"])
                    .into(),
            ]
        }
        5 => s.pod = None,
        6 => {
            s.pod = Some(
                rng.pick(&["debug-shell", "api-x:y", "worker", "api-1/x"])
                    .into(),
            )
        }
        7 => s.node = None,
        8 => {
            s.node = Some(
                rng.pick(&["pool-c-1", "gpu-a100-small", "pool-b-x:y"])
                    .into(),
            )
        }
        9 => s.iat = Some(NOW - 601 - rng.below(100_000) as i64),
        10 => s.iat = None,
        11 => s.kubernetes = false,
        _ => {
            s.ext = Some(match rng.below(7) {
                0 => json!({"groups": ["dev"], "tier": 1, "team": "sales", "mfa": false}),
                1 => json!({"groups": "platform", "tier": 2, "team": "data-eng", "mfa": true}),
                2 => json!({"groups": ["sre"], "tier": 3, "team": "data-eng:x", "mfa": "true"}),
                3 => json!({"groups": ["platform"], "tier": "1", "team": 7, "mfa": true}),
                4 => json!({"groups": [["sre"]], "tier": 1.5, "team": "data-", "mfa": true}),
                5 => json!({"groups": ["platform"]}),
                _ => json!({"team": null, "tier": true, "mfa": [true]}),
            });
        }
    }
}

/// One decision to take: an identity (index into [`identities`]) and verified claims.
pub struct Case {
    pub identity: usize,
    pub claims: Value,
}

/// `count` cases over `identities`, deterministic for a given seed.
pub fn cases(identities: &[Identity], count: usize, seed: u64) -> Vec<Case> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let identity = rng.below(identities.len() as u64) as usize;
            let mut spec = (identities[identity].valid)(&mut rng);
            // About half of the mutations touch a rule the identity has: ~half are denied.
            if rng.chance(85) {
                mutate(&mut spec, &mut rng);
                if rng.chance(40) {
                    mutate(&mut spec, &mut rng);
                }
            }
            Case {
                identity,
                claims: spec.claims(&mut rng),
            }
        })
        .collect()
}
