//! Connections for crates that own their SQL (the event dispatcher), and `LISTEN`.
//!
//! `LISTEN` needs a connection of its own whose messages this process reads: a pooled
//! connection's notifications are dropped by the pool. [`Store::listen`] opens one,
//! drives it on a task and hands the notifications over a channel; when the connection
//! breaks the channel closes, and the caller listens again (and meanwhile polls).

use tokio::sync::mpsc;

use crate::{Store, StoreError, tls};

/// Notifications queued for a listener before the oldest are dropped: they are
/// wake-up hints, so losing some while the listener is busy costs nothing.
const NOTIFICATION_QUEUE: usize = 64;

/// What [`Store::listen`] needs to connect outside the pool.
pub(crate) struct Direct {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) connector: tls::Connector,
}

/// A notification received on a listened channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The channel.
    pub channel: String,
    /// Its payload (`''` when none).
    pub payload: String,
}

/// A connection that `LISTEN`s; dropping it closes the connection.
pub struct Listener {
    receiver: mpsc::Receiver<Notification>,
    _client: tokio_postgres::Client,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

impl Listener {
    /// The next notification; `None` once the connection is gone.
    pub async fn recv(&mut self) -> Option<Notification> {
        self.receiver.recv().await
    }
}

impl Store {
    /// A pooled connection, for crates that own their SQL (the dispatcher's claims).
    pub async fn connection(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.client().await
    }

    /// A new connection (outside the pool) that listens on `channels`.
    pub async fn listen(&self, channels: &[&str]) -> Result<Listener, StoreError> {
        let (client, mut connection) = self
            .direct
            .config
            .connect(self.direct.connector.clone())
            .await
            .map_err(|e| StoreError::Pool {
                target: self.target.clone(),
                reason: e.to_string(),
                transient: true,
            })?;
        let (sender, receiver) = mpsc::channel(NOTIFICATION_QUEUE);
        tokio::spawn(async move {
            loop {
                let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
                match message {
                    Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                        // A full queue already holds a wake-up: this one adds nothing.
                        let _ = sender.try_send(Notification {
                            channel: n.channel().to_owned(),
                            payload: n.payload().to_owned(),
                        });
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                }
            }
        });
        for channel in channels {
            // A quoted identifier: the channel names come from the configuration.
            let quoted = format!("\"{}\"", channel.replace('"', "\"\""));
            client
                .batch_execute(&format!("LISTEN {quoted}"))
                .await
                .map_err(|e| StoreError::query("listening for notifications", e))?;
        }
        Ok(Listener {
            receiver,
            _client: client,
        })
    }
}
