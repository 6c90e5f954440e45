//! A throwaway PostgreSQL server that a fault test may stop and start:
//! made with PostgreSQL's own `initdb` and `pg_ctl` in a temporary
//! directory, listening on a free loopback port (never the shared server).
//! Run as the `postgres` OS user when the tests run as root.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// A PostgreSQL server of the test's own.
pub struct OwnPostgres {
    /// Holds the data directory; deleted when dropped.
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// Where Debian installs PostgreSQL's server programs, newest first.
fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// A free loopback port (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl OwnPostgres {
    /// Makes and starts a server; `None` (with a loud message) when
    /// PostgreSQL's server programs are not installed, outside CI. In CI
    /// they must be.
    pub fn start() -> Option<Self> {
        let Some(bin) = server_bin() else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "PostgreSQL's initdb and pg_ctl are required in CI (/usr/lib/postgresql/*/bin)"
                );
            }
            eprintln!(
                "!!! SKIPPING a PostgreSQL fault test: no initdb/pg_ctl under /usr/lib/postgresql !!!"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let as_postgres = is_root();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        if as_postgres {
            // PostgreSQL refuses to run as root: the postgres OS user owns
            // the data directory and runs the server.
            run(Command::new("chmod").arg("755").arg(dir.path()));
            run(Command::new("chown").arg("postgres:postgres").arg(&data));
        }
        let pg = Self {
            dir,
            bin,
            port: free_port(),
            as_postgres,
        };
        pg.run_tool(
            "initdb",
            &[
                "-D",
                &pg.data().to_string_lossy(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        pg.start_again();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown: sessions are ended) and waits.
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast", "-w"]);
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start_again(&self) {
        let data = self.data();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            data.display()
        );
        let log = data.join("server.log");
        self.pg_ctl(&["start", "-w", "-l", &log.to_string_lossy(), "-o", &options]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data();
        let mut all = vec!["-D", data.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        self.run_tool("pg_ctl", &all);
    }

    fn run_tool(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command.args(args).current_dir(Path::new("/"));
        run(&mut command);
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        // Immediate: nothing of this server is kept.
        let data = self.data();
        let program = self.bin.join("pg_ctl");
        let args = [
            "-D",
            data.to_str().unwrap_or("."),
            "stop",
            "-m",
            "immediate",
            "-w",
        ];
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(args)
                .output()
        } else {
            Command::new(&program).args(args).output()
        };
    }
}

/// Runs `command`, panicking with its output if it fails.
fn run(command: &mut Command) {
    let output = command.output().expect("run a PostgreSQL tool");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
