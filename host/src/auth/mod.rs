//! Who may call the API: the admin account (argon2 password), login tokens with an
//! expiry, logout, and the login throttle. The HTTP layer asks [`AuthService`]; this
//! module knows nothing about HTTP.
//!
//! Where the admin password comes from, first match wins: `APOLLO_ADMIN_PASSWORD`
//! (hashed at start, never stored in clear), `auth.admin_password_hash` in the config,
//! the hash kept in the store, or, on a first start with none, a generated password
//! printed once to standard error (not to the log).

mod password;
mod throttle;
mod tokens;

pub use password::{generate_password, hash_password, verify_password};
pub use throttle::LoginThrottle;
pub use tokens::{TOKEN_PREFIX, new_token, token_hash};

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::AuthConfig;
use crate::store::{Store, StoreError, TokenRecord, now_ms};

/// The store setting that holds the admin password hash.
const ADMIN_HASH_SETTING: &str = "auth.admin_password_hash";
/// The environment variable that sets the admin password at start.
pub const ADMIN_PASSWORD_ENV: &str = "APOLLO_ADMIN_PASSWORD";

/// Where the admin password in force came from (for the start-up log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordSource {
    Environment,
    Config,
    Store,
    Generated,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong user name or password")]
    BadCredentials,
    #[error("too many failed logins; retry in {} s", .0.as_millis().div_ceil(1000).max(1))]
    LockedOut(Duration),
    #[error("missing, invalid or expired token")]
    InvalidToken,
    #[error("too many logins in progress; retry in a second")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub user: String,
    pub expires_at_ms: i64,
}

#[derive(Debug)]
pub struct AuthService {
    store: Arc<dyn Store>,
    admin_user: String,
    admin_hash: RwLock<String>,
    token_ttl: Duration,
    throttle: LoginThrottle,
    /// Bounds concurrent argon2 checks (each takes ~19 MiB and a blocking thread), so
    /// a login flood cannot exhaust memory or the blocking pool.
    verify_slots: tokio::sync::Semaphore,
}

/// Concurrent password checks allowed; more are answered 429 at once.
const VERIFY_SLOTS: usize = 4;

impl AuthService {
    /// Settles the admin password (see the module doc) and returns the service plus
    /// where the password came from. A generated password is returned so the caller
    /// can show it once.
    pub async fn bootstrap(
        cfg: &AuthConfig,
        store: Arc<dyn Store>,
        env_password: Option<String>,
    ) -> Result<(Self, PasswordSource, Option<String>), StoreError> {
        let mut generated = None;
        let (hash, source) = if let Some(pw) = env_password.filter(|p| !p.is_empty()) {
            let stored = store.get_setting(ADMIN_HASH_SETTING).await?;
            // Re-hash only when the password really changed, so restarts with the same
            // variable keep the sessions they issued.
            let hash = match stored {
                Some(h) if blocking_verify(&pw, &h).await => h,
                _ => {
                    let h = blocking_hash(pw).await;
                    replace_password(store.as_ref(), &h).await?;
                    h
                }
            };
            (hash, PasswordSource::Environment)
        } else if !cfg.admin_password_hash.is_empty() {
            if store.get_setting(ADMIN_HASH_SETTING).await?.as_deref() != Some(cfg.admin_password_hash.as_str()) {
                replace_password(store.as_ref(), &cfg.admin_password_hash).await?;
            }
            (cfg.admin_password_hash.clone(), PasswordSource::Config)
        } else if let Some(h) = store.get_setting(ADMIN_HASH_SETTING).await? {
            (h, PasswordSource::Store)
        } else {
            let pw = generate_password();
            let h = blocking_hash(pw.clone()).await;
            store.put_setting(ADMIN_HASH_SETTING, &h).await?;
            generated = Some(pw);
            (h, PasswordSource::Generated)
        };
        let service = Self {
            store,
            admin_user: cfg.admin_user.clone(),
            admin_hash: RwLock::new(hash),
            token_ttl: Duration::from_secs(cfg.token_ttl_secs),
            throttle: LoginThrottle::new(
                cfg.max_failed_logins,
                Duration::from_secs(cfg.lockout_base_secs),
                Duration::from_secs(cfg.lockout_max_secs),
            ),
            verify_slots: tokio::sync::Semaphore::new(VERIFY_SLOTS),
        };
        Ok((service, source, generated))
    }

    pub fn admin_user(&self) -> &str {
        &self.admin_user
    }

    /// Checks credentials and issues a token. `client` identifies the caller for the
    /// throttle (its address).
    pub async fn login(&self, client: &str, user: &str, password: &str) -> Result<Session, AuthError> {
        let throttle_key = format!("{client}|{user}");
        let _slot = self.verify_slots.try_acquire().map_err(|_| AuthError::Busy)?;
        self.throttle.begin(&throttle_key).map_err(AuthError::LockedOut)?;
        let hash = self.admin_hash.read().unwrap_or_else(|p| p.into_inner()).clone();
        // Verify even for an unknown user so timing does not reveal valid names.
        let password_ok = blocking_verify(password, &hash).await;
        if !(password_ok && user == self.admin_user) {
            return Err(match self.throttle.lockout(&throttle_key) {
                Some(wait) => AuthError::LockedOut(wait),
                None => AuthError::BadCredentials,
            });
        }
        self.throttle.succeeded(&throttle_key);
        let token = new_token();
        let now = now_ms();
        let expires_at_ms = now + i64::try_from(self.token_ttl.as_millis()).unwrap_or(i64::MAX / 2);
        self.store
            .insert_token(&TokenRecord {
                token_hash: token_hash(&token),
                user: user.to_string(),
                created_at_ms: now,
                expires_at_ms,
            })
            .await?;
        Ok(Session { token, user: user.to_string(), expires_at_ms })
    }

    /// The user a bearer token belongs to.
    pub async fn authenticate(&self, token: &str) -> Result<String, AuthError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Err(AuthError::InvalidToken);
        }
        match self.store.find_token(&token_hash(token)).await? {
            Some(rec) if rec.expires_at_ms > now_ms() => Ok(rec.user),
            Some(rec) => {
                self.store.revoke_token(&rec.token_hash).await?;
                Err(AuthError::InvalidToken)
            }
            None => Err(AuthError::InvalidToken),
        }
    }

    /// Revokes a token; `false` if it was not valid.
    pub async fn logout(&self, token: &str) -> Result<bool, AuthError> {
        Ok(self.store.revoke_token(&token_hash(token)).await?)
    }

    /// Drops expired tokens (called periodically).
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        self.store.purge_expired_tokens(now_ms()).await
    }
}

/// Stores a new admin hash and ends every session issued under the old password.
async fn replace_password(store: &dyn Store, hash: &str) -> Result<(), StoreError> {
    store.put_setting(ADMIN_HASH_SETTING, hash).await?;
    let revoked = store.revoke_all_tokens().await?;
    if revoked > 0 {
        tracing::info!(revoked, "admin password changed: existing tokens revoked");
    }
    Ok(())
}

async fn blocking_hash(password: String) -> String {
    tokio::task::spawn_blocking(move || hash_password(&password)).await.expect("hashing does not panic")
}

async fn blocking_verify(password: &str, hash: &str) -> bool {
    let (p, h) = (password.to_string(), hash.to_string());
    tokio::task::spawn_blocking(move || verify_password(&p, &h)).await.unwrap_or(false)
}
