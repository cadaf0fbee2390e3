//! `simulate` (a dry run of an identity's policy) and `decisions` (the audit log).

use super::client::{AdminError, Body, Client};
use super::resources::read;
use super::show;
use crate::cli::Format;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("subject")
        .required(true)
        .args(["claims", "token", "token_file"])
))]
pub struct SimulateArgs {
    /// The tenant's name.
    pub tenant: String,
    /// The identity's id within the tenant.
    pub id: String,
    /// Claims as if verified (a JSON file): runs the policy alone.
    #[arg(long, value_name = "FILE.json")]
    pub claims: Option<PathBuf>,
    /// A real subject token: verified first, as an exchange would.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// A file holding the subject token (keeps it out of the process list).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// A requested scope (repeat for several).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct DecisionsArgs {
    /// The tenant's name.
    pub tenant: String,
    /// How many decisions, newest first (the server caps it).
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

pub async fn simulate(
    client: &Client,
    format: Format,
    args: SimulateArgs,
) -> Result<(), AdminError> {
    let mut body = json!({ "scopes": args.scopes });
    if let Some(file) = &args.claims {
        let claims: Value = serde_json::from_slice(&read(file, "claims file")?).map_err(|e| {
            AdminError::Input(format!("claims file `{}` is not JSON: {e}", file.display()))
        })?;
        if !claims.is_object() {
            return Err(AdminError::Input(format!(
                "claims file `{}` must hold a JSON object",
                file.display()
            )));
        }
        body["claims"] = claims;
    }
    if let Some(token) = &args.token {
        body["token"] = json!(token.trim());
    }
    if let Some(file) = &args.token_file {
        let token = String::from_utf8_lossy(&read(file, "token file")?).into_owned();
        body["token"] = json!(token.trim());
    }
    let path = [
        "tenants",
        args.tenant.as_str(),
        "identities",
        args.id.as_str(),
        "simulate",
    ];
    let answer = client
        .send(Method::POST, &path, &[], Body::Json(body))
        .await?;
    if format == Format::Json {
        show::json(&answer);
        return Ok(());
    }
    // What the exchange would issue or record, as the server decided it.
    let evaluation = &answer["evaluation"];
    let decision = show::text(&answer, "decision");
    println!("decision  {decision}");
    println!("stage     {}", show::text(&answer, "stage"));
    if decision == "deny" {
        println!("code      {}", show::text(&answer, "code"));
    } else {
        println!("audience  {}", show::text(&answer, "audience"));
        println!("scopes    {}", show::list(&answer, "scopes"));
        println!("ttl       {} s", show::text(&answer, "ttl_seconds"));
        if let Some(claims) = answer["claims"].as_array().filter(|c| !c.is_empty()) {
            println!("claims    {}", Value::Array(claims.clone()));
        }
    }
    if evaluation.is_object() {
        println!("fuel      {}", show::text(evaluation, "fuel_used"));
    }
    for reason in answer["reasons"].as_array().into_iter().flatten() {
        println!("reason    {}", reason.as_str().unwrap_or_default());
    }
    for log in evaluation["logs"].as_array().into_iter().flatten() {
        println!(
            "log       [{}] {}",
            show::text(log, "stream"),
            show::text(log, "message")
        );
    }
    Ok(())
}

pub async fn decisions(
    client: &Client,
    format: Format,
    args: DecisionsArgs,
) -> Result<(), AdminError> {
    let path = ["tenants", args.tenant.as_str(), "decisions"];
    let query = [("limit", args.limit.to_string())];
    let answer = client.send(Method::GET, &path, &query, Body::Empty).await?;
    if format == Format::Json {
        show::json(&answer);
        return Ok(());
    }
    let decisions = answer["decisions"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = decisions
        .iter()
        .map(|d| {
            let verdict = if d["allowed"].as_bool() == Some(true) {
                "allowed"
            } else {
                "denied"
            };
            vec![
                show::time(&d["at"]),
                show::text(d, "event"),
                verdict.to_owned(),
                show::text(d, "code"),
                show::text(d, "identity"),
                show::text(d, "subject"),
                show::text(d, "reason"),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no decisions yet for tenant {}", args.tenant);
    } else {
        show::table(
            &[
                "TIME", "EVENT", "DECISION", "CODE", "IDENTITY", "SUBJECT", "REASON",
            ],
            &rows,
        );
    }
    Ok(())
}
