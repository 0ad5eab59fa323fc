//! The LDAP connector's configuration: ICF `LdapConnector` property names read from a
//! provisioner's `configurationProperties`, and the `objectTypes` block that maps idsync
//! property names to native attribute names.
//!
//! Only parsing and validation live here; nothing here opens a connection.

use crate::contract::{ConnectorError, ConnectorResult};
use serde_json::Value;
use std::time::Duration;

/// The native name that stands for the entry's DN (ICF `__NAME__`).
pub const NAME_ATTR: &str = "__NAME__";
/// The native name that stands for the uid attribute (ICF `__UID__`).
pub const UID_ATTR: &str = "__UID__";

/// Connection and directory settings (ICF `LdapConnector` configuration properties).
#[derive(Debug, Clone, PartialEq)]
pub struct LdapConfig {
    pub host: String,
    pub port: u16,
    pub ssl: bool,
    pub start_tls: bool,
    pub principal: Option<String>,
    pub credentials: Option<String>,
    pub base_contexts: Vec<String>,
    pub account_object_classes: Vec<String>,
    pub account_search_filter: Option<String>,
    pub account_user_name_attributes: Vec<String>,
    pub group_object_classes: Vec<String>,
    /// The group attribute that holds member DNs, for `ldapGroups` (ICF
    /// `groupMemberAttribute`, default `uniqueMember`).
    pub group_member_attribute: String,
    /// Rename and delete of an account also rewrite or remove its DN in the groups that hold
    /// it (ICF `maintainLdapGroupMembership`).
    pub maintain_ldap_group_membership: bool,
    pub uid_attribute: String,
    /// Entries per page when the connector reads a whole result set itself.
    pub block_size: i32,
    pub use_paged_result_control: bool,
    /// Connections in the pool (idsync extension `connectionPoolSize`, default 8).
    pub pool_size: usize,
    /// The bound on every single LDAP operation (idsync extension `operationTimeoutMs`).
    pub operation_timeout: Duration,
    /// Skip TLS certificate verification (idsync extension `trustAllCertificates`; tests only).
    pub trust_all_certificates: bool,
    /// liveSync by `modifyTimestamp`/`createTimestamp` (ICF `useTimestampsForSync`).
    pub use_timestamps_for_sync: bool,
    /// liveSync by OpenLDAP's accesslog overlay: the suffix of the log database
    /// (idsync extension `accessLogDatabase`, e.g. `cn=accesslog`). Wins over timestamps.
    pub access_log_database: Option<String>,
    /// How far back a liveSync poll looks again, for writes that became visible after a later
    /// one was read (idsync extension `liveSyncLookBackSeconds`).
    pub live_sync_look_back: Duration,
    /// Changes one liveSync poll hands over at most (ICF `changeLogBlockSize`).
    pub change_log_block_size: usize,
}

/// One object type of the `objectTypes` block.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectTypeDef {
    /// The idsync name (`account`).
    pub name: String,
    /// The ICF name (`__ACCOUNT__`, `__GROUP__`, or another object class).
    pub native_type: String,
    pub properties: Vec<PropertyDef>,
}

/// One property of an object type.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyDef {
    pub name: String,
    /// The LDAP attribute, or `__NAME__` (the DN) / `__UID__` (the uid attribute).
    pub native_name: String,
    /// `"type":"array"`: the property is always an array of values.
    pub array: bool,
    /// Values travel as base64 (`nativeType` `JAVA_TYPE_BYTE_ARRAY`/`binary`, or a `;binary`
    /// attribute).
    pub binary: bool,
}

impl LdapConfig {
    /// Reads `configurationProperties`.
    pub fn from_properties(props: &Value) -> ConnectorResult<Self> {
        let obj = props.as_object().ok_or_else(|| {
            ConnectorError::Config("configurationProperties must be an object".into())
        })?;
        let get = |k: &str| obj.get(k).filter(|v| !v.is_null());
        let string = |k: &str| -> ConnectorResult<Option<String>> {
            match get(k) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(ConnectorError::Config(format!(
                    "{k} must be a string, not {other}"
                ))),
            }
        };
        let boolean = |k: &str, default: bool| -> ConnectorResult<bool> {
            match get(k) {
                None => Ok(default),
                Some(Value::Bool(b)) => Ok(*b),
                Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
                Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
                Some(other) => Err(ConnectorError::Config(format!(
                    "{k} must be a boolean, not {other}"
                ))),
            }
        };
        let number = |k: &str, default: u64| -> ConnectorResult<u64> {
            match get(k) {
                None => Ok(default),
                Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
                    ConnectorError::Config(format!("{k} must be a non-negative integer"))
                }),
                Some(Value::String(s)) => s.trim().parse().map_err(|_| {
                    ConnectorError::Config(format!("{k} must be a non-negative integer, not {s:?}"))
                }),
                Some(other) => Err(ConnectorError::Config(format!(
                    "{k} must be a number, not {other}"
                ))),
            }
        };
        let strings = |k: &str| -> ConnectorResult<Vec<String>> {
            match get(k) {
                None => Ok(Vec::new()),
                Some(Value::String(s)) => Ok(vec![s.clone()]),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_owned).ok_or_else(|| {
                            ConnectorError::Config(format!("{k} must hold strings, not {v}"))
                        })
                    })
                    .collect(),
                Some(other) => Err(ConnectorError::Config(format!(
                    "{k} must be an array, not {other}"
                ))),
            }
        };

        let ssl = boolean("ssl", false)?;
        let host = string("host")?.unwrap_or_else(|| "localhost".into());
        let port = number("port", if ssl { 636 } else { 389 })?;
        let port = u16::try_from(port)
            .map_err(|_| ConnectorError::Config(format!("port {port} is out of range")))?;
        let base_contexts = strings("baseContexts")?;
        if base_contexts.is_empty() {
            return Err(ConnectorError::Config(
                "baseContexts must name at least one DN".into(),
            ));
        }
        let mut account_object_classes = strings("accountObjectClasses")?;
        if account_object_classes.is_empty() {
            account_object_classes = ["top", "person", "organizationalPerson", "inetOrgPerson"]
                .map(String::from)
                .to_vec();
        }
        let mut group_object_classes = strings("groupObjectClasses")?;
        if group_object_classes.is_empty() {
            group_object_classes = ["top", "groupOfUniqueNames"].map(String::from).to_vec();
        }
        let mut account_user_name_attributes = strings("accountUserNameAttributes")?;
        if account_user_name_attributes.is_empty() {
            account_user_name_attributes = vec!["uid".into()];
        }
        let block_size = number("blockSize", 100)?.clamp(1, i32::MAX as u64) as i32;
        let pool_size = number("connectionPoolSize", 8)?.clamp(1, 1024) as usize;
        let timeout_ms = number("operationTimeoutMs", 30_000)?.max(1);
        Ok(Self {
            host,
            port,
            ssl,
            start_tls: boolean("startTLS", false)?,
            principal: string("principal")?.filter(|s| !s.is_empty()),
            credentials: string("credentials")?,
            base_contexts,
            account_object_classes,
            account_search_filter: string("accountSearchFilter")?.filter(|s| !s.trim().is_empty()),
            account_user_name_attributes,
            group_object_classes,
            group_member_attribute: string("groupMemberAttribute")?
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "uniqueMember".into()),
            maintain_ldap_group_membership: boolean("maintainLdapGroupMembership", false)?,
            uid_attribute: string("uidAttribute")?.unwrap_or_else(|| "entryUUID".into()),
            block_size,
            use_paged_result_control: boolean("usePagedResultControl", true)?,
            pool_size,
            operation_timeout: Duration::from_millis(timeout_ms),
            trust_all_certificates: boolean("trustAllCertificates", false)?,
            use_timestamps_for_sync: boolean("useTimestampsForSync", false)?,
            access_log_database: string("accessLogDatabase")?.filter(|s| !s.trim().is_empty()),
            live_sync_look_back: Duration::from_secs(number("liveSyncLookBackSeconds", 2)?),
            change_log_block_size: number("changeLogBlockSize", 1000)?.clamp(1, 100_000) as usize,
        })
    }

    /// The URL ldap3 connects to.
    pub fn url(&self) -> String {
        let scheme = if self.ssl { "ldaps" } else { "ldap" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}", self.port)
    }
}

impl ObjectTypeDef {
    /// Reads the `objectTypes` block. A missing block gives `account` and `group` with no
    /// declared properties (every attribute is then returned under its own name).
    pub fn parse_all(object_types: Option<&Value>) -> ConnectorResult<Vec<Self>> {
        let Some(block) = object_types.filter(|v| !v.is_null()) else {
            return Ok(vec![
                Self {
                    name: "account".into(),
                    native_type: "__ACCOUNT__".into(),
                    properties: vec![],
                },
                Self {
                    name: "group".into(),
                    native_type: "__GROUP__".into(),
                    properties: vec![],
                },
            ]);
        };
        let map = block
            .as_object()
            .ok_or_else(|| ConnectorError::Config("objectTypes must be an object".into()))?;
        map.iter()
            .map(|(name, def)| Self::parse(name, def))
            .collect()
    }

    fn parse(name: &str, def: &Value) -> ConnectorResult<Self> {
        let native_type = def
            .get("nativeType")
            .and_then(Value::as_str)
            .or_else(|| def.get("id").and_then(Value::as_str))
            .unwrap_or(name)
            .to_owned();
        let mut properties = Vec::new();
        if let Some(props) = def.get("properties").and_then(Value::as_object) {
            for (pname, pdef) in props {
                let native_name = pdef
                    .get("nativeName")
                    .and_then(Value::as_str)
                    .unwrap_or(pname)
                    .to_owned();
                let array = pdef.get("type").and_then(Value::as_str) == Some("array");
                let native_type = pdef
                    .get("nativeType")
                    .and_then(Value::as_str)
                    .or_else(|| pdef.pointer("/items/nativeType").and_then(Value::as_str))
                    .unwrap_or("");
                let binary = matches!(
                    native_type.to_ascii_lowercase().as_str(),
                    "java_type_byte_array" | "byte[]" | "binary" | "bytes"
                ) || native_name.to_ascii_lowercase().ends_with(";binary");
                properties.push(PropertyDef {
                    name: pname.clone(),
                    native_name,
                    array,
                    binary,
                });
            }
        }
        Ok(Self {
            name: name.to_owned(),
            native_type,
            properties,
        })
    }

    /// Whether `object_type` (idsync or ICF name) names this type.
    pub fn answers_to(&self, object_type: &str) -> bool {
        self.name == object_type || self.native_type == object_type
    }

    pub fn is_group(&self) -> bool {
        self.native_type == "__GROUP__" || self.name == "group"
    }

    /// The property whose native name is the DN, if declared.
    pub fn name_property(&self) -> Option<&PropertyDef> {
        self.properties.iter().find(|p| p.native_name == NAME_ATTR)
    }

    pub fn property(&self, name: &str) -> Option<&PropertyDef> {
        self.properties.iter().find(|p| p.name == name)
    }
}
