//! `pftrack user`: users and bearer tokens of the web UI and API (issue 13). Runs as
//! the database owner (the web role cannot write users). Passwords come from the
//! terminal (asked twice, not echoed) or one line of stdin (`--password-stdin`),
//! never from the command line.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::config::Config;

/// `pftrack user` arguments.
#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Add a user: `--role admin`, `--role domain --scope example.com`, `--role self --scope ann@example.com`.
    Add {
        /// The user name (the login).
        name: String,
        /// admin (everything), domain (mail of the --scope domains), self (mail of the --scope addresses).
        #[arg(long)]
        role: String,
        /// A domain (role domain) or an address (role self); repeat for more.
        #[arg(long = "scope", value_name = "DOMAIN|ADDRESS")]
        scope: Vec<String>,
        /// Read the password from the first line of stdin instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (their sessions end).
    Passwd {
        /// The user name.
        name: String,
        /// Read the password from the first line of stdin instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user with their sessions and tokens.
    Remove {
        /// The user name.
        name: String,
    },
    /// List users.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Bearer tokens for scripts (`Authorization: Bearer pft_…`).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Create a token; it is printed once and stored only as a hash.
    Add {
        /// The user the token acts as.
        user: String,
        /// A name for the token (to list and revoke it).
        name: String,
        /// Lifetime (`90d`); no expiry when absent.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List a user's tokens.
    List {
        /// The user.
        user: String,
    },
    /// Revoke a token.
    Remove {
        /// The user.
        user: String,
        /// The token's name.
        name: String,
    },
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        if password.is_empty() {
            bail!("no password on stdin (one line expected)");
        }
        return Ok(password);
    }
    let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
    let second = rpassword::prompt_password("Again: ").context("cannot read the password")?;
    if first != second {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}

/// Run a `pftrack user` command.
pub async fn run(args: &UserArgs, config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    let pool = pftrack_store::build_pool(url, config.database.ca_file.as_deref(), 1, None)?;
    let conn = pool.get().await.map_err(pftrack_web::WebError::from)?;
    let web = |e: pftrack_web::WebError| match e {
        pftrack_web::WebError::NotFound => anyhow::anyhow!("no such user or token"),
        pftrack_web::WebError::Database { source, .. }
            if source.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) =>
        {
            anyhow::anyhow!("the web tables do not exist yet: run `pftrack migrate` first")
        }
        other => anyhow::anyhow!("{other}"),
    };
    match &args.command {
        UserCommand::Add {
            name,
            role,
            scope,
            password_stdin,
        } => {
            pftrack_web::users::check_name(name).map_err(web)?;
            pftrack_web::users::check_role(role, scope).map_err(web)?;
            let password = read_password(*password_stdin)?;
            pftrack_web::users::add(&conn, name, role, scope, &password)
                .await
                .map_err(web)?;
            println!("added user {name} ({role})");
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let password = read_password(*password_stdin)?;
            pftrack_web::users::passwd(&conn, name, &password)
                .await
                .map_err(web)?;
            println!("password of {name} changed; their sessions ended");
        }
        UserCommand::Remove { name } => {
            pftrack_web::users::remove(&conn, name).await.map_err(web)?;
            println!("removed user {name}");
        }
        UserCommand::List { json } => {
            let users = pftrack_web::users::list(&conn).await.map_err(web)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                println!("{:<24} {:<7} {:>6}  scope", "name", "role", "tokens");
                for u in users {
                    println!(
                        "{:<24} {:<7} {:>6}  {}",
                        u.name,
                        u.role,
                        u.tokens,
                        u.scope.join(", ")
                    );
                }
            }
        }
        UserCommand::Token { command } => match command {
            TokenCommand::Add {
                user,
                name,
                expires,
            } => {
                let expires_at = expires
                    .as_deref()
                    .map(|e| {
                        crate::duration::parse(e)
                            .with_context(|| format!("--expires {e:?}"))
                            .map(|d| chrono::Utc::now() + d)
                    })
                    .transpose()?;
                let secret = pftrack_web::users::token_add(&conn, user, name, expires_at)
                    .await
                    .map_err(web)?;
                eprintln!(
                    "token {name} of {user} (shown once; send it as `Authorization: Bearer …`):"
                );
                println!("{secret}");
            }
            TokenCommand::List { user } => {
                for t in pftrack_web::users::token_list(&conn, user)
                    .await
                    .map_err(web)?
                {
                    println!(
                        "{}\tcreated {}\texpires {}\tlast used {}",
                        t.name,
                        t.created_at.to_rfc3339(),
                        t.expires_at.map_or("never".into(), |x| x.to_rfc3339()),
                        t.last_used_at.map_or("never".into(), |x| x.to_rfc3339())
                    );
                }
            }
            TokenCommand::Remove { user, name } => {
                pftrack_web::users::token_remove(&conn, user, name)
                    .await
                    .map_err(web)?;
                println!("revoked token {name} of {user}");
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}
