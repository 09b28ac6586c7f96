//! `pftrack serve`: the web UI and JSON API (crates/web, issue 13). Thin: reads the
//! `web:` configuration, builds the pool (working as the read-only web role), listens
//! on a TCP address or a Unix socket, tells systemd when ready, drains on SIGTERM.

use std::process::ExitCode;

use anyhow::Context;

use crate::config::Config;

/// Where `pftrack serve` listens when nothing is configured.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8025";

/// `pftrack serve` arguments.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (`127.0.0.1:8025`, `[::1]:8025`) or `unix:/run/pftrack/web.sock`
    /// (overrides web.listen).
    #[arg(long, value_name = "ADDRESS")]
    listen: Option<String>,
}

/// Run the server until SIGTERM or Ctrl-C.
pub async fn run(args: &ServeArgs, config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    let web = &config.web;
    let settings = web.settings()?;
    let listen = args
        .listen
        .clone()
        .or_else(|| web.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let pool = pftrack_store::build_pool(
        url,
        config.database.ca_file.as_deref(),
        pftrack_web::WEB_POOL_SIZE,
        Some(pftrack_web::on_connect_sql()),
    )?;
    pftrack_web::check_role(&pool).await.with_context(|| {
        format!(
            "pftrack serve cannot work as the database role {} on {} (docs/web.md, \
             \"The database role\")",
            pftrack_web::WEB_ROLE,
            pftrack_store::redact_url(url)
        )
    })?;
    let state = pftrack_web::AppState::new(pool, settings)?;
    let shutdown = async {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        tracing::info!("Stopping: finishing the requests under way.");
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    };
    let ready = |address: &str| {
        // The first line of stdout names the address (tests and scripts read it).
        println!("pftrack serve: listening on {address}");
        tracing::info!(%address, "Serving the web UI and API.");
        let _ = sd_notify::notify(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status("serving"),
        ]);
    };
    if let Some(path) = listen.strip_prefix("unix:") {
        let path = std::path::Path::new(path);
        // A socket left by an earlier run would make bind fail; anything else at that
        // path is not ours to remove.
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                anyhow::bail!(
                    "web.listen: {} exists and is not a socket; remove it or choose another path",
                    path.display()
                );
            }
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove the old socket {}", path.display()))?;
        }
        let listener = tokio::net::UnixListener::bind(path)
            .with_context(|| format!("web.listen: cannot listen on {}", path.display()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            // Owner and group (the reverse proxy's) only.
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
                .with_context(|| format!("cannot set the mode of {}", path.display()))?;
        }
        ready(&format!("unix:{}", path.display()));
        pftrack_web::serve_unix(listener, state, shutdown).await?;
    } else {
        let addr: std::net::SocketAddr = listen.parse().with_context(|| {
            format!("web.listen: {listen:?} is not an address such as 127.0.0.1:8025 or unix:/path")
        })?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("web.listen: cannot listen on {addr}"))?;
        let local = listener.local_addr().unwrap_or(addr);
        ready(&format!("http://{local}"));
        pftrack_web::serve_tcp(listener, state, shutdown).await?;
    }
    Ok(ExitCode::SUCCESS)
}
