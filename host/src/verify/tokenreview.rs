//! Kubernetes TokenReview: the cluster's API server authenticates the token for us.
//!
//! The token is decoded without verification only to refuse obvious junk early and to
//! cross-check the API server's answer; it is never trusted on its own. Any failure (transport,
//! 5xx, 429, timeout, odd answer) is a denial.

use super::VerifyError;
use super::fetch::SafeFetcher;
use super::jwt::{self, ClaimRules};
use super::{screen, strict_json};
use serde_json::{Map, Value, json};

/// The path of the TokenReview API on an API server.
pub const REVIEW_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
const SA_PREFIX: &str = "system:serviceaccount:";
const EXTRA_PREFIX: &str = "authentication.kubernetes.io/";

/// Where and how to ask for a review.
#[derive(Debug, Clone, Copy)]
pub struct Reviewer<'a> {
    pub api_server: &'a str,
    pub ca_pem: Option<&'a str>,
    pub reviewer_token: &'a str,
}

/// The TokenReview URL of an API server.
pub fn review_url(api_server: &str) -> String {
    format!("{}{REVIEW_PATH}", api_server.trim_end_matches('/'))
}

fn denied(why: impl Into<String>) -> VerifyError {
    VerifyError::TokenReviewDenied(why.into())
}

/// Reviews `token` and returns claims in the shape of a projected ServiceAccount token, built
/// from the API server's answer and screened like a token's own claims (the answer is not
/// trusted to be well-formed).
pub async fn review(
    fetcher: &SafeFetcher,
    reviewer: Reviewer<'_>,
    unverified: &jwt::Jws<'_>,
    rules: &ClaimRules<'_>,
) -> Result<Value, VerifyError> {
    let token = unverified.token();
    jwt::check_claims(&unverified.payload, rules)?;
    let request = json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": { "token": token, "audiences": rules.audiences },
    });
    let answer = fetcher
        .post_json(
            &review_url(reviewer.api_server),
            reviewer.reviewer_token,
            &request,
            reviewer.ca_pem,
        )
        .await
        .map_err(|e| VerifyError::TokenReview(e.to_string()))?;
    let answer = strict_json::parse_object(&answer)
        .map_err(|_| VerifyError::TokenReview("answer is not a JSON object".to_owned()))?;
    let reviewed = read_status(&answer, rules.audiences)?;
    cross_check(&unverified.payload, &reviewed)?;
    // Once reviewed, the token as a whole is authenticated: what the review does not name (pod
    // and node on older clusters) may come from the token itself.
    let reviewed = complete(reviewed, &unverified.payload);
    let claims = claims(&unverified.payload, reviewed, rules.issuer);
    screen::claims(&claims)?;
    Ok(Value::Object(claims))
}

/// What the API server vouched for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Reviewed {
    username: String,
    namespace: String,
    name: String,
    uid: Option<String>,
    audiences: Vec<String>,
    pod: Option<(String, Option<String>)>,
    node: Option<(String, Option<String>)>,
}

fn read_status(answer: &Map<String, Value>, accepted: &[String]) -> Result<Reviewed, VerifyError> {
    let status = answer
        .get("status")
        .and_then(Value::as_object)
        .ok_or_else(|| denied("answer has no status"))?;
    if status.get("authenticated") != Some(&Value::Bool(true)) {
        return Err(denied("not authenticated"));
    }
    let audiences: Vec<String> = status
        .get("audiences")
        .and_then(Value::as_array)
        .ok_or_else(|| denied("answer names no audiences"))?
        .iter()
        .map(|a| {
            a.as_str()
                .map(str::to_owned)
                .ok_or_else(|| denied("bad audience"))
        })
        .collect::<Result<_, _>>()?;
    if !audiences.iter().any(|a| accepted.contains(a)) {
        return Err(denied("no accepted audience"));
    }
    let user = status
        .get("user")
        .and_then(Value::as_object)
        .ok_or_else(|| denied("answer has no user"))?;
    let username = user
        .get("username")
        .and_then(Value::as_str)
        .ok_or_else(|| denied("answer has no username"))?;
    let (namespace, name) = username
        .strip_prefix(SA_PREFIX)
        .and_then(|rest| rest.split_once(':'))
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains(':'))
        .ok_or_else(|| denied("user is not a service account"))?;
    let uid = match user.get("uid") {
        None => None,
        Some(Value::String(uid)) => Some(uid.clone()),
        Some(_) => return Err(denied("bad user uid")),
    };
    let extra = match user.get("extra") {
        None => Map::new(),
        Some(Value::Object(extra)) => extra.clone(),
        Some(_) => return Err(denied("bad user extra")),
    };
    let single = |key: &str| -> Result<Option<String>, VerifyError> {
        match extra.get(&format!("{EXTRA_PREFIX}{key}")) {
            None => Ok(None),
            Some(Value::Array(items)) => match items.as_slice() {
                [Value::String(value)] => Ok(Some(value.clone())),
                _ => Err(denied(format!("extra `{key}` is not a single string"))),
            },
            Some(_) => Err(denied(format!("extra `{key}` is not a list"))),
        }
    };
    let pod = single("pod-name")?.map(|n| single("pod-uid").map(|u| (n, u)));
    let node = single("node-name")?.map(|n| single("node-uid").map(|u| (n, u)));
    Ok(Reviewed {
        username: username.to_owned(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        uid,
        audiences,
        pod: pod.transpose()?,
        node: node.transpose()?,
    })
}

/// Where the token speaks for itself, it must agree with the review.
fn cross_check(payload: &Map<String, Value>, reviewed: &Reviewed) -> Result<(), VerifyError> {
    let mismatch = |what: &str| denied(format!("token `{what}` disagrees with the review"));
    if payload.get("sub").and_then(Value::as_str) != Some(reviewed.username.as_str()) {
        return Err(mismatch("sub"));
    }
    let Some(k8s) = payload.get("kubernetes.io") else {
        return Ok(());
    };
    let k8s = k8s.as_object().ok_or_else(|| mismatch("kubernetes.io"))?;
    let agree = |claim: Option<&Value>, reviewed: Option<&str>, what: &str| match (claim, reviewed)
    {
        (None, _) => Ok(()),
        // Not vouched for separately (older API servers omit the extras): the token is.
        (Some(Value::String(_)), None) => Ok(()),
        (Some(Value::String(c)), Some(r)) if c == r => Ok(()),
        _ => Err(mismatch(what)),
    };
    let field = |obj: &str, key: &str| k8s.get(obj).and_then(|o| o.get(key));
    agree(k8s.get("namespace"), Some(&reviewed.namespace), "namespace")?;
    agree(
        field("serviceaccount", "name"),
        Some(&reviewed.name),
        "serviceaccount.name",
    )?;
    agree(
        field("serviceaccount", "uid"),
        reviewed.uid.as_deref(),
        "serviceaccount.uid",
    )?;
    for (obj, vouched) in [("pod", &reviewed.pod), ("node", &reviewed.node)] {
        if k8s.get(obj).is_some_and(|v| !v.is_object()) {
            return Err(mismatch(obj));
        }
        let (name, uid) = match vouched {
            Some((name, uid)) => (Some(name.as_str()), uid.as_deref()),
            None => (None, None),
        };
        agree(field(obj, "name"), name, &format!("{obj}.name"))?;
        agree(field(obj, "uid"), uid, &format!("{obj}.uid"))?;
    }
    Ok(())
}

/// Fills what the review left out from the token's own (agreeing) `kubernetes.io` claim.
fn complete(mut reviewed: Reviewed, payload: &Map<String, Value>) -> Reviewed {
    let k8s = payload.get("kubernetes.io");
    let text = |obj: &str, key: &str| {
        k8s.and_then(|k| k.get(obj))
            .and_then(|o| o.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if reviewed.uid.is_none() {
        reviewed.uid = text("serviceaccount", "uid");
    }
    for (obj, slot) in [("pod", &mut reviewed.pod), ("node", &mut reviewed.node)] {
        if slot.is_none() {
            *slot = text(obj, "name").map(|name| (name, text(obj, "uid")));
        }
    }
    reviewed
}

/// Projected-token-shaped claims from the review; times and `jti` from the (checked) token.
fn claims(payload: &Map<String, Value>, reviewed: Reviewed, issuer: &str) -> Map<String, Value> {
    let object = |(name, uid): (String, Option<String>)| json!({ "name": name, "uid": uid.unwrap_or_default() });
    let mut k8s = Map::new();
    k8s.insert("namespace".into(), reviewed.namespace.into());
    k8s.insert(
        "serviceaccount".into(),
        object((reviewed.name, reviewed.uid)),
    );
    if let Some(pod) = reviewed.pod {
        k8s.insert("pod".into(), object(pod));
    }
    if let Some(node) = reviewed.node {
        k8s.insert("node".into(), object(node));
    }
    let mut claims = Map::new();
    claims.insert("iss".into(), issuer.into());
    claims.insert("sub".into(), reviewed.username.into());
    claims.insert("aud".into(), reviewed.audiences.into());
    for key in ["exp", "iat", "nbf", "jti"] {
        if let Some(value) = payload.get(key) {
            claims.insert(key.into(), value.clone());
        }
    }
    claims.insert("kubernetes.io".into(), Value::Object(k8s));
    claims
}
