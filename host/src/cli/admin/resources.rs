//! The one-request subcommands: tenants, keys, issuers, policies and identities.

use super::client::{AdminError, Body, Client};
use super::show;
use crate::cli::Format;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Fields of an identity in `apply` order (`identity get` prints them so).
pub const IDENTITY_FIELDS: &[&str] = &[
    "id",
    "issuer",
    "policy",
    "config",
    "scopes",
    "token_audiences",
    "accepted_audiences",
    "ttl_seconds",
    "max_ttl_seconds",
    "num_uses",
    "trusted_cidrs",
    "fuel",
    "cases",
    "shadow",
];

#[derive(Debug, clap::Args)]
pub struct IssuerPut {
    /// The tenant's name.
    pub tenant: String,
    /// The issuer's name within the tenant (identities refer to it).
    pub name: String,
    /// The exact `iss` of the issuer's tokens.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// Trust this JWKS instead of discovery: the JSON itself (as Chainguard's
    /// `--issuer-keys="$(kubectl get --raw /openid/v1/jwks)"`) or a file holding it. Trusted
    /// for 30 days unless `--expires-at` says otherwise: re-register before then.
    #[arg(
        long,
        alias = "static-jwks",
        value_name = "JSON|FILE",
        conflicts_with = "token_review_server"
    )]
    pub issuer_keys: Option<String>,
    /// When the static JWKS stops being trusted (Unix seconds; default: in 30 days).
    #[arg(long, value_name = "UNIX", requires = "issuer_keys")]
    pub expires_at: Option<i64>,
    /// Discovery only: accept a `jwks_uri` on another host than the issuer's (a cluster
    /// started with `--service-account-jwks-uri` pointing elsewhere).
    #[arg(long, conflicts_with_all = ["issuer_keys", "token_review_server"])]
    pub external_jwks_uri: bool,
    /// Verify tokens with this Kubernetes API server's TokenReview API instead.
    #[arg(long, value_name = "URL", requires = "reviewer_token_file")]
    pub token_review_server: Option<String>,
    /// A file holding the token Tollgate presents to the API server.
    #[arg(long, value_name = "FILE", requires = "token_review_server")]
    pub reviewer_token_file: Option<PathBuf>,
    /// The API server's CA certificate (PEM), when it is not publicly trusted.
    #[arg(long, value_name = "FILE", requires = "token_review_server")]
    pub ca_file: Option<PathBuf>,
}

/// Reads a file named on the command line or in a YAML file.
pub fn read(path: &Path, what: &str) -> Result<Vec<u8>, AdminError> {
    std::fs::read(path)
        .map_err(|e| AdminError::Input(format!("cannot read {what} `{}`: {e}", path.display())))
}

fn read_text(path: &Path, what: &str) -> Result<String, AdminError> {
    String::from_utf8(read(path, what)?)
        .map_err(|_| AdminError::Input(format!("{what} `{}` is not UTF-8", path.display())))
}

pub async fn create_tenant(client: &Client, format: Format, name: &str) -> Result<(), AdminError> {
    let body = Body::Json(json!({ "name": name }));
    let tenant = client.send(Method::POST, &["tenants"], &[], body).await?;
    if format == Format::Json {
        show::json(&tenant);
        return Ok(());
    }
    println!("tenant {} created", show::text(&tenant, "name"));
    println!("audience  {}", show::text(&tenant, "audience"));
    println!("api key   {}", show::text(&tenant, "api_key"));
    println!("The API key is shown only this once: keep it (e.g. export TOLLGATE_API_KEY=...).");
    println!(
        "Subject tokens for this tenant need the audience above unless an identity says otherwise."
    );
    Ok(())
}

pub async fn list_tenants(client: &Client, format: Format) -> Result<(), AdminError> {
    let answer = client
        .send(Method::GET, &["tenants"], &[], Body::Empty)
        .await?;
    if format == Format::Json {
        show::json(&answer);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items(&answer, "tenants")
        .iter()
        .map(|t| vec![show::text(t, "name"), show::time(&t["created_at"])])
        .collect();
    show::table(&["NAME", "CREATED"], &rows);
    Ok(())
}

pub async fn create_key(
    client: &Client,
    format: Format,
    tenant: &str,
    role: &str,
) -> Result<(), AdminError> {
    let path = ["tenants", tenant, "keys"];
    let body = Body::Json(json!({ "role": role }));
    let key = client.send(Method::POST, &path, &[], body).await?;
    if format == Format::Json {
        show::json(&key);
        return Ok(());
    }
    println!(
        "{} key {} created for tenant {tenant}",
        show::text(&key, "role"),
        show::text(&key, "id")
    );
    println!("api key   {}", show::text(&key, "api_key"));
    println!("The API key is shown only this once: keep it.");
    Ok(())
}

/// `--issuer-keys`: inline JSON when it looks like a JSON object, else a file's.
fn issuer_keys(value: &str) -> Result<Value, AdminError> {
    let (text, origin) = if value.trim_start().starts_with('{') {
        (value.to_owned(), "the `--issuer-keys` value".to_owned())
    } else {
        let path = Path::new(value);
        (
            read_text(path, "JWKS file")?,
            format!("JWKS file `{}`", path.display()),
        )
    };
    serde_json::from_str(&text).map_err(|e| AdminError::Input(format!("{origin} is not JSON: {e}")))
}

/// The issuer source the flags describe (discovery when none).
fn issuer_source(put: &IssuerPut) -> Result<Value, AdminError> {
    if let Some(keys) = &put.issuer_keys {
        let mut source = json!({"mode": "static_jwks", "jwks": issuer_keys(keys)?});
        if let Some(expires_at) = put.expires_at {
            source["expires_at"] = json!(expires_at);
        }
        return Ok(source);
    }
    if let (Some(server), Some(token_file)) = (&put.token_review_server, &put.reviewer_token_file) {
        let token = read_text(token_file, "reviewer token file")?
            .trim()
            .to_owned();
        let mut source =
            json!({"mode": "token_review", "api_server": server, "reviewer_token": token});
        if let Some(ca) = &put.ca_file {
            source["ca_pem"] = json!(read_text(ca, "CA file")?);
        }
        return Ok(source);
    }
    if put.external_jwks_uri {
        return Ok(json!({"mode": "discovery", "allow_external_jwks_uri": true}));
    }
    Ok(json!({"mode": "discovery"}))
}

pub async fn put_issuer(client: &Client, format: Format, put: IssuerPut) -> Result<(), AdminError> {
    let body = json!({"issuer_url": put.url, "source": issuer_source(&put)?});
    let path = ["tenants", put.tenant.as_str(), "issuers", put.name.as_str()];
    let issuer = client
        .send(Method::PUT, &path, &[], Body::Json(body))
        .await?;
    if format == Format::Json {
        show::json(&issuer);
    } else {
        println!("{}", issuer_line(&put.tenant, &issuer));
    }
    Ok(())
}

/// `issuer tenants/acme/issuers/dev applied (URL, mode)`.
pub fn issuer_line(tenant: &str, issuer: &Value) -> String {
    format!(
        "issuer tenants/{tenant}/issuers/{} applied ({}, {})",
        show::text(issuer, "name"),
        show::text(issuer, "issuer_url"),
        show::text(&issuer["source"], "mode"),
    )
}

pub async fn list_issuers(client: &Client, format: Format, tenant: &str) -> Result<(), AdminError> {
    let path = ["tenants", tenant, "issuers"];
    let answer = client.send(Method::GET, &path, &[], Body::Empty).await?;
    if format == Format::Json {
        show::json(&answer);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items(&answer, "issuers")
        .iter()
        .map(|i| {
            vec![
                show::text(i, "name"),
                show::text(&i["source"], "mode"),
                show::time(&i["updated_at"]),
                show::text(i, "issuer_url"),
            ]
        })
        .collect();
    show::table(&["NAME", "MODE", "UPDATED", "ISSUER URL"], &rows);
    Ok(())
}

pub async fn get_issuer(
    client: &Client,
    format: Format,
    tenant: &str,
    name: &str,
) -> Result<(), AdminError> {
    let path = ["tenants", tenant, "issuers", name];
    let issuer = client.send(Method::GET, &path, &[], Body::Empty).await?;
    if format == Format::Json {
        show::json(&issuer);
        return Ok(());
    }
    let mut issuer = issuer;
    if let Some(source) = issuer["source"].as_object_mut() {
        source.retain(|_, value| !value.is_null());
        // Re-applying `<redacted>` would replace the real token: leave the key out instead.
        if source.remove("reviewer_token").is_some() {
            println!(
                "# the reviewer token is never shown: add `reviewer_token_file: PATH` under \
                 `source` before applying this"
            );
        }
    }
    let fields = ["name", "issuer_url", "source"];
    print!("{}", show::document("issuer", tenant, &issuer, &fields));
    Ok(())
}

/// Deletes `tenants/{tenant}/{collection}/{name}`; `kind` names it in the output.
pub async fn delete(
    client: &Client,
    format: Format,
    tenant: &str,
    (kind, collection): (&str, &str),
    name: &str,
) -> Result<(), AdminError> {
    let path = ["tenants", tenant, collection, name];
    client.send(Method::DELETE, &path, &[], Body::Empty).await?;
    let resource = format!("tenants/{tenant}/{collection}/{name}");
    if format == Format::Json {
        show::json(&json!({ "deleted": resource }));
    } else {
        println!("{kind} {resource} deleted");
    }
    Ok(())
}

pub async fn revoke_identity(
    client: &Client,
    format: Format,
    tenant: &str,
    id: &str,
) -> Result<(), AdminError> {
    let path = ["tenants", tenant, "identities", id, "revoke"];
    let answer = client.send(Method::POST, &path, &[], Body::Empty).await?;
    if format == Format::Json {
        show::json(&answer);
    } else {
        println!(
            "revoked every token of tenants/{tenant}/identities/{id} issued before now ({} sessions)",
            answer["sessions"]
        );
    }
    Ok(())
}

/// What an upload says besides its bytes.
#[derive(Debug, Default, Clone, Copy)]
pub struct Upload<'a> {
    /// The policy name it is a new version of.
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
}

/// Uploads a module: the server's answer (`digest`, `size`, `compile_ms`, ...).
pub async fn upload(
    client: &Client,
    tenant: &str,
    bytes: Vec<u8>,
    upload: Upload<'_>,
) -> Result<Value, AdminError> {
    let query: Vec<(&str, String)> = [("name", upload.name), ("description", upload.description)]
        .into_iter()
        .filter_map(|(key, value)| value.map(|v| (key, v.to_owned())))
        .collect();
    let path = ["tenants", tenant, "policies"];
    client
        .send(Method::POST, &path, &query, Body::Wasm(bytes))
        .await
}

/// `policy tenants/acme/policies/sha256:... uploaded (name, N bytes, compiled in N ms)`.
pub fn policy_line(tenant: &str, policy: &Value) -> String {
    let name = match (policy["name"].as_str(), policy["version"].as_u64()) {
        (Some(name), Some(version)) => format!("{name}@{version}, "),
        (Some(name), None) => format!("{name}, "),
        _ => String::new(),
    };
    let cases = match policy["cases_passed"].as_u64() {
        Some(n) => format!(", its {n} cases pass"),
        None => String::new(),
    };
    format!(
        "policy tenants/{tenant}/policies/{} uploaded ({name}{} bytes, compiled in {} ms{cases})",
        show::text(policy, "digest"),
        show::text(policy, "size"),
        show::text(policy, "compile_ms"),
    )
}

pub async fn upload_policy(
    client: &Client,
    format: Format,
    tenant: &str,
    file: &Path,
    options: Upload<'_>,
) -> Result<(), AdminError> {
    let bytes = read(file, "policy module")?;
    let policy = upload(client, tenant, bytes, options).await?;
    if format == Format::Json {
        show::json(&policy);
    } else {
        println!("{}", policy_line(tenant, &policy));
        super::change::print_followers(&policy);
    }
    Ok(())
}

pub async fn list_policies(
    client: &Client,
    format: Format,
    tenant: &str,
) -> Result<(), AdminError> {
    let path = ["tenants", tenant, "policies"];
    let answer = client.send(Method::GET, &path, &[], Body::Empty).await?;
    if format == Format::Json {
        show::json(&answer);
        return Ok(());
    }
    let mut rows: Vec<Vec<String>> = items(&answer, "builtin")
        .iter()
        .filter_map(Value::as_str)
        .map(|b| vec![b.to_owned(), "-".into(), "-".into(), "built in".into()])
        .collect();
    rows.extend(items(&answer, "policies").iter().map(|p| {
        vec![
            show::text(p, "digest"),
            show::text(p, "size"),
            show::time(&p["uploaded_at"]),
            show::text(p, "name"),
        ]
    }));
    show::table(&["POLICY", "BYTES", "UPLOADED", "NAME"], &rows);
    Ok(())
}

pub async fn get_identity(
    client: &Client,
    format: Format,
    tenant: &str,
    id: &str,
) -> Result<(), AdminError> {
    let path = ["tenants", tenant, "identities", id];
    let mut identity = client.send(Method::GET, &path, &[], Body::Empty).await?;
    if format == Format::Json {
        show::json(&identity);
        return Ok(());
    }
    println!(
        "# {} (uid {}; policy runs {})",
        show::text(&identity, "name"),
        show::text(&identity, "uid"),
        show::text(&identity, "resolved_policy")
    );
    // What the shadow candidate resolves to is the server's to say, not the document's.
    if let Some(shadow) = identity["shadow"].as_object_mut() {
        shadow.remove("resolved");
    }
    print!(
        "{}",
        show::document("identity", tenant, &identity, IDENTITY_FIELDS)
    );
    Ok(())
}

pub async fn list_identities(
    client: &Client,
    format: Format,
    tenant: &str,
) -> Result<(), AdminError> {
    let path = ["tenants", tenant, "identities"];
    let answer = client.send(Method::GET, &path, &[], Body::Empty).await?;
    if format == Format::Json {
        show::json(&answer);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items(&answer, "identities")
        .iter()
        .map(|i| {
            vec![
                show::text(i, "id"),
                show::text(i, "issuer"),
                show::text(i, "policy"),
                show::list(i, "scopes"),
                show::text(i, "uid"),
            ]
        })
        .collect();
    show::table(&["ID", "ISSUER", "POLICY", "SCOPES", "UID"], &rows);
    Ok(())
}

/// The array `field` of an answer (empty when absent).
fn items<'a>(answer: &'a Value, field: &str) -> &'a [Value] {
    answer[field].as_array().map(Vec::as_slice).unwrap_or(&[])
}
