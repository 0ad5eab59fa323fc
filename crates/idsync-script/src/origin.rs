//! Where a script came from, so that every error can name it. Owns only naming; it never reads
//! files (the caller reads a script file and passes its contents and its origin).

use std::fmt;
use std::sync::Arc;

/// What an error names when a script fails: the script file (relative to the project) and/or the
/// place in the configuration that uses it, e.g. `mapping hr_user property /mail transform`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScriptOrigin {
    file: Option<Arc<str>>,
    usage: Option<Arc<str>>,
}

impl ScriptOrigin {
    /// An inline script (`"source": "..."`), named by where the configuration uses it,
    /// e.g. `mapping hr_user onCreate`.
    pub fn inline(usage: impl Into<String>) -> Self {
        Self {
            file: None,
            usage: Some(Arc::from(usage.into())),
        }
    }

    /// A script file, by its path relative to the project, e.g. `script/onCreate.js`.
    pub fn file(path: impl Into<String>) -> Self {
        Self {
            file: Some(Arc::from(path.into())),
            usage: None,
        }
    }

    /// A script file and the place that uses it: errors read
    /// `script/onCreate.js (mapping hr_user onCreate)`.
    pub fn file_used_by(path: impl Into<String>, usage: impl Into<String>) -> Self {
        Self {
            file: Some(Arc::from(path.into())),
            usage: Some(Arc::from(usage.into())),
        }
    }

    /// The script file's path relative to the project, if the script came from a file.
    pub fn file_path(&self) -> Option<&str> {
        self.file.as_deref()
    }

    /// Where the configuration uses the script, if given.
    pub fn usage(&self) -> Option<&str> {
        self.usage.as_deref()
    }
}

impl fmt::Display for ScriptOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, &self.usage) {
            (Some(file), Some(usage)) => write!(f, "{file} ({usage})"),
            (Some(file), None) => f.write_str(file),
            (None, Some(usage)) => f.write_str(usage),
            (None, None) => f.write_str("script"),
        }
    }
}
