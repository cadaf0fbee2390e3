//! Changing a policy from the command line: a named policy's versions and rollback, an
//! identity's shadow report and promotion, and replay.

use super::client::{AdminError, Body, Client};
use super::resources::read;
use super::show;
use crate::cli::Format;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

/// `24h`, `7d`, `30m`, `90s` or a number of seconds.
pub fn parse_since(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "`{text}`: a duration is a number and s, m, h or d (`24h`)"
            ));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("`{text}`: a duration is a number and s, m, h or d (`24h`)"))
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The tenant's name.
    pub tenant: String,
    /// The identity whose recorded decisions are evaluated again.
    pub identity: String,
    /// The candidate: `NAME`, `NAME@VERSION`, a `sha256:` digest or a built-in.
    #[arg(long)]
    pub policy: String,
    /// How far back (`24h`, `7d`, `30m`, or seconds).
    #[arg(long, default_value = "24h", value_parser = parse_since)]
    pub since: u64,
    /// Run the candidate with this config (a JSON file) instead of the identity's.
    #[arg(long, value_name = "FILE.json")]
    pub config: Option<PathBuf>,
}

/// Prints the versions of a named policy.
pub async fn versions(
    client: &Client,
    format: Format,
    tenant: &str,
    name: &str,
) -> Result<(), AdminError> {
    let path = ["tenants", tenant, "policies", name];
    let answer = client.send(Method::GET, &path, &[], Body::Empty).await?;
    if format == Format::Json {
        show::json(&answer);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = answer["versions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|v| {
            vec![
                format!("{name}@{}", show::text(v, "version")),
                show::text(v, "digest"),
                show::time(&v["created_at"]),
                show::text(v, "created_by"),
                show::text(v, "description"),
            ]
        })
        .collect();
    show::table(
        &["VERSION", "DIGEST", "CREATED", "BY", "DESCRIPTION"],
        &rows,
    );
    Ok(())
}

/// One line per identity that follows the name, as an upload or rollback left it.
pub fn print_followers(answer: &Value) {
    for f in answer["followers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        println!(
            "  {} {}: {}",
            show::text(f, "identity"),
            show::text(f, "outcome"),
            show::text(f, "policy")
        );
        for failure in f["failures"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            println!("    fails {}", failure.as_str().unwrap_or_default());
        }
    }
}

pub async fn rollback(
    client: &Client,
    format: Format,
    tenant: &str,
    name: &str,
    to: Option<u32>,
) -> Result<(), AdminError> {
    let path = ["tenants", tenant, "policies", name, "rollback"];
    let body = Body::Json(json!({ "version": to }));
    let answer = client.send(Method::POST, &path, &[], body).await?;
    if format == Format::Json {
        show::json(&answer);
        return Ok(());
    }
    println!(
        "policy {name} rolled back: version {} runs version {}'s module ({})",
        show::text(&answer, "version"),
        show::text(&answer, "restores"),
        show::text(&answer, "digest")
    );
    print_followers(&answer);
    Ok(())
}

pub async fn promote(
    client: &Client,
    format: Format,
    tenant: &str,
    id: &str,
) -> Result<(), AdminError> {
    let path = ["tenants", tenant, "identities", id, "promote"];
    let answer = client.send(Method::POST, &path, &[], Body::Empty).await?;
    if format == Format::Json {
        show::json(&answer);
        return Ok(());
    }
    println!(
        "identity tenants/{tenant}/identities/{id} promoted: policy {} ({})",
        show::text(&answer, "policy"),
        show::text(&answer, "resolved_policy")
    );
    Ok(())
}

/// The shadow candidate's answers against the policy's: counts by pair, then examples.
pub async fn diff(
    client: &Client,
    format: Format,
    tenant: &str,
    id: &str,
    since: u64,
) -> Result<(), AdminError> {
    let path = ["tenants", tenant, "identities", id, "shadow"];
    let query = [("since_seconds", since.to_string())];
    let answer = client.send(Method::GET, &path, &query, Body::Empty).await?;
    if format == Format::Json {
        show::json(&answer);
        return Ok(());
    }
    println!(
        "shadow {} on tenants/{tenant}/identities/{id}: {} exchanges, {} agreed, {} disagreed",
        show::text(&answer, "candidate"),
        show::text(&answer, "evaluated"),
        show::text(&answer, "agreed"),
        show::text(&answer, "disagreed")
    );
    let pairs: Vec<Vec<String>> = answer["pairs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            vec![
                show::text(p, "policy"),
                show::text(p, "candidate"),
                show::text(p, "count"),
            ]
        })
        .collect();
    show::table(&["POLICY", "CANDIDATE", "COUNT"], &pairs);
    print_examples(&answer["examples"], "policy_answer", "candidate_answer");
    Ok(())
}

fn label(answer: &Value) -> String {
    match (answer["allowed"].as_bool(), answer["code"].as_str()) {
        (Some(true), _) => format!("allow {}", show::list(answer, "scopes")),
        (_, Some(code)) => format!("deny:{code}"),
        _ => "deny".into(),
    }
}

fn print_examples(examples: &Value, before: &str, after: &str) {
    let rows: Vec<Vec<String>> = examples
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            vec![
                show::text(e, "id"),
                show::time(&e["at"]),
                show::text(e, "subject"),
                format!("{} -> {}", label(&e[before]), label(&e[after])),
            ]
        })
        .collect();
    if !rows.is_empty() {
        println!();
        show::table(&["RECORD", "AT", "SUBJECT", "CHANGE"], &rows);
    }
}

pub async fn replay(client: &Client, format: Format, args: ReplayArgs) -> Result<(), AdminError> {
    let config: Option<Value> =
        match &args.config {
            Some(path) => {
                let bytes = read(path, "config")?;
                Some(serde_json::from_slice(&bytes).map_err(|e| {
                    AdminError::Input(format!("`{}` is not JSON: {e}", path.display()))
                })?)
            }
            None => None,
        };
    let path = [
        "tenants",
        &args.tenant,
        "identities",
        &args.identity,
        "replay",
    ];
    let body = json!({"policy": args.policy, "since_seconds": args.since, "config": config});
    let answer = client
        .send(Method::POST, &path, &[], Body::Json(body))
        .await?;
    if format == Format::Json {
        show::json(&answer);
        return Ok(());
    }
    println!(
        "replayed {} decisions of tenants/{}/identities/{} with {} in {} ms",
        show::text(&answer, "replayed"),
        args.tenant,
        args.identity,
        show::text(&answer, "policy"),
        show::text(&answer, "elapsed_ms")
    );
    for (what, field) in [
        ("unchanged", "unchanged"),
        ("allowed -> denied", "allowed_to_denied"),
        ("denied -> allowed", "denied_to_allowed"),
        ("other scopes", "scopes_changed"),
        ("other denial code", "codes_changed"),
    ] {
        println!("  {what:<18} {}", show::text(&answer, field));
    }
    print_examples(&answer["changes"], "before", "after");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_since;

    #[test]
    fn durations() {
        assert_eq!(parse_since("24h"), Ok(86_400));
        assert_eq!(parse_since("7d"), Ok(604_800));
        assert_eq!(parse_since("30m"), Ok(1800));
        assert_eq!(parse_since("90"), Ok(90));
        for bad in ["", "h", "1w", "-1h", "1.5h"] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }
}
