//! `pftrack dispatch`, and the dispatcher task of `pftrack run`: the event outbox
//! delivered to the sinks of `events.sinks` (crates/dispatch does the work).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use pftrack_dispatch::Dispatcher;
use pftrack_store::Store;
use tokio::sync::watch;

use crate::config::Config;

/// How long `pftrack run` waits for its dispatcher at shutdown (attempts in flight
/// that do not finish are sent again after the restart, same ids).
const RUN_STOP_WAIT: Duration = Duration::from_secs(5);

/// Arguments of `pftrack dispatch`.
#[derive(Debug, clap::Args)]
pub struct DispatchArgs {}

/// Deliver until SIGTERM/SIGINT.
pub async fn run(_args: &DispatchArgs, config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    let sinks = config.events.sinks()?;
    if sinks.is_empty() {
        bail!("no sinks configured: add events.sinks to the configuration (docs/events.md)");
    }
    let settings = config.events.dispatch.settings()?;
    let store = Store::connect_with(url, config.database.ca_file.as_deref()).await?;
    store.migrate().await?;
    let dispatcher = Dispatcher::new(store, sinks, settings);
    tracing::info!(
        dispatcher = dispatcher.id(),
        "Dispatching the event outbox."
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(dispatcher.run(stop_rx));
    tokio::pin!(task);
    tokio::select! {
        r = &mut task => { r??; bail!("the dispatcher stopped unexpectedly"); }
        _ = crate::follow::shutdown_signal() => {
            tracing::info!("Stop requested.");
        }
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(RUN_STOP_WAIT * 3, task).await;
    Ok(ExitCode::SUCCESS)
}

/// The dispatcher of `pftrack run`, on its own connection pool so that ingestion never
/// waits for it.
pub struct RunDispatcher {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunDispatcher {
    /// Start when sinks are configured and `events.dispatch.in_run` is not false.
    pub async fn start(config: &Config, url: &str) -> anyhow::Result<Option<RunDispatcher>> {
        let settings = config.events.dispatch.settings()?;
        let sinks = config.events.sinks()?;
        if sinks.is_empty() || !settings.in_run {
            return Ok(None);
        }
        let store = Store::connect_with(url, config.database.ca_file.as_deref()).await?;
        let dispatcher = Dispatcher::new(store, sinks, settings);
        tracing::info!(
            dispatcher = dispatcher.id(),
            "Dispatching the event outbox."
        );
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            if let Err(e) = dispatcher.run(stop_rx).await {
                tracing::error!(
                    "The event dispatcher stopped: {e}. Ingestion goes on; events wait in the outbox."
                );
            }
        });
        Ok(Some(RunDispatcher { stop, task }))
    }

    /// Stop, waiting a little for attempts in flight.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(RUN_STOP_WAIT, self.task).await;
    }
}
