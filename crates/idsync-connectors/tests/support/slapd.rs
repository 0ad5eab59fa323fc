//! A private OpenLDAP `slapd` for tests and benchmarks: its own temp dir, a free loopback port,
//! suffix `dc=example,dc=com` with `ou=People` and `ou=Groups`, stopped on drop.
//!
//! A plain file on purpose: other test crates include it with
//! `#[path = "../../idsync-connectors/tests/support/slapd.rs"] mod slapd;` and need only `std`
//! and `tempfile`. It must never skip: a missing slapd binary panics with the reason, so a
//! machine without OpenLDAP fails its tests loudly (Debian packages: `slapd`, `ldap-utils`).
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SUFFIX: &str = "dc=example,dc=com";
pub const PEOPLE: &str = "ou=People,dc=example,dc=com";
pub const GROUPS: &str = "ou=Groups,dc=example,dc=com";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
pub const ADMIN_PW: &str = "secret";
/// The suffix of the accesslog database of [`Slapd::start_with_accesslog`].
pub const ACCESSLOG: &str = "cn=accesslog";

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";
const START_DEADLINE: Duration = Duration::from_secs(15);

/// A running slapd. Dropping it stops the server and removes its directory.
#[derive(Debug)]
pub struct Slapd {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

/// The entries every instance starts with.
pub fn base_ldif() -> String {
    format!(
        "dn: {SUFFIX}\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\n\
         dc: example\no: Example\n\n\
         dn: {PEOPLE}\nobjectClass: top\nobjectClass: organizationalUnit\nou: People\n\n\
         dn: {GROUPS}\nobjectClass: top\nobjectClass: organizationalUnit\nou: Groups\n\n"
    )
}

/// `n` inetOrgPerson entries `uid=user<i>` under `ou=People`, as LDIF for [`Slapd::start_with`].
/// slapadd fills in entryUUID and the other operational attributes.
pub fn people_ldif(n: usize) -> String {
    let mut s = String::with_capacity(n * 200);
    for i in 0..n {
        let _ = write!(
            s,
            "dn: uid=user{i},{PEOPLE}\nobjectClass: top\nobjectClass: person\n\
             objectClass: organizationalPerson\nobjectClass: inetOrgPerson\nuid: user{i}\n\
             cn: User {i}\nsn: Number{i}\ngivenName: User\nmail: user{i}@example.com\n\n"
        );
    }
    s
}

impl Slapd {
    /// An instance with only the base entries.
    pub fn start() -> Slapd {
        Self::start_with("")
    }

    /// An instance preloaded (offline, with `slapadd -q`) with the base entries and `extra_ldif`.
    pub fn start_with(extra_ldif: &str) -> Slapd {
        Self::start_opts(extra_ldif, false, true)
    }

    /// As [`Slapd::start_with`], loading `extra_ldif` (after the checked base entries) without
    /// schema checks (`slapadd -s`): for data written for another directory, such as IDM's
    /// samples' `groupOfUniqueNames` groups without members, which OpenDJ accepts and
    /// OpenLDAP's schema does not. `slapadd -s` does not compute `structuralObjectClass`,
    /// without which slapd refuses every later change of the entry, so each entry gets the
    /// one [`structural_class`] names. The running server checks every later write as usual.
    pub fn start_unchecked(extra_ldif: &str) -> Slapd {
        Self::start_opts(extra_ldif, false, false)
    }

    /// As [`Slapd::start_with`], with OpenLDAP's accesslog overlay on the main database: every
    /// successful write is logged under [`ACCESSLOG`] (its own mdb database), deletes with the
    /// old entry's `entryUUID` and `objectClass` in `reqOld`. The slapd.conf form of cn=config's
    /// `olcModuleLoad: accesslog`, an `olcDatabase` for `cn=accesslog`, and `olcOverlay:
    /// accesslog` with `olcAccessLogDB`, `olcAccessLogOps: writes`, `olcAccessLogSuccess: TRUE`.
    pub fn start_with_accesslog(extra_ldif: &str) -> Slapd {
        Self::start_opts(extra_ldif, true, true)
    }

    fn start_opts(extra_ldif: &str, accesslog: bool, schema_check: bool) -> Slapd {
        assert!(
            Path::new(SLAPD).exists(),
            "{SLAPD} is missing: install the Debian packages slapd and ldap-utils"
        );
        let dir = tempfile::Builder::new()
            .prefix("idsync-slapd-")
            .tempdir()
            .expect("temp dir");
        let db = dir.path().join("db");
        std::fs::create_dir(&db).expect("db dir");
        if accesslog {
            std::fs::create_dir(dir.path().join("accesslog")).expect("accesslog dir");
        }
        std::fs::write(dir.path().join("idsync-test.schema"), TEST_SCHEMA).expect("write schema");
        let conf = dir.path().join("slapd.conf");
        std::fs::write(&conf, slapd_conf(dir.path(), &db, accesslog)).expect("write slapd.conf");

        let mut loads = Vec::new();
        if schema_check {
            loads.push((format!("{}{extra_ldif}", base_ldif()), true));
        } else {
            loads.push((base_ldif(), true));
            loads.push((with_structural_classes(extra_ldif), false));
        }
        for (i, (text, checked)) in loads.into_iter().enumerate() {
            let ldif_path = dir.path().join(format!("load{i}.ldif"));
            let mut ldif = std::fs::File::create(&ldif_path).expect("create ldif");
            ldif.write_all(text.as_bytes()).expect("write ldif");
            drop(ldif);
            let mut slapadd = Command::new(SLAPADD);
            if !checked {
                slapadd.arg("-s");
            }
            let out = slapadd
                .arg("-q")
                .arg("-f")
                .arg(&conf)
                .arg("-b")
                .arg(SUFFIX)
                .arg("-l")
                .arg(&ldif_path)
                .output()
                .expect("run slapadd");
            assert!(
                out.status.success(),
                "slapadd failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }

        // A free port can be taken between our probe and slapd's bind: retry a few times.
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("slapd.log")).expect("log file");
            // `-d 0` keeps slapd in the foreground so the test owns the process.
            let mut child = Command::new(SLAPD)
                .arg("-f")
                .arg(&conf)
                .arg("-h")
                .arg(format!("ldap://127.0.0.1:{port}/"))
                .arg("-d")
                .arg("0")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn slapd");
            let deadline = Instant::now() + START_DEADLINE;
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last_err = format!(
                        "slapd exited with {status}: {}",
                        std::fs::read_to_string(dir.path().join("slapd.log")).unwrap_or_default()
                    );
                    break;
                }
                if TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok() {
                    return Slapd {
                        dir,
                        port,
                        child: Some(child),
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "slapd did not accept connections on port {port} within {START_DEADLINE:?}"
                    );
                }
                std::thread::yield_now();
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        panic!("slapd could not start: {last_err}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// An LDAP connector `configurationProperties` block for this instance.
    pub fn configuration_properties(&self) -> String {
        format!(
            r#"{{"host":"127.0.0.1","port":{},"ssl":false,"startTLS":false,
               "principal":"{ADMIN_DN}","credentials":"{ADMIN_PW}",
               "baseContexts":["{SUFFIX}"],
               "accountObjectClasses":["top","person","organizationalPerson","inetOrgPerson"],
               "accountUserNameAttributes":["uid"],
               "groupObjectClasses":["top","groupOfUniqueNames"],
               "uidAttribute":"entryUUID","blockSize":100,"usePagedResultControl":true}}"#,
            self.port
        )
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Starts a stopped server again on the same port with the same data (a restart after
    /// [`Slapd::stop`], for tests of a target that comes back).
    pub fn restart(&mut self) {
        if self.is_running() {
            return;
        }
        let conf = self.dir.path().join("slapd.conf");
        let log =
            std::fs::File::create(self.dir.path().join("slapd-restart.log")).expect("log file");
        let mut child = Command::new(SLAPD)
            .arg("-f")
            .arg(&conf)
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{}/", self.port))
            .arg("-d")
            .arg("0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn slapd");
        let deadline = Instant::now() + START_DEADLINE;
        while TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("slapd did not restart on port {}: {status}", self.port);
            }
            assert!(
                Instant::now() < deadline,
                "slapd did not accept connections again within {START_DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// Stops the server (SIGTERM, then SIGKILL past a deadline) and waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
            }
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A test-only auxiliary class: OpenLDAP's standard schema gives `uid`, `cn` and the other
/// person attributes no ORDERING rule, so `lt`/`ge` filters on them match nothing. Suites that
/// check ordering operators map a property to `idsyncSortKey` (add the class
/// `idsyncTestPerson`). OIDs are under OpenLDAP's example arc 1.3.6.1.4.1.4203.666.
pub const TEST_SCHEMA: &str = "\
attributetype ( 1.3.6.1.4.1.4203.666.11.77.1 NAME 'idsyncSortKey'
  DESC 'idsync tests: a string with an ORDERING rule'
  EQUALITY caseIgnoreMatch ORDERING caseIgnoreOrderingMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.4203.666.11.77.2 NAME 'idsyncTestPerson' AUXILIARY
  MAY idsyncSortKey )
";

/// The structural object class OpenLDAP's schema gives an entry with these object classes: the
/// most specific of the standard ones this harness knows. Panics for an entry with none.
pub fn structural_class(classes: &[&str]) -> &'static str {
    const KNOWN: [&str; 8] = [
        "inetOrgPerson",
        "organizationalPerson",
        "person",
        "groupOfUniqueNames",
        "groupOfNames",
        "organizationalUnit",
        "organization",
        "domain",
    ];
    KNOWN
        .into_iter()
        .find(|k| classes.iter().any(|c| c.eq_ignore_ascii_case(k)))
        .unwrap_or_else(|| panic!("no known structural class among {classes:?}"))
}

/// `ldif` with a `structuralObjectClass` line added to each entry that has none.
fn with_structural_classes(ldif: &str) -> String {
    let mut out = String::new();
    for entry in ldif.split("\n\n").filter(|e| !e.trim().is_empty()) {
        let entry = entry.trim_matches('\n');
        out.push_str(entry);
        out.push('\n');
        let has = |attr: &str| {
            entry
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with(&format!("{attr}:")))
        };
        if !has("structuralobjectclass") {
            let classes: Vec<&str> = entry
                .lines()
                .filter(|l| l.to_ascii_lowercase().starts_with("objectclass:"))
                .map(|l| l["objectclass:".len()..].trim())
                .collect();
            let _ = writeln!(out, "structuralObjectClass: {}", structural_class(&classes));
        }
        out.push('\n');
    }
    out
}

fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn slapd_conf(dir: &Path, db: &Path, accesslog: bool) -> String {
    // The log database comes first; the overlay goes on the main database, after its
    // directives. Reads of cn=accesslog are open to every bound user (slapd's default access).
    let (log_db, overlay) = if accesslog {
        (
            format!(
                "moduleload accesslog\n\
                 database mdb\n\
                 maxsize 1073741824\n\
                 suffix \"{ACCESSLOG}\"\n\
                 rootdn \"{ACCESSLOG}\"\n\
                 directory {}\n\
                 dbnosync\n\
                 index reqStart eq\n",
                dir.join("accesslog").display()
            ),
            "overlay accesslog\n\
             logdb \"cn=accesslog\"\n\
             logops writes\n\
             logsuccess TRUE\n\
             logold (objectClass=*)\n\
             logoldattr entryUUID objectClass\n"
                .to_string(),
        )
    } else {
        (String::new(), String::new())
    };
    format!(
        "include /etc/ldap/schema/core.schema\n\
         include /etc/ldap/schema/cosine.schema\n\
         include /etc/ldap/schema/nis.schema\n\
         include /etc/ldap/schema/inetorgperson.schema\n\
         include {schema}\n\
         pidfile {pid}\n\
         argsfile {args}\n\
         modulepath /usr/lib/ldap\n\
         moduleload back_mdb\n\
         sizelimit unlimited\n\
         {log_db}\
         database mdb\n\
         maxsize 4294967296\n\
         suffix \"{SUFFIX}\"\n\
         rootdn \"{ADMIN_DN}\"\n\
         rootpw {ADMIN_PW}\n\
         directory {db}\n\
         dbnosync\n\
         index objectClass eq\n\
         index uid,mail,cn eq\n\
         index entryUUID eq\n\
         {overlay}",
        schema = dir.join("idsync-test.schema").display(),
        pid = dir.join("slapd.pid").display(),
        args = dir.join("slapd.args").display(),
        db = db.display(),
    )
}
