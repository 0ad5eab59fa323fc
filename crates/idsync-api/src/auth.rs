//! Authentication and roles (docs/rest.md#common-rules): bearer tokens checked by their SHA-256,
//! IDM's `X-OpenIDM-Username` / `X-OpenIDM-Password` headers checked against argon2 PHC hashes,
//! roles `admin` (everything) and `reader` (GET only), and the helpers the CLI needs
//! (`auth new-token`, `auth hash-password`, the generated admin token file).
//!
//! Secrets never leave this module: tokens and passwords are not logged, not echoed in errors,
//! and compared in constant time. It must not read the environment: `IDSYNC_ADMIN_TOKEN` is
//! passed in by the binary.

use crate::error::{ApiError, ApiResult};
use crate::session::Sessions;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::{HeaderMap, Method};
use base64::Engine;
use idsync_config::{AuthConfig, Role, TokenDef, UserDef};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// Who made a request, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name or the user name (never the secret).
    pub name: String,
    pub roles: Vec<Role>,
}

impl Principal {
    /// Whether this principal may call `method` (readers may only read).
    pub fn may(&self, method: &Method) -> bool {
        self.roles.contains(&Role::Admin)
            || (self.roles.contains(&Role::Reader)
                && (method == Method::GET || method == Method::HEAD))
    }
}

#[derive(Clone)]
struct TokenCredential {
    name: String,
    roles: Vec<Role>,
    sha256: [u8; 32],
}

/// The credentials a server accepts.
#[derive(Clone)]
pub struct AuthState {
    tokens: Vec<TokenCredential>,
    users: Vec<UserDef>,
    /// Turns for password checks: argon2 costs 19 MiB and tens of milliseconds of a core, so
    /// a storm of logins (wrong or unknown users included) waits here instead of taking every
    /// core and gigabytes of memory.
    password_checks: Arc<Semaphore>,
    /// Session tokens opened by `authentication?_action=login` (the console's sign-in).
    sessions: Sessions,
}

impl Default for AuthState {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            users: Vec::new(),
            password_checks: Arc::new(Semaphore::new(DEFAULT_CONCURRENT_PASSWORD_CHECKS)),
            sessions: Sessions::default(),
        }
    }
}

/// Password checks that run at once unless [`AuthState::with_concurrent_password_checks`]
/// says otherwise.
pub const DEFAULT_CONCURRENT_PASSWORD_CHECKS: usize = 2;

impl std::fmt::Debug for AuthState {
    // Hashes are not secrets, but there is no reason to print them either.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthState")
            .field(
                "tokens",
                &self.tokens.iter().map(|t| &t.name).collect::<Vec<_>>(),
            )
            .field(
                "users",
                &self.users.iter().map(|u| &u.username).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The name the admin token from the environment or the generated file is known by.
pub const ADMIN_TOKEN_NAME: &str = "admin-token";

impl AuthState {
    /// Credentials from `conf/authentication.json` plus, when given, the SHA-256 hex of the
    /// admin token (from `IDSYNC_ADMIN_TOKEN` via [`sha256_hex`], or from
    /// [`ensure_admin_token_file`]). A token hash that is not 64 hex digits is a config error.
    pub fn new(config: &AuthConfig, admin_token_sha256: Option<&str>) -> ApiResult<Self> {
        let mut tokens = Vec::with_capacity(config.tokens.len() + 1);
        for t in &config.tokens {
            tokens.push(TokenCredential {
                name: t.name.clone(),
                roles: t.roles.clone(),
                sha256: decode_sha256(&t.sha256).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "authentication.json: token {} has a sha256 that is not 64 hex digits",
                        t.name
                    ))
                })?,
            });
        }
        if let Some(h) = admin_token_sha256 {
            tokens.push(TokenCredential {
                name: ADMIN_TOKEN_NAME.into(),
                roles: vec![Role::Admin],
                sha256: decode_sha256(h).ok_or_else(|| {
                    ApiError::BadRequest("the admin token hash is not 64 hex digits".into())
                })?,
            });
        }
        Ok(Self {
            tokens,
            users: config.users.clone(),
            ..Self::default()
        })
    }

    /// The same credentials with at most `n` password checks running at once.
    pub fn with_concurrent_password_checks(mut self, n: usize) -> Self {
        self.password_checks = Arc::new(Semaphore::new(n.clamp(1, 1024)));
        self
    }

    /// The session tokens opened by logins.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// True when no credential at all is configured (the binary then generates the admin token
    /// file).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.users.is_empty()
    }

    /// Checks the request's credentials. `Ok(None)` means none were given.
    pub async fn authenticate(&self, headers: &HeaderMap) -> ApiResult<Option<Principal>> {
        if let Some(auth) = headers.get(axum::http::header::AUTHORIZATION) {
            let auth = auth
                .to_str()
                .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
            let (scheme, token) = auth.split_once(' ').unwrap_or((auth, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(ApiError::Unauthorized(
                    "only the Bearer authorization scheme is supported".into(),
                ));
            }
            return self.check_token(token.trim()).map(Some);
        }
        let user = headers.get("x-openidm-username");
        let pass = headers.get("x-openidm-password");
        match (user, pass) {
            (None, None) => Ok(None),
            (Some(u), Some(p)) => {
                let (Ok(u), Ok(p)) = (u.to_str(), p.to_str()) else {
                    return Err(ApiError::Unauthorized(
                        "malformed credential headers".into(),
                    ));
                };
                self.check_password(u, p).await.map(Some)
            }
            _ => Err(ApiError::Unauthorized(
                "X-OpenIDM-Username and X-OpenIDM-Password must be given together".into(),
            )),
        }
    }

    fn check_token(&self, token: &str) -> ApiResult<Principal> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every configured hash is compared, so the time does not tell which one was close.
        let mut found: Option<&TokenCredential> = None;
        for cred in &self.tokens {
            if bool::from(cred.sha256.ct_eq(&presented)) && found.is_none() {
                found = Some(cred);
            }
        }
        found
            .map(|c| Principal {
                name: c.name.clone(),
                roles: c.roles.clone(),
            })
            .or_else(|| self.sessions.find(&presented))
            .ok_or_else(|| ApiError::Unauthorized("invalid credentials".into()))
    }

    async fn check_password(&self, username: &str, password: &str) -> ApiResult<Principal> {
        let user = self
            .users
            .iter()
            .find(|u| bool::from(u.username.as_bytes().ct_eq(username.as_bytes())))
            .cloned();
        let password = password.to_string();
        // argon2 is deliberately slow: keep it off the async workers. An unknown user is still
        // hashed once so that its answer takes as long as a wrong password.
        let phc = user
            .as_ref()
            .map(|u| u.password.clone())
            .unwrap_or_else(|| DUMMY_PHC.to_string());
        let waiting = GaugeGuard::up(PASSWORD_CHECKS_WAITING);
        let turn = self
            .password_checks
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ApiError::Internal(format!("password check turn: {e}")))?;
        drop(waiting);
        let ok = tokio::task::spawn_blocking(move || {
            let running = GaugeGuard::up(PASSWORD_CHECKS_RUNNING);
            let ok = verify_password(&password, &phc);
            ::metrics::counter!(PASSWORD_CHECKS).increment(1);
            // Given back when the hash is done, even if the client has gone.
            drop(running);
            drop(turn);
            ok
        })
        .await
        .map_err(|e| ApiError::Internal(format!("password check task: {e}")))?;
        match (ok, user) {
            (true, Some(u)) => Ok(Principal {
                name: u.username,
                roles: u.roles,
            }),
            _ => Err(ApiError::Unauthorized("invalid credentials".into())),
        }
    }
}

/// Counter: password verifications (argon2) run, unknown users included (docs/operations.md).
pub const PASSWORD_CHECKS: &str = "idsync_password_checks_total";
/// Gauge: password verifications running now (at most `maxConcurrentLogins`).
pub const PASSWORD_CHECKS_RUNNING: &str = "idsync_password_checks_running";
/// Gauge: password checks waiting for their turn.
pub const PASSWORD_CHECKS_WAITING: &str = "idsync_password_checks_waiting";

/// A gauge raised while the value lives (lowered when it drops, also when the request that
/// holds it is abandoned).
struct GaugeGuard(&'static str);

impl GaugeGuard {
    fn up(name: &'static str) -> Self {
        ::metrics::gauge!(name).increment(1.0);
        Self(name)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        ::metrics::gauge!(self.0).decrement(1.0);
    }
}

/// A valid PHC string of a random password nobody knows, verified for unknown users.
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$x7Bx5CbfJ2SxdeHA7oQRoxSDRH3DIJaG9AuxnlMIJvA";

fn decode_sha256(hex_text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(hex_text.trim()).ok()?;
    bytes.try_into().ok()
}

/// Lower-case hex SHA-256 of a token, as stored in `authentication.json`.
pub fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh random token (256 bits, URL-safe base64) and its `authentication.json` entry
/// (`idsync auth new-token`).
pub fn new_token(name: &str, role: Role) -> (String, Value) {
    let token = random_token();
    let entry = json!({
        "name": name,
        "roles": [role_name(role)],
        "sha256": sha256_hex(&token),
    });
    (token, entry)
}

/// The same entry as a typed [`TokenDef`].
pub fn token_def(name: &str, role: Role, token: &str) -> TokenDef {
    TokenDef {
        name: name.to_string(),
        roles: vec![role],
        sha256: sha256_hex(token),
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Reader => "reader",
    }
}

pub(crate) fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The argon2id PHC string of a password (`idsync auth hash-password`).
pub fn hash_password(password: &str) -> ApiResult<String> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| ApiError::Internal(format!("salt encoding: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("password hashing: {e}")))
}

/// Whether `password` matches the PHC string (false for a malformed PHC string).
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// The generated admin token file and the hash to put in the [`AuthState`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTokenFile {
    /// `<project>/.idsync/admin-token`.
    pub path: PathBuf,
    /// SHA-256 hex of the token in the file.
    pub sha256: String,
}

/// Makes sure `<project>/.idsync/admin-token` exists (a random token, mode 0600, in a folder
/// of mode 0700) and returns its path and hash. An existing file is reused, so restarts keep
/// the token that scripts already read. Call only when no credentials are configured
/// (docs/SECURITY.md).
///
/// The file is never reached through a symbolic link: one planted at its place (to make the
/// server write the token elsewhere, or read it from elsewhere) is refused, and a new file is
/// created with `O_EXCL`, which fails rather than follows a link.
pub fn ensure_admin_token_file(project_dir: &Path) -> ApiResult<AdminTokenFile> {
    let dir = project_dir.join(".idsync");
    let path = dir.join("admin-token");
    let io = |what: &str, e: std::io::Error| {
        ApiError::Internal(format!("{what} {}: {e}", path.display()))
    };
    private_dir(&dir).map_err(|e| io("creating the folder of", e))?;
    match std::fs::symlink_metadata(&path) {
        Ok(m) if !m.is_file() => {
            return Err(io(
                "refusing",
                std::io::Error::other("the admin token file is not a regular file"),
            ));
        }
        Ok(_) => {
            let text = std::fs::read_to_string(&path).map_err(|e| io("reading", e))?;
            if !text.trim().is_empty() {
                restrict_mode(&path).map_err(|e| io("setting the mode of", e))?;
                return Ok(AdminTokenFile {
                    sha256: sha256_hex(text.trim()),
                    path,
                });
            }
            // An empty file (a crash between create and write) is replaced.
            std::fs::remove_file(&path).map_err(|e| io("replacing", e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("reading", e)),
    }
    let token = random_token();
    write_private(&path, &format!("{token}\n")).map_err(|e| io("writing", e))?;
    Ok(AdminTokenFile {
        sha256: sha256_hex(&token),
        path,
    })
}

/// `.idsync/` readable by this user only; an existing one is tightened.
#[cfg(unix)]
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    restrict_mode(path)
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(unix)]
fn restrict_mode(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict_mode(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn dummy_phc_is_valid() {
        assert!(PasswordHash::new(DUMMY_PHC).is_ok());
    }

    /// An unknown user costs what a known one does: the dummy hash has the algorithm and the
    /// cost parameters of the hashes `hash_password` makes.
    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let real = hash_password("x").unwrap();
        let (real, dummy) = (
            PasswordHash::new(&real).unwrap(),
            PasswordHash::new(DUMMY_PHC).unwrap(),
        );
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert_eq!(dummy.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
    }

    #[tokio::test]
    async fn tokens_and_passwords() {
        let (token, entry) = new_token("ci", Role::Reader);
        assert_eq!(entry["roles"], json!(["reader"]));
        let phc = hash_password("s3cret").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", &phc));
        assert!(!verify_password("S3cret", &phc));
        let config = AuthConfig {
            tokens: vec![token_def("ci", Role::Reader, &token)],
            users: vec![UserDef {
                username: "openidm-admin".into(),
                roles: vec![Role::Admin],
                password: phc,
            }],
        };
        let auth = AuthState::new(&config, Some(&sha256_hex("adm"))).unwrap();

        let p = auth
            .authenticate(&headers(&[("authorization", &format!("Bearer {token}"))]))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.name, "ci");
        assert!(p.may(&Method::GET) && !p.may(&Method::POST));

        let p = auth
            .authenticate(&headers(&[("authorization", "bearer adm")]))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.name, ADMIN_TOKEN_NAME);
        assert!(p.may(&Method::DELETE));

        let p = auth
            .authenticate(&headers(&[
                ("x-openidm-username", "openidm-admin"),
                ("x-openidm-password", "s3cret"),
            ]))
            .await
            .unwrap()
            .unwrap();
        assert!(p.may(&Method::PUT));

        for bad in [
            headers(&[("authorization", "Bearer nope")]),
            headers(&[("authorization", "Basic abc")]),
            headers(&[
                ("x-openidm-username", "openidm-admin"),
                ("x-openidm-password", "wrong"),
            ]),
            headers(&[("x-openidm-username", "ghost"), ("x-openidm-password", "x")]),
            headers(&[("x-openidm-username", "openidm-admin")]),
        ] {
            let e = auth.authenticate(&bad).await.unwrap_err();
            assert!(matches!(e, ApiError::Unauthorized(_)), "{e:?}");
            assert!(!e.to_string().contains("s3cret"));
        }
        assert_eq!(auth.authenticate(&HeaderMap::new()).await.unwrap(), None);
    }

    #[test]
    fn admin_token_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure_admin_token_file(dir.path()).unwrap();
        assert_eq!(first.path, dir.path().join(".idsync/admin-token"));
        let token = std::fs::read_to_string(&first.path).unwrap();
        assert_eq!(sha256_hex(token.trim()), first.sha256);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&first.path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = ensure_admin_token_file(dir.path()).unwrap();
        assert_eq!(again, first);
    }

    #[cfg(unix)]
    #[test]
    fn a_token_file_planted_as_a_link_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "attacker-chosen-token\n").unwrap();
        std::fs::create_dir(dir.path().join(".idsync")).unwrap();
        std::fs::set_permissions(
            dir.path().join(".idsync"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join(".idsync/admin-token")).unwrap();
        assert!(ensure_admin_token_file(dir.path()).is_err());
        // A dangling link is not followed either (no file is created at its target).
        let target = dir.path().join("created-through-link");
        std::fs::remove_file(dir.path().join(".idsync/admin-token")).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(".idsync/admin-token")).unwrap();
        assert!(ensure_admin_token_file(dir.path()).is_err());
        assert!(!target.exists());
        let mode = std::fs::metadata(dir.path().join(".idsync"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "the folder is tightened");
    }

    #[test]
    fn bad_configured_hash_is_refused() {
        let config = AuthConfig {
            tokens: vec![TokenDef {
                name: "x".into(),
                roles: vec![Role::Admin],
                sha256: "abc".into(),
            }],
            users: vec![],
        };
        assert!(AuthState::new(&config, None).is_err());
    }
}
