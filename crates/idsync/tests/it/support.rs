//! Test harness: temp copies of sample projects and a runner for the real binary.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test: this build's, or `IDSYNC_E2E_BIN` (to show that a test fails on
/// another build, e.g. the one before a fix).
pub fn idsync() -> Command {
    match std::env::var_os("IDSYNC_E2E_BIN") {
        Some(bin) => Command::new(bin),
        None => Command::new(env!("CARGO_BIN_EXE_idsync")),
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A temp copy of `samples/<name>` (or any folder under the repo root).
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    /// A project of the test's own made from `rel`: the files git tracks there (so nothing a
    /// run left in the checkout leaks in), with a sample's `"sample": true` dropped, so the
    /// commands run on the copy itself.
    pub fn copy_of(rel: &str) -> Project {
        let p = Self::sample_copy_of(rel);
        let settings = p.file("conf/idsync.json");
        if let Ok(text) = std::fs::read_to_string(&settings) {
            let mut v: Value = serde_json::from_str(&text).expect("idsync.json");
            if v.as_object_mut().and_then(|o| o.remove("sample")).is_some() {
                std::fs::write(&settings, v.to_string()).expect("write idsync.json");
            }
        }
        p
    }

    /// A copy of `rel` as a user finds it in a fresh checkout: the files git tracks there.
    pub fn sample_copy_of(rel: &str) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = repo_root();
        match tracked_files(&root, rel) {
            Some(files) => {
                for f in files {
                    let dest = dir.path().join(f.strip_prefix(rel).expect("under rel"));
                    std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
                    std::fs::copy(root.join(&f), dest).expect("copy");
                }
            }
            // Not a git checkout (a source archive): every file but the state folder.
            None => copy_dir(&root.join(rel), dir.path()),
        }
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.file(rel)).expect("read project file")
    }

    /// Copies the repository file `repo_rel` into the project as `rel`.
    pub fn copy_in(&self, repo_rel: &str, rel: &str) {
        let text = std::fs::read_to_string(repo_root().join(repo_rel)).expect("read fixture");
        self.write(rel, &text);
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.file(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write project file");
    }

    /// Runs `idsync recon --json` and returns (exit code, summary).
    pub fn recon_json(&self, mapping: &str, extra: &[&str]) -> (i32, Value) {
        let out = self.recon(mapping, &[&["--json"], extra].concat());
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "--json stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), summary)
    }

    pub fn recon(&self, mapping: &str, extra: &[&str]) -> Output {
        idsync()
            .args(["recon", "--project"])
            .arg(self.path())
            .args(["--mapping", mapping])
            .args(extra)
            .output()
            .expect("run idsync")
    }
}

/// The files git tracks under `rel`, relative to the repository root; None outside a checkout.
fn tracked_files(root: &Path, rel: &str) -> Option<Vec<PathBuf>> {
    let out = Command::new("git")
        .current_dir(root)
        .args(["ls-files", "-z", "--", rel])
        .output()
        .ok()?;
    if !out.status.success() || out.stdout.is_empty() {
        return None;
    }
    Some(
        out.stdout
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| PathBuf::from(String::from_utf8_lossy(s).into_owned()))
            .collect(),
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if name == ".idsync" {
            continue;
        }
        let dest = to.join(&name);
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).expect("copy");
        }
    }
}

/// Parses a CSV file into rows of (header → value) for assertions.
pub fn csv_rows(text: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().expect("headers").clone();
    r.records()
        .map(|rec| {
            let rec = rec.expect("record");
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// A PostgreSQL database of its own for one test, dropped when the guard goes. The server is
/// `IDSYNC_TEST_PG_URL` (default the local one); a missing server fails the test loudly.
pub struct PgDatabase {
    pub url: String,
    admin: String,
    name: String,
}

impl PgDatabase {
    pub fn create() -> PgDatabase {
        let admin = std::env::var("IDSYNC_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        let name = format!("idsync_e2e_{}", uuid_like());
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(b, _)| b)
            .to_string();
        PgDatabase {
            url: format!("{base}/{name}"),
            admin,
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-qc", sql])
        .output()
        .expect("psql must be installed");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", nanos, std::process::id())
}

/// Runs one SQL statement with `psql` and returns its unaligned, tuples-only output.
pub fn psql_query(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-qAtc", sql])
        .output()
        .expect("psql must be installed");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `s` percent-encoded for a query string value (every byte but RFC 3986's unreserved ones).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs `idsync config validate` on the project: (exit code, stderr).
pub fn validate(p: &Project) -> (i32, String) {
    let out = idsync()
        .args(["config", "validate", "--project"])
        .arg(p.path())
        .output()
        .expect("run idsync");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
