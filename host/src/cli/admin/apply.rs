//! `tollgate admin apply -f FILE.yaml`: issuers, policies and identities from YAML, applied in
//! order; the first refusal stops the run and says what was applied before it.

use super::client::{AdminError, Body, Client};
use super::documents::{self, Document, Identity, Resource};
use super::resources::{self, issuer_line, policy_line};
use super::show;
use crate::cli::Format;
use reqwest::Method;
use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};

/// `apply --help`.
pub const LONG_ABOUT: &str = "\
Apply a YAML file of issuers, policies and identities, in order.

Documents are separated by `---`. Issuers and identities are created or replaced; policies are
uploaded (the same bytes give the same digest). Paths are relative to the YAML file. Every
document is checked and every file read before anything is sent; unknown keys are errors.
Prints one line per resource. Exit status: 0 when all were applied, 1 at the first refusal
(saying which were applied before it), 2 when the file cannot be used.

Example (tollgate admin apply -f acme.yaml):

  kind: issuer
  tenant: acme
  name: dev
  issuer_url: http://127.0.0.1:8081
  source: { mode: discovery }     # or static_jwks (jwks_file, expires_at),
                                  # token_review (api_server, reviewer_token_file, ca_file)
  ---
  kind: policy
  tenant: acme
  file: target/wasm32-wasip2/release/team_scopes.wasm
  name: team-scopes               # a new version of `team-scopes` when the module changed
  description: team-b may deploy  # kept with the version
  ---
  kind: identity
  tenant: acme
  id: deployer
  issuer: dev
  policy: builtin:rules           # or team-scopes (its newest version, followed),
                                  # team-scopes@2 (pinned), sha256:..., builtin:cel,
                                  # or `policy_file: x.wasm` (uploaded first)
  config: { namespaces: [prod], grant: { scopes: [registry.pull] } }
  scopes: [registry.pull]
  token_audiences: [https://registry.example]
  ttl_seconds: 900
  cases:                          # must pass on every version before the identity runs it
    - name: prod deployer
      token: { sub: \"system:serviceaccount:prod:deployer\",
               \"kubernetes.io\": { namespace: prod, serviceaccount: { name: deployer, uid: u1 } } }
      expect: allow
  shadow: { policy: team-scopes@3, sample: 0.25 }   # run beside it on a quarter of exchanges";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The YAML file, or `-` for standard input.
    #[arg(short = 'f', long = "file", value_name = "FILE.yaml")]
    file: PathBuf,
}

/// What was applied so far: printed as it happens (text) or at the end (JSON).
struct Progress {
    format: Format,
    names: Vec<String>,
    answers: Vec<Value>,
}

impl Progress {
    fn record(&mut self, document: usize, name: String, line: String, answer: Value) {
        if self.format == Format::Text {
            println!("{line}");
        }
        self.answers
            .push(json!({"document": document, "name": name, "result": answer}));
        self.names.push(name);
    }

    fn summary(&self) -> String {
        if self.names.is_empty() {
            "nothing was applied".into()
        } else {
            format!("applied before it: {}", self.names.join(", "))
        }
    }
}

pub async fn run(client: &Client, format: Format, args: Args) -> Result<(), AdminError> {
    let (text, origin, base) = load(&args.file)?;
    let documents = documents::parse(&text, &origin, &base)?;
    let mut progress = Progress {
        format,
        names: Vec::new(),
        answers: Vec::new(),
    };
    let mut result = Ok(());
    for document in &documents {
        if let Err(error) = apply(client, document, &mut progress).await {
            result = Err(AdminError::Apply {
                document: format!("{origin}: {}", document.label()),
                cause: Box::new(error),
                applied: progress.summary(),
            });
            break;
        }
    }
    if format == Format::Json {
        show::json(&json!({ "applied": progress.answers }));
    }
    result
}

/// The text, its name for messages and the directory its paths are relative to.
fn load(file: &Path) -> Result<(String, String, PathBuf), AdminError> {
    if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| AdminError::Input(format!("cannot read standard input: {e}")))?;
        return Ok((text, "<stdin>".into(), PathBuf::from(".")));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| AdminError::Input(format!("cannot read `{}`: {e}", file.display())))?;
    let base = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    Ok((text, file.display().to_string(), base))
}

async fn apply(
    client: &Client,
    document: &Document,
    progress: &mut Progress,
) -> Result<(), AdminError> {
    let index = document.index;
    match &document.resource {
        Resource::Issuer(doc) => {
            let mut body = json!({ "issuer_url": doc.issuer_url });
            if let Some(source) = &doc.source {
                body["source"] = source.clone();
            }
            let path = ["tenants", doc.tenant.as_str(), "issuers", doc.name.as_str()];
            let answer = client
                .send(Method::PUT, &path, &[], Body::Json(body))
                .await?;
            let name = format!("tenants/{}/issuers/{}", doc.tenant, doc.name);
            progress.record(index, name, issuer_line(&doc.tenant, &answer), answer);
        }
        Resource::Policy(doc, bytes) => {
            let options = resources::Upload {
                name: doc.name.as_deref(),
                description: doc.description.as_deref(),
            };
            upload(client, index, &doc.tenant, bytes, options, progress).await?;
        }
        Resource::Identity(doc, module) => {
            let policy = match (module, &doc.policy) {
                (Some(bytes), _) => {
                    let options = resources::Upload::default();
                    Some(upload(client, index, &doc.tenant, bytes, options, progress).await?)
                }
                // A name is the server's to resolve: the identity follows it.
                (None, policy) => policy.clone(),
            };
            let path = [
                "tenants",
                doc.tenant.as_str(),
                "identities",
                doc.id.as_str(),
            ];
            let body = identity_body(doc, policy);
            let answer = client
                .send(Method::PUT, &path, &[], Body::Json(body))
                .await?;
            let name = format!("tenants/{}/identities/{}", doc.tenant, doc.id);
            let line = format!(
                "identity {name} applied (uid {}, policy {})",
                show::text(&answer, "uid"),
                show::text(&answer, "policy")
            );
            progress.record(index, name, line, answer);
        }
    }
    Ok(())
}

/// Uploads a module and records it: its digest.
async fn upload(
    client: &Client,
    index: usize,
    tenant: &str,
    bytes: &[u8],
    options: resources::Upload<'_>,
    progress: &mut Progress,
) -> Result<String, AdminError> {
    let answer = resources::upload(client, tenant, bytes.to_vec(), options).await?;
    let digest = answer["digest"]
        .as_str()
        .ok_or_else(|| AdminError::Protocol("the upload answer has no `digest`".into()))?
        .to_owned();
    let resource = format!("tenants/{tenant}/policies/{digest}");
    progress.record(index, resource, policy_line(tenant, &answer), answer);
    Ok(digest)
}

/// The PUT body: the document's spec, with `policy` resolved to the module it names.
fn identity_body(doc: &Identity, policy: Option<String>) -> Value {
    let mut spec = doc.spec.clone();
    if let Some(policy) = policy {
        spec.policy = policy;
    }
    serde_json::to_value(spec).unwrap_or(Value::Null)
}
