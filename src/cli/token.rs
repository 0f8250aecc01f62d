//! `infra token create|list|revoke`: the scheduler's API tokens (admin only). `create`
//! prints the new token once, on stdout alone, so `TOKEN=$(infra token create ...)` works;
//! the scheduler keeps only its hash.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::apps::OutputFormat;
use super::scheduler_client::{report_client_error, SchedulerArg};

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a token and print it (once: it cannot be shown again).
    Create(CreateArgs),
    /// List the tokens (id, role, apps, name; never the tokens themselves).
    List(ListArgs),
    /// Revoke a token by its id (the part of the token before the dot).
    Revoke(RevokeArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// read-only (GET only), deployer (writes to the apps of --apps) or admin (everything).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(
        crate::scheduler::tokens::Role::NAMES))]
    pub role: String,
    /// The apps a deployer may change: an app id (/team/web) or a prefix (/team/*);
    /// repeatable or comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub apps: Vec<String>,
    /// A name to recognise the token by in `infra token list`.
    #[arg(long, default_value = "")]
    pub name: String,
    /// `json` prints the scheduler's whole answer (token, id, role, apps, name) as one
    /// JSON object, for scripts that keep the id to revoke it later.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub scheduler: SchedulerArg,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub scheduler: SchedulerArg,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The token's id.
    pub id: String,
    #[command(flatten)]
    pub scheduler: SchedulerArg,
}

pub async fn run(command: TokenCommand) -> anyhow::Result<i32> {
    match command {
        TokenCommand::Create(args) => {
            let client = args.scheduler.client()?;
            let request = json!({"role": args.role, "apps": args.apps, "name": args.name});
            match client.create_token(&request).await {
                Ok(answer) if args.output == OutputFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&answer)?);
                    Ok(0)
                }
                Ok(answer) => {
                    println!("{}", answer["token"].as_str().unwrap_or_default());
                    eprintln!(
                        "token {} ({}) created; it is shown only this once",
                        answer["id"].as_str().unwrap_or_default(),
                        args.role
                    );
                    Ok(0)
                }
                Err(err) => Ok(report_client_error("token create", &err)),
            }
        }
        TokenCommand::List(args) => {
            let client = args.scheduler.client()?;
            match client.tokens().await {
                Ok(answer) => {
                    match args.output {
                        OutputFormat::Json => {
                            println!("{}", serde_json::to_string_pretty(&answer["tokens"])?)
                        }
                        OutputFormat::Table => print_list(&answer),
                    }
                    Ok(0)
                }
                Err(err) => Ok(report_client_error("token list", &err)),
            }
        }
        TokenCommand::Revoke(args) => {
            let client = args.scheduler.client()?;
            match client.revoke_token(&args.id).await {
                Ok(_) => {
                    eprintln!("token {} revoked", args.id);
                    Ok(0)
                }
                Err(err) => Ok(report_client_error("token revoke", &err)),
            }
        }
    }
}

fn print_list(answer: &Value) {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    println!(
        "{:<18} {:<10} {:<20} {:<10} NAME",
        "ID", "ROLE", "APPS", "SOURCE"
    );
    for token in answer["tokens"].as_array().into_iter().flatten() {
        let apps: Vec<String> = token["apps"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        println!(
            "{:<18} {:<10} {:<20} {:<10} {}",
            text(&token["id"]),
            text(&token["role"]),
            if apps.is_empty() {
                "-".into()
            } else {
                apps.join(",")
            },
            text(&token["source"]),
            text(&token["name"]),
        );
    }
}
