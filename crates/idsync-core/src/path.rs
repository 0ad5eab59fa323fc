//! Resource paths: `managed/<type>[/<id>]`, `system/<connector>/<objectType>[/<id>]`,
//! `repo/link[/<id>]` (docs/rest.md).

use std::fmt;

/// A parsed resource path. A leading `/` and a leading `openidm/` are tolerated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResourcePath {
    Managed {
        object_type: String,
        id: Option<String>,
    },
    System {
        connector: String,
        object_type: String,
        id: Option<String>,
    },
    Link {
        id: Option<String>,
    },
}

/// Why a string is not a resource path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("empty resource path")]
    Empty,
    #[error("resource path \"{0}\" must start with managed/, system/ or repo/link")]
    UnknownRoot(String),
    #[error("resource path \"{path}\": {problem}")]
    Malformed { path: String, problem: &'static str },
}

impl ResourcePath {
    pub fn parse(s: &str) -> Result<Self, PathError> {
        let trimmed = s.trim_matches('/');
        let trimmed = trimmed.strip_prefix("openidm/").unwrap_or(trimmed);
        if trimmed.is_empty() {
            return Err(PathError::Empty);
        }
        let parts: Vec<&str> = trimmed.split('/').collect();
        let malformed = |problem| PathError::Malformed {
            path: s.to_string(),
            problem,
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(malformed("has an empty segment"));
        }
        match parts.as_slice() {
            ["managed"] => Err(malformed("needs an object type: managed/<type>")),
            ["managed", t] => Ok(Self::Managed {
                object_type: (*t).into(),
                id: None,
            }),
            ["managed", t, id] => Ok(Self::Managed {
                object_type: (*t).into(),
                id: Some((*id).into()),
            }),
            ["managed", ..] => Err(malformed("has too many segments for managed/<type>/<id>")),
            ["system"] | ["system", _] => Err(malformed(
                "needs a connector and an object type: system/<name>/<type>",
            )),
            ["system", c, t] => Ok(Self::System {
                connector: (*c).into(),
                object_type: (*t).into(),
                id: None,
            }),
            ["system", c, t, id] => Ok(Self::System {
                connector: (*c).into(),
                object_type: (*t).into(),
                id: Some((*id).into()),
            }),
            ["system", ..] => Err(malformed(
                "has too many segments for system/<name>/<type>/<id>",
            )),
            ["repo", "link"] => Ok(Self::Link { id: None }),
            ["repo", "link", id] => Ok(Self::Link {
                id: Some((*id).into()),
            }),
            ["repo", ..] => Err(malformed("only repo/link is addressable")),
            _ => Err(PathError::UnknownRoot(s.to_string())),
        }
    }

    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Managed { id, .. } | Self::System { id, .. } | Self::Link { id } => id.as_deref(),
        }
    }

    /// The collection this path belongs to (the path without its id).
    pub fn collection(&self) -> ResourcePath {
        match self {
            Self::Managed { object_type, .. } => Self::Managed {
                object_type: object_type.clone(),
                id: None,
            },
            Self::System {
                connector,
                object_type,
                ..
            } => Self::System {
                connector: connector.clone(),
                object_type: object_type.clone(),
                id: None,
            },
            Self::Link { .. } => Self::Link { id: None },
        }
    }

    /// This collection with `id` appended.
    pub fn with_id(&self, id: impl Into<String>) -> ResourcePath {
        let id = Some(id.into());
        match self.collection() {
            Self::Managed { object_type, .. } => Self::Managed { object_type, id },
            Self::System {
                connector,
                object_type,
                ..
            } => Self::System {
                connector,
                object_type,
                id,
            },
            Self::Link { .. } => Self::Link { id },
        }
    }
}

impl fmt::Display for ResourcePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Managed { object_type, .. } => write!(f, "managed/{object_type}")?,
            Self::System {
                connector,
                object_type,
                ..
            } => write!(f, "system/{connector}/{object_type}")?,
            Self::Link { .. } => f.write_str("repo/link")?,
        }
        if let Some(id) = self.id() {
            write!(f, "/{id}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ResourcePath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        assert_eq!(
            ResourcePath::parse("managed/user").unwrap(),
            ResourcePath::Managed {
                object_type: "user".into(),
                id: None
            }
        );
        assert_eq!(
            ResourcePath::parse("/openidm/system/ldap/account/42").unwrap(),
            ResourcePath::System {
                connector: "ldap".into(),
                object_type: "account".into(),
                id: Some("42".into())
            }
        );
        assert_eq!(
            ResourcePath::parse("repo/link").unwrap(),
            ResourcePath::Link { id: None }
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "managed/user",
            "managed/user/1",
            "system/hr/account",
            "system/hr/account/x",
            "repo/link",
        ] {
            assert_eq!(ResourcePath::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(ResourcePath::parse(""), Err(PathError::Empty));
        assert!(matches!(
            ResourcePath::parse("foo/bar"),
            Err(PathError::UnknownRoot(_))
        ));
        let e = ResourcePath::parse("system/hr").unwrap_err().to_string();
        assert!(e.contains("system/<name>/<type>"), "{e}");
        let e = ResourcePath::parse("managed//x").unwrap_err().to_string();
        assert!(e.contains("empty segment"), "{e}");
    }
}
