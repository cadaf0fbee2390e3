//! What a decision record keeps of the policy's request for replay: the verified claims and the
//! exchange around them (never the token or its signature), and the policy's answer; and the
//! shadow candidate's answer beside the policy's.

use crate::policy::{Answer, ExchangeContext};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The policy request of a recorded decision (`decisions.request`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// The verified token's claims, as the policy saw them.
    pub claims: Value,
    /// The audience the exchange was for.
    pub audience: String,
    /// The scopes it asked for.
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub client_address: Option<String>,
    /// When it was decided.
    pub now: i64,
    /// What the policy answered.
    pub answer: Answer,
}

impl RecordedRequest {
    /// The exchange context to evaluate it again for `tenant`'s identity `identity`.
    pub fn context(&self, tenant: &str, identity: &str) -> ExchangeContext {
        ExchangeContext {
            tenant: tenant.to_owned(),
            identity: identity.to_owned(),
            requested_audiences: vec![self.audience.clone()],
            requested_scopes: self.scopes.clone(),
            client_address: self.client_address.clone(),
            now: self.now,
        }
    }
}

impl RecordedRequest {
    /// The JSON text a record keeps, written from borrowed parts: an exchange neither copies
    /// the claims nor builds a value of them to keep them.
    pub fn text(
        claims: &Value,
        audience: &str,
        scopes: &[String],
        client_address: Option<&str>,
        now: i64,
        answer: &Answer,
    ) -> Option<String> {
        #[derive(Serialize)]
        struct Borrowed<'a> {
            claims: &'a Value,
            audience: &'a str,
            scopes: &'a [String],
            client_address: Option<&'a str>,
            now: i64,
            answer: &'a Answer,
        }
        serde_json::to_string(&Borrowed {
            claims,
            audience,
            scopes,
            client_address,
            now,
            answer,
        })
        .ok()
    }
}

/// A shadow candidate's evaluation next to the policy's (`decisions.shadow`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowAnswer {
    /// The candidate module.
    pub candidate: String,
    pub agrees: bool,
    pub policy_answer: Answer,
    pub candidate_answer: Answer,
    pub candidate_fuel: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_kept_text_reads_back_as_the_request() {
        let answer = Answer {
            allowed: true,
            code: None,
            scopes: vec!["a".into()],
        };
        let claims = json!({"sub": "system:serviceaccount:prod:app", "iat": 1});
        let scopes = vec!["a".to_owned()];
        let text =
            RecordedRequest::text(&claims, "aud", &scopes, Some("10.0.0.1"), 5, &answer).unwrap();
        let read: RecordedRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(
            read,
            RecordedRequest {
                claims,
                audience: "aud".into(),
                scopes,
                client_address: Some("10.0.0.1".into()),
                now: 5,
                answer,
            }
        );
        assert!(!text.contains("token"), "{text}");
    }
}
