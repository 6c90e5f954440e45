//! Real `accord` processes: the binary run to completion, or started as a
//! server whose address is read from its log.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `accord` binary, without the environment's log filter or
/// configuration, its metrics listener on a free port (tests run many).
pub fn accord() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_accord"));
    c.env_remove("RUST_LOG")
        .env_remove("ACCORD_CONFIG")
        .env("ACCORD_METRICS_LISTEN", "127.0.0.1:0");
    c
}

/// Starts `accord serve --insecure` on a free port with more arguments and
/// environment variables.
pub fn serve_with(args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let mut all = vec!["serve", "--insecure", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    start(&all, env)
}

/// Starts `accord args…`, a server; returns the child and the address it
/// reports in its log (within a bounded time).
pub fn start(args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let (child, address, _log) = start_logged(args, env);
    (child, address)
}

/// Like `start`, and also returns the rest of the server's log, line by line.
pub fn start_logged(
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, String, std::sync::mpsc::Receiver<String>) {
    let (child, line, rx) = start_serving(args, env);
    (child, field(&line, "address"), rx)
}

/// Starts `accord serve --insecure` on free ports with more arguments;
/// returns the child, its gRPC address and its metrics listener's.
pub fn serve_with_metrics(args: &[&str]) -> (Child, String, String) {
    let mut all = vec!["serve", "--insecure", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let (child, line, _log) = start_serving(&all, &[]);
    (child, field(&line, "address"), field(&line, "metrics"))
}

/// The value of the field `name` in a log line, text (`name=value`) or
/// JSON (`"name":"value"`).
fn field(line: &str, name: &str) -> String {
    let text = format!(" {name}=");
    let json = format!("\"{name}\":\"");
    if let Some(at) = line.find(&text) {
        return line[at + text.len()..]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
    }
    let at = line
        .find(&json)
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    line[at + json.len()..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Starts `accord args…`, a server; returns the child, the log line in
/// which it reports its address (within a bounded time) and the rest of
/// its log.
fn start_serving(
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, String, std::sync::mpsc::Receiver<String>) {
    let mut child = accord()
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start accord");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    // Read the whole log on a thread so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if line.contains(" address=") || line.contains("\"address\":\"") {
                    return (child, line, rx);
                }
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("accord did not report its address: {e}");
            }
        }
    }
}

/// A server process killed when this is dropped, so that a failing test
/// leaves none behind.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A gRPC channel to the development server at `address`.
pub async fn channel_to(address: &str) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(format!("http://{address}"))
        .expect("an address")
        .connect()
        .await
        .expect("connect to the server")
}

/// Registers the council, as the operator, on the development server
/// behind `channel`.
pub async fn register_council(channel: &tonic::transport::Channel) {
    use accord::api::pb;
    pb::agency_service_client::AgencyServiceClient::new(channel.clone())
        .create_agency(super::as_caller(
            pb::CreateAgencyRequest {
                agency: Some(pb::Agency {
                    code: super::COUNCIL.to_owned(),
                    display_name: "Leeds City Council".to_owned(),
                    kind: pb::AgencyKind::Council as i32,
                    ..Default::default()
                }),
            },
            "accord-ops",
            "ops-1",
            "operator",
        ))
        .await
        .expect("register the council");
}
