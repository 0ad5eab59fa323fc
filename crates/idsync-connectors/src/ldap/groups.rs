//! ICF's `ldapGroups` virtual attribute: the DNs of the static groups whose member attribute
//! (`groupMemberAttribute`, default `uniqueMember`) holds an account's DN. Read, it is found
//! by searching the groups under the base contexts; written, the account's DN is added to or
//! removed from those groups' member attribute. With `maintainLdapGroupMembership`, a rename
//! rewrites the DN in the groups that hold it and a delete removes it from them.
//!
//! Efficiency: the groups of many accounts are read with one search per chunk of
//! [`DNS_PER_SEARCH`] accounts, `(|(uniqueMember=dn1)(uniqueMember=dn2)…)`, and the answer is
//! inverted in memory (member DN → groups). A recon page of 100 accounts costs two group
//! searches, not 100, and only the groups that hold one of the page's accounts travel; reading
//! every group once per query instead would send every group of the directory even for a
//! query that matches one account.

use super::config::LdapConfig;
use super::dn;
use super::error::{classify, classify_result};
use super::filter::escape_value;
use crate::contract::{ConnectorError, ConnectorResult};
use ldap3::{Ldap, Mod};
use std::collections::{HashMap, HashSet};

/// The native name of the virtual attribute (as ICF spells it; matched case-insensitively).
pub const LDAP_GROUPS: &str = "ldapGroups";

/// Account DNs per group search: keeps the filter well under server request-size limits.
pub const DNS_PER_SEARCH: usize = 50;

/// RFC 4511 result codes a membership change treats as "already so".
const NO_SUCH_ATTRIBUTE: u32 = 16;
const ATTRIBUTE_OR_VALUE_EXISTS: u32 = 20;
const NO_SUCH_OBJECT: u32 = 32;

/// Whether a native attribute name is the `ldapGroups` virtual attribute.
pub fn is_ldap_groups(native_name: &str) -> bool {
    native_name.eq_ignore_ascii_case(LDAP_GROUPS)
}

/// `(|(objectClass=…)…)` for the groups to search: the configured `groupObjectClasses`
/// (without `top`) plus the class the member attribute belongs to (`groupOfUniqueNames` for
/// `uniqueMember`, `groupOfNames` for `member`), so a directory configured with
/// `groupMemberAttribute: member` and the default classes still finds its groups.
fn class_filter(cfg: &LdapConfig) -> String {
    let mut classes: Vec<&str> = cfg
        .group_object_classes
        .iter()
        .map(String::as_str)
        .filter(|c| !c.eq_ignore_ascii_case("top"))
        .collect();
    let member = cfg.group_member_attribute.as_str();
    let implied = if member.eq_ignore_ascii_case("uniqueMember") {
        Some("groupOfUniqueNames")
    } else if member.eq_ignore_ascii_case("member") {
        Some("groupOfNames")
    } else {
        None
    };
    if let Some(c) = implied
        && !classes.iter().any(|x| x.eq_ignore_ascii_case(c))
    {
        classes.push(c);
    }
    let mut f = String::from("(|");
    for c in classes {
        f.push_str("(objectClass=");
        f.push_str(&escape_value(c));
        f.push(')');
    }
    f.push(')');
    f
}

/// A member value as a map key: a `uniqueMember` value may carry an optional unique
/// identifier after the DN (`uid=a,dc=x#'0101'B`), which is not part of the DN.
fn member_key(value: &str) -> String {
    let dn = match value.rfind("#'") {
        Some(i) if value.ends_with("'B") => &value[..i],
        _ => value,
    };
    dn::normalize(dn)
}

/// The groups (under the base contexts) whose member attribute holds any of `members`:
/// normalized member DN ([`dn::normalize`]) → group DNs, each group once, as the server spells
/// them. A DN in no group has no key.
pub async fn memberships(
    ldap: &mut Ldap,
    cfg: &LdapConfig,
    members: &[&str],
) -> ConnectorResult<HashMap<String, Vec<String>>> {
    let attr = cfg.group_member_attribute.clone();
    let classes = class_filter(cfg);
    let wanted: HashSet<String> = members.iter().map(|m| dn::normalize(m)).collect();
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for chunk in members.chunks(DNS_PER_SEARCH) {
        let mut f = format!("(&{classes}(|");
        for m in chunk {
            f.push('(');
            f.push_str(&attr);
            f.push('=');
            f.push_str(&escape_value(m));
            f.push(')');
        }
        f.push_str("))");
        let attrs = vec![attr.clone()];
        for base in &cfg.base_contexts {
            let mut groups = Vec::new();
            super::paging::search_all(ldap, cfg, base, &f, &attrs, |e| groups.push(e)).await?;
            for g in groups {
                let group_key = dn::normalize(&g.dn);
                let values = g
                    .attrs
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case(&attr))
                    .flat_map(|(_, v)| v.iter());
                for v in values {
                    let key = member_key(v);
                    if wanted.contains(&key) && seen.insert((key.clone(), group_key.clone())) {
                        out.entry(key).or_default().push(g.dn.clone());
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The groups of one DN.
pub async fn groups_of(
    ldap: &mut Ldap,
    cfg: &LdapConfig,
    member: &str,
) -> ConnectorResult<Vec<String>> {
    let mut map = memberships(ldap, cfg, &[member]).await?;
    Ok(map.remove(&dn::normalize(member)).unwrap_or_default())
}

async fn modify_group(
    ldap: &mut Ldap,
    cfg: &LdapConfig,
    group: &str,
    mods: Vec<Mod<Vec<u8>>>,
    already: u32,
) -> ConnectorResult<()> {
    let res = ldap
        .with_timeout(cfg.operation_timeout)
        .modify(group, mods)
        .await
        .map_err(|e| classify(e, group))?;
    if res.rc == 0 || res.rc == already {
        Ok(())
    } else if res.rc == NO_SUCH_OBJECT {
        Err(ConnectorError::InvalidData(format!(
            "ldapGroups: there is no group {group}"
        )))
    } else {
        Err(in_group(classify_result(&res, group), group))
    }
}

/// A data error of a group change says which group refused.
fn in_group(err: ConnectorError, group: &str) -> ConnectorError {
    match err {
        ConnectorError::InvalidData(m) if !m.contains(group) => {
            ConnectorError::InvalidData(format!("ldapGroups: group {group}: {m}"))
        }
        other => other,
    }
}

fn one(value: &str) -> HashSet<Vec<u8>> {
    HashSet::from([value.as_bytes().to_vec()])
}

/// Adds `member` to `group` (a member already there is fine).
pub async fn add_member(
    ldap: &mut Ldap,
    cfg: &LdapConfig,
    group: &str,
    member: &str,
) -> ConnectorResult<()> {
    let attr = cfg.group_member_attribute.as_bytes().to_vec();
    modify_group(
        ldap,
        cfg,
        group,
        vec![Mod::Add(attr, one(member))],
        ATTRIBUTE_OR_VALUE_EXISTS,
    )
    .await
}

/// Removes `member` from `group` (a member not there is fine). The server compares with the
/// attribute's DN matching rule, so case and spaces need not match the stored value. A
/// directory whose schema makes the member attribute mandatory (OpenLDAP's
/// `groupOfUniqueNames`) refuses to remove a group's last member: that is the server's
/// object-class violation, reported as such.
pub async fn remove_member(
    ldap: &mut Ldap,
    cfg: &LdapConfig,
    group: &str,
    member: &str,
) -> ConnectorResult<()> {
    let attr = cfg.group_member_attribute.as_bytes().to_vec();
    modify_group(
        ldap,
        cfg,
        group,
        vec![Mod::Delete(attr, one(member))],
        NO_SUCH_ATTRIBUTE,
    )
    .await
}

/// Makes `member` a member of exactly the groups in `wanted` (DNs compare as DNs): adds it to
/// the new ones first, then removes it from the others, so a move between groups never
/// leaves a one-member group empty on the way.
pub async fn set_groups(
    ldap: &mut Ldap,
    cfg: &LdapConfig,
    member: &str,
    wanted: &[String],
) -> ConnectorResult<()> {
    let current = groups_of(ldap, cfg, member).await?;
    let current_keys: HashSet<String> = current.iter().map(|g| dn::normalize(g)).collect();
    let mut wanted_keys = HashSet::new();
    for g in wanted {
        let key = dn::normalize(g);
        if wanted_keys.insert(key.clone()) && !current_keys.contains(&key) {
            add_member(ldap, cfg, g, member).await?;
        }
    }
    for g in &current {
        if !wanted_keys.contains(&dn::normalize(g)) {
            remove_member(ldap, cfg, g, member).await?;
        }
    }
    Ok(())
}

/// After a rename: every group that holds `old` holds `new` instead (one modify per group).
pub async fn rename_member(
    ldap: &mut Ldap,
    cfg: &LdapConfig,
    old: &str,
    new: &str,
) -> ConnectorResult<()> {
    let attr = cfg.group_member_attribute.as_bytes().to_vec();
    for g in groups_of(ldap, cfg, old).await? {
        let mods = vec![
            Mod::Add(attr.clone(), one(new)),
            Mod::Delete(attr.clone(), one(old)),
        ];
        let res = ldap
            .with_timeout(cfg.operation_timeout)
            .modify(&g, mods)
            .await
            .map_err(|e| classify(e, &g))?;
        match res.rc {
            0 => {}
            // The group already holds the new DN: only the old one goes.
            ATTRIBUTE_OR_VALUE_EXISTS => remove_member(ldap, cfg, &g, old).await?,
            _ => return Err(in_group(classify_result(&res, &g), &g)),
        }
    }
    Ok(())
}

/// After a delete: `member` leaves every group that holds it.
pub async fn remove_from_all(
    ldap: &mut Ldap,
    cfg: &LdapConfig,
    member: &str,
) -> ConnectorResult<()> {
    for g in groups_of(ldap, cfg, member).await? {
        remove_member(ldap, cfg, &g, member).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests may unwrap.
    use super::*;

    #[test]
    fn member_values_with_a_unique_identifier_key_as_their_dn() {
        assert_eq!(
            member_key("uid=A, ou=People,dc=example,dc=com#'0101'B"),
            dn::normalize("uid=a,ou=people,dc=example,dc=com")
        );
        assert_eq!(member_key("cn=x#y,dc=z"), dn::normalize("cn=x#y,dc=z"));
    }

    #[test]
    fn the_class_filter_follows_the_member_attribute() {
        let mut cfg = LdapConfig::from_properties(&serde_json::json!({
            "baseContexts": ["dc=example,dc=com"]
        }))
        .unwrap();
        assert_eq!(cfg.group_member_attribute, "uniqueMember");
        assert_eq!(class_filter(&cfg), "(|(objectClass=groupOfUniqueNames))");
        cfg.group_member_attribute = "member".into();
        assert_eq!(
            class_filter(&cfg),
            "(|(objectClass=groupOfUniqueNames)(objectClass=groupOfNames))"
        );
    }
}
