//! The one state every handler shares, built once by [`AppState::new`].

use std::sync::Arc;

use deadpool_postgres::Pool;

use crate::assets::Assets;
use crate::limit::LoginLimiter;
use crate::settings::Settings;

/// Shared state: the pool (working as the read-only web role), settings, the login
/// limiter, the assets, and a dummy password hash (verified when a user name is
/// unknown, so the answer takes as long as for a known one).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    pool: Pool,
    settings: Settings,
    limiter: LoginLimiter,
    assets: Assets,
    dummy_hash: String,
}

impl AppState {
    /// Build the state.
    pub fn new(pool: Pool, settings: Settings) -> Result<AppState, crate::WebError> {
        let dummy_hash = crate::auth::hash_password(&crate::auth::random_token())?;
        Ok(AppState(Arc::new(Inner {
            pool,
            settings,
            limiter: LoginLimiter::default(),
            assets: Assets::default(),
            dummy_hash,
        })))
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.0.pool
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// The login limiter.
    pub fn limiter(&self) -> &LoginLimiter {
        &self.0.limiter
    }

    /// The assets.
    pub fn assets(&self) -> &Assets {
        &self.0.assets
    }

    /// A hash no password matches.
    pub fn dummy_hash(&self) -> &str {
        &self.0.dummy_hash
    }
}
