//! A connection pool of a chosen size for readers other than the loader (`pftrack
//! serve`), with the store's URL handling (libpq defaults, TLS) and an optional SQL
//! batch run on every new connection (`SET ROLE …`, `SET statement_timeout …`).

use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod};

use crate::error::{StoreError, redact_url};

/// How long [`build_pool`]'s users wait for a connection (or for a new one to be
/// made) before the checkout fails.
pub const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Build a pool of at most `max_size` connections to `url`, trusting `ca_file` for
/// `sslmode=verify-*` like [`crate::Store::connect_with`]. `on_connect`, when given,
/// runs on every new connection before it is handed out; a failure there fails the
/// checkout with the server's message. Connections are opened lazily: call
/// `pool.get()` once to find out whether the server answers.
pub fn build_pool(
    url: &str,
    ca_file: Option<&std::path::Path>,
    max_size: usize,
    on_connect: Option<String>,
) -> Result<Pool, StoreError> {
    let target = redact_url(url);
    let tls_params = crate::tls::TlsParams::extract(url);
    let mut config: tokio_postgres::Config =
        tls_params
            .url_for_driver
            .parse()
            .map_err(|source| StoreError::Config {
                target: target.clone(),
                source,
            })?;
    crate::apply_libpq_defaults(&mut config);
    let connector = crate::tls::make_connector(&tls_params, ca_file)?;
    let manager = Manager::from_config(
        config,
        connector,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    // A request waits at most POOL_WAIT for a connection, then fails (503) instead of
    // queueing without end behind a stuck database.
    // Last in, first out: the session used last is handed out next, so a quiet
    // server answers from one session that has its statements planned and the
    // partitions' catalogue entries loaded, rather than from each of its sessions in
    // turn (first in, first out), each planning everything once more.
    let mut builder = Pool::builder(manager)
        .max_size(max_size.max(1))
        .queue_mode(deadpool_postgres::QueueMode::Lifo)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT))
        .create_timeout(Some(POOL_WAIT));
    if let Some(sql) = on_connect {
        let sql: std::sync::Arc<str> = sql.into();
        builder = builder.post_create(Hook::async_fn(move |client, _| {
            let sql = std::sync::Arc::clone(&sql);
            Box::pin(async move { client.batch_execute(&sql).await.map_err(HookError::Backend) })
        }));
    }
    builder.build().map_err(|e| StoreError::Pool {
        target,
        reason: e.to_string(),
        transient: false,
    })
}
