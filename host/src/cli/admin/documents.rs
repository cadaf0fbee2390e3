//! The resources `apply -f` reads: YAML documents of kind `issuer`, `policy` or `identity`.
//! Every document is parsed and every file it names is read before anything is sent, so unusable
//! input never leaves half a file applied.

use super::client::AdminError;
use super::resources::read;
use crate::admin::bodies::IdentitySpec;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `kind: issuer`: the body of `PUT .../issuers/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerDoc {
    #[serde(rename = "kind")]
    _kind: String,
    pub tenant: String,
    pub name: String,
    pub issuer_url: String,
    /// `{mode: discovery | static_jwks | token_review, ...}`; `jwks_file`, `reviewer_token_file`
    /// and `ca_file` are read relative to the YAML file.
    pub source: Option<Value>,
}

/// `kind: policy`: a module to upload.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    #[serde(rename = "kind")]
    _kind: String,
    pub tenant: String,
    /// Relative to the YAML file.
    pub file: PathBuf,
    /// The policy name it is a new version of; identities may say `policy: NAME`.
    pub name: Option<String>,
    /// What changed, kept with the version.
    pub description: Option<String>,
}

/// `kind: identity`: where the identity goes, a module to upload first, and the rest of the
/// document, which is the API's own [`IdentitySpec`] (read by the same type the server reads).
#[derive(Debug, Deserialize)]
pub struct IdentityDoc {
    #[serde(rename = "kind")]
    _kind: String,
    pub tenant: String,
    pub id: String,
    /// A module to upload first; the identity then uses its digest.
    pub policy_file: Option<PathBuf>,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

/// An identity document, read.
#[derive(Debug)]
pub struct Identity {
    pub tenant: String,
    pub id: String,
    pub policy_file: Option<PathBuf>,
    /// `policy` as the document wrote it: `builtin:rules`, `sha256:...`, or the name of a
    /// policy uploaded earlier in the file.
    pub policy: Option<String>,
    pub spec: IdentitySpec,
}

impl IdentityDoc {
    /// The document's body as an [`IdentitySpec`]: unknown keys are refused by its name.
    fn read(self) -> Result<Identity, String> {
        let policy = self
            .rest
            .get("policy")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let spec =
            IdentitySpec::deserialize(Value::Object(self.rest)).map_err(|e| e.to_string())?;
        Ok(Identity {
            tenant: self.tenant,
            id: self.id,
            policy_file: self.policy_file,
            policy,
            spec,
        })
    }
}

/// One resource, with the bytes of the module it names.
pub enum Resource {
    Issuer(IssuerDoc),
    Policy(PolicyDoc, Vec<u8>),
    Identity(Box<Identity>, Option<Vec<u8>>),
}

/// A resource and its place in the file.
pub struct Document {
    /// 1-based, counting empty documents too (as an editor shows them).
    pub index: usize,
    pub resource: Resource,
}

impl Document {
    /// `document 2 (identity acme/deployer)`.
    pub fn label(&self) -> String {
        let what = match &self.resource {
            Resource::Issuer(d) => format!("issuer {}/{}", d.tenant, d.name),
            Resource::Policy(d, _) => format!("policy {}/{}", d.tenant, d.file.display()),
            Resource::Identity(d, _) => format!("identity {}/{}", d.tenant, d.id),
        };
        format!("document {} ({what})", self.index)
    }
}

/// Parses all documents of `text`; `origin` names the file in messages and `base` is the
/// directory relative paths start from.
pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Vec<Document>, AdminError> {
    let fail = |index: usize, message: String| {
        AdminError::Input(format!("{origin}: document {index}: {message}"))
    };
    // First pass: syntax and kinds. Deserializing the typed document straight from the parser
    // (second pass) keeps line numbers in its errors, which a `Value` round trip would lose.
    let mut kinds = Vec::new();
    for (i, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value =
            serde_yaml_ng::Value::deserialize(document).map_err(|e| fail(i + 1, e.to_string()))?;
        let kind = match &value {
            serde_yaml_ng::Value::Null => None,
            serde_yaml_ng::Value::Mapping(map) => match map.get("kind") {
                Some(serde_yaml_ng::Value::String(kind)) => Some(kind.clone()),
                _ => {
                    return Err(fail(
                        i + 1,
                        "missing `kind` (issuer, policy or identity)".into(),
                    ));
                }
            },
            _ => return Err(fail(i + 1, "expected a mapping with a `kind`".into())),
        };
        kinds.push(kind);
    }
    let mut documents = Vec::new();
    let parser = serde_yaml_ng::Deserializer::from_str(text);
    for ((i, document), kind) in parser.enumerate().zip(kinds) {
        let index = i + 1;
        let typed = |e: serde_yaml_ng::Error| fail(index, e.to_string());
        let resource = match kind.as_deref() {
            None => continue,
            Some("issuer") => {
                let mut doc = IssuerDoc::deserialize(document).map_err(typed)?;
                if let Some(source) = &mut doc.source {
                    resolve_source_files(source, base).map_err(|m| fail(index, m))?;
                }
                Resource::Issuer(doc)
            }
            Some("policy") => {
                let doc = PolicyDoc::deserialize(document).map_err(typed)?;
                let bytes = read_relative(base, &doc.file, "policy module", index, origin)?;
                Resource::Policy(doc, bytes)
            }
            Some("identity") => {
                let doc = IdentityDoc::deserialize(document)
                    .map_err(typed)?
                    .read()
                    .map_err(|m| fail(index, with_line(text, index, m)))?;
                if doc.policy.is_some() && doc.policy_file.is_some() {
                    return Err(fail(
                        index,
                        "give `policy` or `policy_file`, not both".into(),
                    ));
                }
                let bytes = match &doc.policy_file {
                    Some(file) => Some(read_relative(base, file, "policy module", index, origin)?),
                    None => None,
                };
                Resource::Identity(Box::new(doc), bytes)
            }
            Some(other) => {
                return Err(fail(
                    index,
                    format!("unknown kind `{other}` (expected issuer, policy or identity)"),
                ));
            }
        };
        documents.push(Document { index, resource });
    }
    if documents.is_empty() {
        return Err(AdminError::Input(format!("{origin}: no resources in it")));
    }
    Ok(documents)
}

/// `message` with the line of the top-level key it names (`unknown field `x``), which the spec
/// read from the document's map cannot know: `at line N column 1`.
fn with_line(text: &str, index: usize, message: String) -> String {
    let key = message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("unknown field"));
    let line = key.and_then(|key| {
        let (mut document, mut begun) = (1, false);
        text.lines().enumerate().find_map(|(n, line)| {
            if line == "---" || line.starts_with("--- ") {
                // A separator before any content opens the first document, not a second.
                document += usize::from(begun);
                begun = true;
                return None;
            }
            begun |= !line.trim().is_empty() && !line.trim_start().starts_with('#');
            let named = line
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'));
            (document == index && named).then_some(n + 1)
        })
    });
    match line {
        Some(line) => format!("{message} at line {line} column 1"),
        None => message,
    }
}

fn read_relative(
    base: &Path,
    file: &Path,
    what: &str,
    index: usize,
    origin: &str,
) -> Result<Vec<u8>, AdminError> {
    read(&base.join(file), what)
        .map_err(|e| AdminError::Input(format!("{origin}: document {index}: {e}")))
}

/// Replaces `jwks_file`, `reviewer_token_file` and `ca_file` in an issuer source by the
/// contents the server expects (`jwks`, `reviewer_token`, `ca_pem`), so secrets stay in files.
fn resolve_source_files(source: &mut Value, base: &Path) -> Result<(), String> {
    let Some(map) = source.as_object_mut() else {
        return Ok(());
    };
    if map.get("reviewer_token").and_then(Value::as_str) == Some("<redacted>") {
        return Err(
            "`reviewer_token` is `<redacted>` (copied from `issuer get`?): \
                    give the real one with `reviewer_token_file: PATH`"
                .into(),
        );
    }
    for (file_key, key) in [
        ("jwks_file", "jwks"),
        ("reviewer_token_file", "reviewer_token"),
        ("ca_file", "ca_pem"),
    ] {
        let Some(file) = map.remove(file_key) else {
            continue;
        };
        let file = file
            .as_str()
            .map(|f| base.join(f))
            .ok_or_else(|| format!("`{file_key}` must be a path"))?;
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read `{}`: {e}", file.display()))?;
        let value = if key == "jwks" {
            serde_json::from_str(&text)
                .map_err(|e| format!("`{}` is not JSON: {e}", file.display()))?
        } else {
            Value::String(text.trim_end().to_owned())
        };
        map.insert(key.to_owned(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::with_line;

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let text = "---\nkind: issuer\n---\nkind: identity\nid: x\npolcy: builtin:rules\n";
        let message = "unknown field `polcy`, expected one of `issuer`".to_owned();
        assert_eq!(
            with_line(text, 2, message.clone()),
            format!("{message} at line 6 column 1")
        );
        assert_eq!(with_line(text, 1, message.clone()), message);
        assert_eq!(with_line(text, 2, "other".into()), "other");
    }

    use super::*;

    fn dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tollgate-admin-docs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("p.wasm"), b"\0asm").unwrap();
        std::fs::write(dir.join("reviewer"), "secret\n").unwrap();
        dir
    }

    fn error(text: &str) -> String {
        match parse(text, "f.yaml", &dir()) {
            Err(AdminError::Input(message)) => message,
            Err(other) => panic!("not an input error: {other}"),
            Ok(_) => panic!("accepted: {text}"),
        }
    }

    #[test]
    fn documents_keep_their_place_and_read_their_files() {
        let text = "---\nkind: policy\ntenant: a\nfile: p.wasm\n---\n---\n\
                    kind: identity\ntenant: a\nid: x\nissuer: i\npolicy_file: p.wasm\n";
        let documents = parse(text, "f.yaml", &dir()).unwrap();
        assert_eq!(documents.len(), 2);
        assert_eq!(documents[0].label(), "document 1 (policy a/p.wasm)");
        assert_eq!(documents[1].label(), "document 3 (identity a/x)");
        assert!(matches!(&documents[1].resource, Resource::Identity(_, Some(b)) if b == b"\0asm"));
    }

    #[test]
    fn secrets_come_from_files_and_a_redacted_token_is_refused() {
        let text = "kind: issuer\ntenant: a\nname: k\nissuer_url: https://k\n\
                    source: { mode: token_review, api_server: https://k, reviewer_token_file: reviewer }\n";
        let documents = parse(text, "f.yaml", &dir()).unwrap();
        let Resource::Issuer(issuer) = &documents[0].resource else {
            panic!("an issuer")
        };
        let source = issuer.source.as_ref().unwrap();
        assert_eq!(source["reviewer_token"], "secret");
        assert!(source.get("reviewer_token_file").is_none());
        let redacted = text.replace(
            "reviewer_token_file: reviewer",
            "reviewer_token: <redacted>",
        );
        assert!(error(&redacted).contains("`reviewer_token` is `<redacted>`"));
    }

    #[test]
    fn unusable_documents_are_named() {
        let unknown = error("kind: issuer\ntenant: a\nname: n\nissuer_url: u\nsourse: {}\n");
        assert!(
            unknown.contains("document 1: unknown field `sourse`"),
            "{unknown}"
        );
        assert!(unknown.contains("line 5"), "{unknown}");
        let kind = error("kind: tenant\nname: a\n");
        assert!(kind.contains("unknown kind `tenant`"), "{kind}");
        assert!(error("tenant: a\n").contains("missing `kind`"));
        assert!(error("- a\n").contains("expected a mapping"));
        let both =
            error("kind: identity\ntenant: a\nid: x\nissuer: i\npolicy: p\npolicy_file: p.wasm\n");
        assert!(both.contains("not both"), "{both}");
        let missing = error("kind: policy\ntenant: a\nfile: nope.wasm\n");
        assert!(
            missing.contains("document 1: cannot read policy module"),
            "{missing}"
        );
        assert!(error("").contains("no resources"));
        let syntax = error("kind: policy\n---\nkind: [\n");
        assert!(syntax.contains("document 2:"), "{syntax}");
    }
}
