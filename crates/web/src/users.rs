//! User and token administration for `pftrack user …` (run as the tables' owner, not
//! through the web role, which cannot write `web_user`).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::auth::{MAX_PASSWORD_LEN, MAX_USER_NAME_LEN, TOKEN_PREFIX, random_token, token_hash};
use crate::error::{WebError, db};
use crate::scope::{ROLES, Scope};

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;

/// A stored user.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Domains or addresses.
    pub scope: Vec<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Password last set.
    pub password_changed_at: DateTime<Utc>,
    /// Bearer tokens.
    pub tokens: i64,
}

/// A stored token (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct Token {
    /// Its name.
    pub name: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last use.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Check a user name.
pub fn check_name(name: &str) -> Result<(), WebError> {
    if name.is_empty()
        || name.len() > MAX_USER_NAME_LEN
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || "._@+-".contains(c))
    {
        return Err(WebError::BadRequest(format!(
            "user name {name:?}: 1 to {MAX_USER_NAME_LEN} letters, digits or . _ @ + -"
        )));
    }
    Ok(())
}

/// Check a password.
pub fn check_password(password: &str) -> Result<(), WebError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_LEN {
        return Err(WebError::BadRequest(format!(
            "the password must have {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

/// Check a role with its scope values (lower-cased).
pub fn check_role(role: &str, scope: &[String]) -> Result<Vec<String>, WebError> {
    if !ROLES.contains(&role) {
        return Err(WebError::BadRequest(format!(
            "role {role:?} is not one of {}",
            ROLES.join(", ")
        )));
    }
    let values: Vec<String> = scope
        .iter()
        .map(|v| v.trim().to_ascii_lowercase())
        .collect();
    for v in &values {
        let ok = match role {
            "domain" => !v.is_empty() && !v.contains('@') && !v.contains(char::is_whitespace),
            "self" => v.contains('@') && !v.contains(char::is_whitespace),
            _ => false,
        };
        if !ok {
            return Err(WebError::BadRequest(format!(
                "--scope {v:?} is not {} for role {role}",
                if role == "domain" {
                    "a domain"
                } else if role == "self" {
                    "an address"
                } else {
                    "allowed"
                }
            )));
        }
    }
    if Scope::from_role(role, values.clone()).is_none() {
        return Err(WebError::BadRequest(format!(
            "role {role} needs at least one --scope ({})",
            if role == "domain" {
                "a domain"
            } else {
                "an address"
            }
        )));
    }
    Ok(values)
}

/// Add a user; the password is hashed here (argon2id).
pub async fn add(
    client: &deadpool_postgres::Client,
    name: &str,
    role: &str,
    scope: &[String],
    password: &str,
) -> Result<(), WebError> {
    check_name(name)?;
    check_password(password)?;
    let scope = check_role(role, scope)?;
    let hash = crate::auth::hash_password(password)?;
    let n = client
        .execute(
            "INSERT INTO web_user (name, role, scope, password_hash) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
            &[&name, &role, &scope, &hash],
        )
        .await
        .map_err(db("adding a user"))?;
    if n == 0 {
        return Err(WebError::BadRequest(format!(
            "user {name:?} exists already (pftrack user passwd changes the password)"
        )));
    }
    Ok(())
}

/// Set a user's password; their sessions end.
pub async fn passwd(
    client: &deadpool_postgres::Client,
    name: &str,
    password: &str,
) -> Result<(), WebError> {
    check_password(password)?;
    let hash = crate::auth::hash_password(password)?;
    let n = client
        .execute(
            "UPDATE web_user SET password_hash = $2, password_changed_at = now() WHERE name = $1",
            &[&name, &hash],
        )
        .await
        .map_err(db("setting a password"))?;
    if n == 0 {
        return Err(WebError::NotFound);
    }
    client
        .execute(
            "DELETE FROM web_session WHERE user_id = (SELECT id FROM web_user WHERE name = $1)",
            &[&name],
        )
        .await
        .map_err(db("ending the user's sessions"))?;
    Ok(())
}

/// Remove a user with their sessions and tokens.
pub async fn remove(client: &deadpool_postgres::Client, name: &str) -> Result<(), WebError> {
    let n = client
        .execute("DELETE FROM web_user WHERE name = $1", &[&name])
        .await
        .map_err(db("removing a user"))?;
    if n == 0 {
        return Err(WebError::NotFound);
    }
    Ok(())
}

/// Every user.
pub async fn list(client: &deadpool_postgres::Client) -> Result<Vec<User>, WebError> {
    Ok(client
        .query(
            "SELECT u.name, u.role, u.scope, u.created_at, u.password_changed_at, \
             (SELECT count(*) FROM web_token t WHERE t.user_id = u.id) \
             FROM web_user u ORDER BY u.name",
            &[],
        )
        .await
        .map_err(db("listing users"))?
        .iter()
        .map(|r| User {
            name: r.get(0),
            role: r.get(1),
            scope: r.get(2),
            created_at: r.get(3),
            password_changed_at: r.get(4),
            tokens: r.get(5),
        })
        .collect())
}

/// Create a bearer token for `user`; returns the secret (shown once, stored hashed).
pub async fn token_add(
    client: &deadpool_postgres::Client,
    user: &str,
    token_name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<String, WebError> {
    check_name(token_name)?;
    let secret = format!("{TOKEN_PREFIX}{}", random_token());
    let n = client
        .execute(
            "INSERT INTO web_token (user_id, name, token_hash, expires_at) \
             SELECT id, $2, $3, $4 FROM web_user WHERE name = $1 \
             ON CONFLICT (user_id, name) DO NOTHING",
            &[&user, &token_name, &token_hash(&secret), &expires_at],
        )
        .await
        .map_err(db("adding a token"))?;
    if n == 0 {
        return Err(WebError::BadRequest(format!(
            "no user {user:?}, or it has a token named {token_name:?} already"
        )));
    }
    Ok(secret)
}

/// A user's tokens.
pub async fn token_list(
    client: &deadpool_postgres::Client,
    user: &str,
) -> Result<Vec<Token>, WebError> {
    Ok(client
        .query(
            "SELECT t.name, t.created_at, t.expires_at, t.last_used_at FROM web_token t \
             JOIN web_user u ON u.id = t.user_id WHERE u.name = $1 ORDER BY t.name",
            &[&user],
        )
        .await
        .map_err(db("listing tokens"))?
        .iter()
        .map(|r| Token {
            name: r.get(0),
            created_at: r.get(1),
            expires_at: r.get(2),
            last_used_at: r.get(3),
        })
        .collect())
}

/// Revoke a token.
pub async fn token_remove(
    client: &deadpool_postgres::Client,
    user: &str,
    token_name: &str,
) -> Result<(), WebError> {
    let n = client
        .execute(
            "DELETE FROM web_token WHERE name = $2 \
             AND user_id = (SELECT id FROM web_user WHERE name = $1)",
            &[&user, &token_name],
        )
        .await
        .map_err(db("removing a token"))?;
    if n == 0 {
        return Err(WebError::NotFound);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        assert!(check_name("ann.o'neil").is_err());
        assert!(check_name("helpdesk@example.com").is_ok());
        assert!(check_password("short").is_err());
        assert_eq!(
            check_role("domain", &["Example.COM".into()]).unwrap(),
            ["example.com"]
        );
        assert!(check_role("domain", &[]).is_err());
        assert!(check_role("domain", &["a@b".into()]).is_err());
        assert!(check_role("self", &["example.com".into()]).is_err());
        assert!(check_role("admin", &["x".into()]).is_err());
        assert!(check_role("admin", &[]).is_ok());
        assert!(check_role("root", &[]).is_err());
    }
}
