//! A private PostgreSQL server for one test: `initdb` into a temp dir and `postgres` on a free
//! loopback port with its socket in that dir, so that a test can stop, start and restart it
//! without touching the machine's shared server. Stopped (immediate) and removed on drop.
//!
//! PostgreSQL refuses to run as root: when the tests run as root (uid 0), `initdb` and `pg_ctl`
//! run as the `postgres` OS user (`runuser -u postgres --`) on a dir chowned to it. The binaries
//! come from `/usr/local/bin` or the newest `/usr/lib/postgresql/<major>/bin` (Debian package
//! `postgresql`); a missing binary panics with that reason.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct PrivatePg {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// `postgres://postgres@127.0.0.1:PORT/idsync`, a database of its own.
    pub url: String,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
fn bin_dir() -> PathBuf {
    let local = Path::new("/usr/local/bin");
    if local.join("initdb").exists() && local.join("pg_ctl").exists() {
        return local.to_path_buf();
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b).unwrap_or_else(|| {
        panic!("initdb not found in /usr/local/bin or /usr/lib/postgresql/*/bin: install the Debian package postgresql")
    })
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl PrivatePg {
    /// A fresh cluster, started, with a database `idsync`.
    pub fn start() -> PrivatePg {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("idsync-pg-")
            .tempdir()
            .expect("temp dir");
        if is_root() {
            let out = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .output()
                .expect("run chown");
            assert!(out.status.success(), "chown: {out:?}");
        }
        let mut pg = PrivatePg {
            dir,
            bin,
            port: 0,
            url: String::new(),
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        // Small and quick: no fsync (a test cluster), enough connections for three nodes.
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("postgresql.conf");
        text.push_str("\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n");
        std::fs::write(&conf, text).expect("write postgresql.conf");
        // A free port can be taken between the probe and the bind: a few tries.
        let mut last = String::new();
        for _ in 0..5 {
            pg.port = free_port();
            match pg.try_start() {
                Ok(()) => {
                    let admin = pg.url_of("postgres");
                    crate::support::psql_query(&admin, "CREATE DATABASE idsync");
                    pg.url = pg.url_of("idsync");
                    return pg;
                }
                Err(e) => last = e,
            }
        }
        panic!("the private PostgreSQL did not start: {last}");
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url_of(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `self.bin/<tool> args`, as `postgres` when root; returns its output.
    fn exec(&self, tool: &str, args: &[&str]) -> Output {
        let path = self.bin.join(tool);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", path.display()))
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.exec(tool, args);
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn try_start(&self) -> Result<(), String> {
        let data = self.data();
        let opts = format!(
            "-p {} -h 127.0.0.1 -k {}",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log");
        let out = self.exec(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            ))
        }
    }

    /// Starts the stopped server again on the same port with the same data.
    pub fn start_again(&self) {
        if let Err(e) = self.try_start() {
            panic!("the private PostgreSQL did not start again: {e}");
        }
    }

    /// Stops the server (`pg_ctl stop -m fast`: open connections are cut) and waits for it.
    pub fn stop(&self) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "stop",
            ],
        );
    }

    /// Stops and starts the server: every client connection breaks once.
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.exec(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}
