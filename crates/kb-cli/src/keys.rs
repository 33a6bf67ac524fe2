//! `kb keys`: API keys for readers and admins.
//!
//! Keys live in the catalog database, so these commands open only the catalog (SQLite or
//! Postgres, never the vector index) and work while `kb serve` runs; servers see a new key at once and stop accepting a
//! revoked one within `server.key_cache_secs`.

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use kb_app::Components;
use kb_catalog::{CatalogStore, NewKey};
use kb_config::Settings;
use kb_core::{AccessRole, ApiKeyRecord, KeyStore};
use secrecy::ExposeSecret;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key and print it once on stdout (only its hash is stored).
    Create {
        /// A name to find the key by (unique among active keys).
        #[arg(long)]
        name: String,
        /// reader: ask and search within its groups; admin: everything, including documents,
        /// ingest and keys.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Access groups of a reader, comma-separated (`hr,finance`); documents in `all` are
        /// readable by every key.
        #[arg(long, value_delimiter = ',', value_name = "GROUPS")]
        groups: Vec<String>,
    },
    /// List keys (never the keys themselves).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by name or id.
    Revoke {
        #[arg(value_name = "NAME|ID")]
        key: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Reader,
    Admin,
}

impl From<RoleArg> for AccessRole {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Reader => AccessRole::Reader,
            RoleArg::Admin => AccessRole::Admin,
        }
    }
}

pub async fn run(command: KeysCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    let location = Components::catalog_location(settings)?;
    let catalog = CatalogStore::open(&location)
        .await
        .with_context(|| format!("opening the catalog {location}"))?;
    let result = keys(command, &catalog).await;
    catalog.close().await;
    result
}

async fn keys(command: KeysCommand, catalog: &CatalogStore) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Create { name, role, groups } => {
            let role = AccessRole::from(role);
            let groups: Vec<String> = groups
                .iter()
                .map(|g| g.trim().to_owned())
                .filter(|g| !g.is_empty())
                .collect();
            if role == AccessRole::Admin && !groups.is_empty() {
                bail!("an admin key reads every document; drop --groups or use --role reader");
            }
            let (record, key) = catalog.issue_key(&NewKey { name, role, groups }).await?;
            eprintln!(
                "kb: created {} key {:?} (id {}, groups {}). It is shown once: store it now.",
                record.role,
                record.name,
                record.id,
                groups_label(&record)
            );
            println!("{}", key.expose_secret());
        }
        KeysCommand::List { json } => {
            let keys = catalog.list_keys().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                print_keys(&keys);
            }
        }
        KeysCommand::Revoke { key } => match catalog.revoke_key(&key).await? {
            Some(record) => println!(
                "revoked {} key {:?} (id {}); servers refuse it within server.key_cache_secs",
                record.role, record.name, record.id
            ),
            None => bail!("no active key named or with id {key:?}; see `kb keys list`"),
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// What a key may read; `all` is readable by every key, so it is named once.
fn groups_label(key: &ApiKeyRecord) -> String {
    let own: Vec<&str> = key
        .groups
        .iter()
        .map(String::as_str)
        .filter(|g| *g != "all")
        .collect();
    match key.role {
        AccessRole::Admin => "every document".to_owned(),
        AccessRole::Reader if own.is_empty() => "all only".to_owned(),
        AccessRole::Reader => format!("{} + all", own.join(",")),
    }
}

fn print_keys(keys: &[ApiKeyRecord]) {
    let width = keys.iter().map(|k| k.name.len()).max().unwrap_or(4).max(4);
    println!(
        "{:12}  {:width$}  {:6}  {:8}  GROUPS",
        "ID", "NAME", "ROLE", "STATUS"
    );
    for k in keys {
        let status = if k.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        };
        println!(
            "{:12}  {:width$}  {:6}  {:8}  {}",
            k.id,
            k.name,
            k.role.as_str(),
            status,
            groups_label(k)
        );
    }
    println!("{} keys", keys.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(groups: &[&str]) -> ApiKeyRecord {
        ApiKeyRecord {
            id: "abc".into(),
            name: "alice".into(),
            role: AccessRole::Reader,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            created_at: 0,
            revoked_at: None,
        }
    }

    #[test]
    fn the_group_every_key_reads_is_named_once() {
        assert_eq!(groups_label(&reader(&[])), "all only");
        assert_eq!(groups_label(&reader(&["all"])), "all only");
        assert_eq!(groups_label(&reader(&["hr", "all"])), "hr + all");
        assert_eq!(
            groups_label(&reader(&["hr", "finance"])),
            "hr,finance + all"
        );
    }
}
