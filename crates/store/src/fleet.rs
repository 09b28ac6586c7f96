//! Fleet support (migration V12): the configured host alias map, written into the
//! `host_alias` table that `fleet_host_is()` reads when it links a delivery on one host
//! to the message another host logged (`delivery_path()`).
//!
//! The links themselves are computed at query time from the stored rows, never
//! written here: whichever host's logs are loaded first, the link exists once both are
//! in the database.

use std::collections::BTreeMap;

use crate::{Store, StoreError};

/// Longest alias accepted (a DNS name is at most 253 characters; an IPv6 address with
/// a zone fewer).
pub const MAX_ALIAS_LEN: usize = 255;

/// Aliases of the configuration, host → its other names and addresses, as rows
/// (alias in lower case, host) in alias order. An alias named for two hosts, an empty
/// or over-long alias or host is an error naming it.
pub fn alias_rows(
    aliases: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<(String, String)>, String> {
    let mut by_alias: BTreeMap<String, String> = BTreeMap::new();
    for (host, names) in aliases {
        let host = host.trim();
        if host.is_empty() || host.len() > MAX_ALIAS_LEN {
            return Err(format!(
                "fleet.host_aliases: host name {host:?} is empty or longer than {MAX_ALIAS_LEN} bytes"
            ));
        }
        for name in names {
            let alias = name.trim().to_ascii_lowercase();
            if alias.is_empty() || alias.len() > MAX_ALIAS_LEN || alias.contains(['[', ']']) {
                return Err(format!(
                    "fleet.host_aliases.{host}: {name:?} is not a host name or an address \
                     (write 10.0.0.5, not [10.0.0.5]; at most {MAX_ALIAS_LEN} bytes)"
                ));
            }
            if let Some(other) = by_alias.get(&alias)
                && other != host
            {
                return Err(format!(
                    "fleet.host_aliases: {alias:?} is given for both {other:?} and {host:?}"
                ));
            }
            by_alias.insert(alias, host.to_owned());
        }
    }
    Ok(by_alias.into_iter().collect())
}

impl Store {
    /// Make `host_alias` hold exactly `aliases` (host → names and addresses), in one
    /// transaction; returns how many aliases it holds. Nothing is written when the
    /// table already holds them (every start would otherwise rewrite it).
    pub async fn sync_host_aliases(
        &self,
        aliases: &BTreeMap<String, Vec<String>>,
    ) -> Result<usize, StoreError> {
        let rows = alias_rows(aliases).map_err(|reason| StoreError::HostAliases { reason })?;
        let mut client = self.client().await?;
        let stored: Vec<(String, String)> = client
            .query("SELECT alias, host FROM host_alias ORDER BY alias", &[])
            .await
            .map_err(|e| StoreError::query("reading host_alias", e))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        if stored == rows {
            return Ok(rows.len());
        }
        let tx = client
            .transaction()
            .await
            .map_err(|e| StoreError::query("starting the host_alias update", e))?;
        tx.execute("DELETE FROM host_alias", &[])
            .await
            .map_err(|e| StoreError::query("replacing host_alias", e))?;
        let (names, hosts): (Vec<&str>, Vec<&str>) =
            rows.iter().map(|(a, h)| (a.as_str(), h.as_str())).unzip();
        tx.execute(
            "INSERT INTO host_alias (alias, host) SELECT * FROM unnest($1::text[], $2::text[])",
            &[&names, &hosts],
        )
        .await
        .map_err(|e| StoreError::query("writing host_alias", e))?;
        tx.commit()
            .await
            .map_err(|e| StoreError::query("committing host_alias", e))?;
        Ok(rows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        entries
            .iter()
            .map(|(h, a)| (h.to_string(), a.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn aliases_become_lower_case_rows() {
        let rows = alias_rows(&map(&[
            ("store1", &["Store1.Example.Internal", "10.0.0.5"]),
            ("mx1", &["2001:db8::25"]),
        ]))
        .unwrap();
        assert_eq!(
            rows,
            vec![
                ("10.0.0.5".to_owned(), "store1".to_owned()),
                ("2001:db8::25".to_owned(), "mx1".to_owned()),
                ("store1.example.internal".to_owned(), "store1".to_owned()),
            ]
        );
    }

    #[test]
    fn conflicting_or_malformed_aliases_are_refused() {
        let e = alias_rows(&map(&[("a", &["x.example"]), ("b", &["X.example"])])).unwrap_err();
        assert!(e.contains("both"), "{e}");
        assert!(alias_rows(&map(&[("a", &["[10.0.0.5]"])])).is_err());
        assert!(alias_rows(&map(&[("a", &[" "])])).is_err());
        assert!(alias_rows(&map(&[("", &["x"])])).is_err());
        assert!(alias_rows(&map(&[("a", &["a"]), ("a ", &["b"])])).is_ok());
    }
}
