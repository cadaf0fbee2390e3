//! Moves values between the wit-bindgen types and the SDK's own (no string is copied).

use crate::bindings::tollgate::policy::types as wit;
use crate::{Decision, Exchange, KubernetesClaims, ObjectRef, Request, Token};

fn object(o: wit::ObjectRef) -> ObjectRef {
    ObjectRef {
        name: o.name,
        uid: o.uid,
    }
}

pub fn request(r: wit::Request) -> Request {
    let t = r.token;
    let e = r.exchange;
    Request {
        token: Token {
            issuer: t.issuer,
            subject: t.subject,
            audiences: t.audiences,
            issued_at: t.issued_at,
            not_before: t.not_before,
            expires_at: t.expires_at,
            jwt_id: t.jwt_id,
            kubernetes: t.kubernetes.map(|k| KubernetesClaims {
                namespace: k.namespace,
                service_account: object(k.service_account),
                pod: k.pod.map(object),
                node: k.node.map(object),
                secret: k.secret.map(object),
            }),
            claims_json: t.claims_json,
        },
        exchange: Exchange {
            tenant: e.tenant,
            identity: e.identity,
            requested_audiences: e.requested_audiences,
            requested_scopes: e.requested_scopes,
            client_address: e.client_address,
            now: e.now,
        },
        config: r.config,
    }
}

pub fn decision(d: Decision) -> wit::Decision {
    match d {
        Decision::Allow(g) => wit::Decision::Allow(wit::Grant {
            scopes: g.scopes,
            ttl_seconds: g.ttl_seconds,
            claims: g.claims,
        }),
        Decision::Deny(d) => wit::Decision::Deny(wit::Denial {
            code: d.code,
            message: d.message,
        }),
    }
}
