//! The managed object types of a project without `conf/managed.json`: IDM's default types,
//! `user` and `role`, as IDM gives them to a project that has none
//! (docs/configuration.md#confmanagedjson). Modelled on the types of IDM's default
//! `managed.json` (their properties and what they hold), without its user-interface metadata and
//! without its hooks, which call IDM's role-provisioning scripts (docs/idm-samples.md).

use crate::types::ManagedType;
use serde_json::{Value, json};

/// A string property with a title.
fn text(title: &str) -> Value {
    json!({"type": "string", "title": title})
}

/// A property holding references to other objects (IDM's relationships,
/// docs/configuration.md#relationship-properties). Returned by default: a project without
/// `managed.json` reads its references back with the object, as it always has.
fn refs(title: &str, to: &str) -> Value {
    json!({"type": "array", "title": title, "returnByDefault": true,
           "items": {"type": "relationship", "resourceCollection": [{"path": to}]}})
}

fn typed(name: &str, title: &str, properties: Value, indexed: &[&str]) -> ManagedType {
    let schema = json!({"type": "object", "title": title, "properties": properties});
    ManagedType {
        name: name.to_string(),
        raw: json!({"name": name, "schema": schema.clone()}),
        schema,
        indexed: indexed.iter().map(|s| (*s).to_string()).collect(),
        // IDM's default types come without their lifecycle scripts (docs/idm-samples.md).
        ..ManagedType::default()
    }
}

/// IDM's default managed object types: `user` (indexed on `userName` and `mail`, the properties
/// correlation queries compare) and `role` (indexed on `name`).
pub(crate) fn default_managed_types() -> Vec<ManagedType> {
    let user = json!({
        "userName": text("Username"),
        "password": {"type": "string", "title": "Password", "scope": "private"},
        "givenName": text("First Name"),
        "sn": text("Last Name"),
        "mail": text("Email Address"),
        "description": text("Description"),
        "accountStatus": text("Status"),
        "telephoneNumber": text("Telephone Number"),
        "postalAddress": text("Address 1"),
        "address2": text("Address 2"),
        "city": text("City"),
        "postalCode": text("Postal Code"),
        "country": text("Country"),
        "stateProvince": text("State/Province"),
        "roles": refs("Provisioning Roles", "managed/role"),
        "authzRoles": refs("Authorization Roles", "managed/role"),
        "manager": {"type": "relationship", "title": "Manager", "returnByDefault": true, "resourceCollection": [{"path": "managed/user"}]},
        "reports": refs("Direct Reports", "managed/user")
    });
    let role = json!({
        "name": text("Name"),
        "description": text("Description"),
        "members": refs("Role Members", "managed/user"),
        "condition": text("Condition")
    });
    vec![
        typed("user", "User", user, &["userName", "mail"]),
        typed("role", "Role", role, &["name"]),
    ]
}
