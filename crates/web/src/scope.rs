//! What a user may see. The one place that turns a user's role into SQL: every page,
//! API endpoint and export asks [`Scope::row_predicate`] (or [`Scope::noqueue_predicate`])
//! for its `WHERE` clause, so no query can forget it. Out of scope reads as absent (404).

use crate::sql::Sql;

/// A user's role with what it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `admin`: everything.
    All,
    /// `domain`: messages whose sender or a recipient is in one of these lower-case
    /// domains, and of those only the recipient rows that are (or whose sender is).
    Domains(Vec<String>),
    /// `self`: mail from or to one of these lower-case addresses.
    Addresses(Vec<String>),
}

/// The roles, as stored in `web_user.role`.
pub const ROLES: [&str; 3] = ["admin", "domain", "self"];

impl Scope {
    /// The scope of a stored user (`role`, `scope` column); `None` for an unknown role
    /// or a scoped role without values (which the table's CHECK forbids).
    pub fn from_role(role: &str, values: Vec<String>) -> Option<Scope> {
        let values: Vec<String> = values
            .into_iter()
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
            .collect();
        match role {
            "admin" => Some(Scope::All),
            "domain" if !values.is_empty() => Some(Scope::Domains(values)),
            "self" if !values.is_empty() => Some(Scope::Addresses(values)),
            _ => None,
        }
    }

    /// Whether this is the admin scope.
    pub fn is_all(&self) -> bool {
        matches!(self, Scope::All)
    }

    /// The condition under which one recipient row is visible, given the SQL
    /// expressions of its message's sender, its recipient and its original recipient
    /// (`''` when none). `true` for admins.
    pub fn row_predicate(
        &self,
        sql: &mut Sql,
        sender: &str,
        recipient: &str,
        orig_recipient: &str,
    ) -> String {
        match self {
            Scope::All => "true".to_owned(),
            Scope::Domains(domains) => {
                let p = sql.bind(domains.clone());
                format!(
                    "(address_domain({sender}) = ANY({p}::text[]) \
                     OR address_domain({recipient}) = ANY({p}::text[]) \
                     OR address_domain({orig_recipient}) = ANY({p}::text[]))"
                )
            }
            Scope::Addresses(addresses) => {
                let p = sql.bind(addresses.clone());
                format!(
                    "(lower({sender}) = ANY({p}::text[]) \
                     OR lower({recipient}) = ANY({p}::text[]) \
                     OR lower({orig_recipient}) = ANY({p}::text[]))"
                )
            }
        }
    }

    /// The condition for a NOQUEUE row (`noqueue` aliased `alias`): its sender or
    /// recipient in scope.
    pub fn noqueue_predicate(&self, sql: &mut Sql, alias: &str) -> String {
        self.row_predicate(
            sql,
            &format!("{alias}.sender"),
            &format!("{alias}.recipient"),
            "''",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_values() {
        assert_eq!(Scope::from_role("admin", vec![]), Some(Scope::All));
        assert_eq!(
            Scope::from_role("domain", vec![" Example.COM ".into()]),
            Some(Scope::Domains(vec!["example.com".into()]))
        );
        assert_eq!(Scope::from_role("domain", vec![]), None);
        assert_eq!(Scope::from_role("self", vec!["".into()]), None);
        assert_eq!(Scope::from_role("root", vec!["x".into()]), None);
    }

    #[test]
    fn predicates_bind_values() {
        let mut sql = Sql::new("");
        assert_eq!(Scope::All.row_predicate(&mut sql, "s", "r", "o"), "true");
        let p = Scope::Domains(vec!["x.org'--".into()]).row_predicate(&mut sql, "s", "r", "o");
        assert!(p.contains("$1") && !p.contains("x.org"), "{p}");
        assert_eq!(sql.params().len(), 1);
    }
}
