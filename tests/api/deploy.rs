//! The container image and the manifests in `deploy/`: no container
//! engine runs here, so they are checked as far as tools that install
//! here can: hadolint lints the Dockerfile, kubernetes-validate checks the
//! manifests against the Kubernetes schemas (strict), and the settings
//! they give Accord are loaded by Accord's own configuration loader.

use std::path::{Path, PathBuf};
use std::process::Command;

use accord::config::{Config, Overrides};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The tool `var` names, or `None` (loudly) outside CI when it is not
/// there.
fn tool(var: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    if path.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{var} must name its tool in CI (see scripts/ensure-tools)"
        );
        eprintln!("!!! SKIPPING: {var} is not set (run scripts/test) !!!");
    }
    path
}

fn run(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(root())
        .output()
        .expect("run the tool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program:?} {args:?}: {text}");
    text
}

/// The YAML documents of `file`, as JSON (read by PyYAML).
fn yaml(python: &Path, file: &str) -> Vec<serde_json::Value> {
    let out = run(
        python,
        &[
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
            file,
        ],
    );
    serde_json::from_str(&out).expect("YAML as JSON")
}

/// The configuration `settings` (TOML) and `ACCORD_*` variables give,
/// loaded as Accord loads it: unknown keys are refused.
fn loads(settings: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accord.toml");
    std::fs::write(&file, settings).unwrap();
    Config::load(Some(&file), &Overrides::default()).expect("the configuration loads")
}

/// The setting an `ACCORD_*` variable names, if Accord has one.
fn setting_of(variable: &str) -> Option<String> {
    let key = variable.strip_prefix("ACCORD_")?.to_ascii_lowercase();
    let defaults = serde_json::to_value(Config::default()).unwrap();
    defaults.get(&key).map(|_| key)
}

#[test]
fn the_dockerfile_builds_the_locked_release_and_runs_it_unprivileged() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("cargo build --release --locked --no-default-features"));
    assert!(dockerfile.contains("FROM debian:bookworm-slim"));
    assert!(dockerfile.contains("USER 10001:10001"));
    assert!(dockerfile.contains("HEALTHCHECK"));
    assert!(
        dockerfile.contains("\"accord\", \"probe\"") || dockerfile.contains("accord\", \"probe")
    );
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("ENV") || l.starts_with("    ACCORD_"))
    {
        for variable in line.split_whitespace().filter_map(|w| w.split('=').next()) {
            if variable.starts_with("ACCORD_") {
                assert!(setting_of(variable).is_some(), "{variable} is no setting");
            }
        }
    }
    if let Some(hadolint) = tool("TEST_HADOLINT") {
        run(&hadolint, &["Dockerfile"]);
    }
}

#[test]
fn the_kubernetes_manifests_validate_and_configure_accord() {
    let manifests: Vec<String> = ["configmap", "deployment", "service", "pdb"]
        .iter()
        .map(|m| format!("deploy/kubernetes/{m}.yaml"))
        .collect();
    if let Some(validate) = tool("TEST_KUBERNETES_VALIDATE") {
        let mut args = vec!["--strict"];
        args.extend(manifests.iter().map(String::as_str));
        let said = run(&validate, &args);
        assert_eq!(said.matches("passed").count(), 4, "{said}");
    }
    let Some(python) = tool("TEST_GRPC_PYTHON") else {
        return;
    };
    let config = &yaml(&python, "deploy/kubernetes/configmap.yaml")[0];
    let loaded = loads(config["data"]["accord.toml"].as_str().unwrap());
    assert_eq!(loaded.metrics_listen.port(), 9464);
    assert!(loaded.ledger_key_file.is_some(), "replicas share one key");
    let deployment = &yaml(&python, "deploy/kubernetes/deployment.yaml")[0];
    let spec = &deployment["spec"];
    assert!(spec["replicas"].as_u64().unwrap() >= 2);
    let container = &spec["template"]["spec"]["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        spec["template"]["spec"]["securityContext"]["runAsNonRoot"],
        true
    );
    for env in container["env"].as_array().unwrap() {
        let name = env["name"].as_str().unwrap();
        assert!(setting_of(name).is_some(), "{name} is no setting");
    }
    // Every Secret and ConfigMap mounted, where the configuration looks.
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    for file in [
        loaded.tls_cert_file.clone().unwrap(),
        loaded.tls_key_file.clone().unwrap(),
        loaded.tls_client_ca_file.clone().unwrap(),
        loaded.ledger_key_file.clone().unwrap(),
    ] {
        let dir = file.parent().unwrap().to_str().unwrap().to_owned();
        assert!(mounts.contains(&dir.as_str()), "{dir} is not mounted");
    }
    let grace = spec["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    assert!(grace > loaded.shutdown_grace_seconds);
    let pdb = &yaml(&python, "deploy/kubernetes/pdb.yaml")[0];
    assert_eq!(pdb["spec"]["minAvailable"], 1);
}

#[test]
fn the_compose_file_runs_accord_on_postgres_with_its_key_on_a_volume() {
    let Some(python) = tool("TEST_GRPC_PYTHON") else {
        return;
    };
    let compose = &yaml(&python, "deploy/compose.yaml")[0];
    let services = &compose["services"];
    let accord = &services["accord"];
    assert_eq!(
        accord["depends_on"]["postgres"]["condition"],
        "service_healthy"
    );
    assert!(services["postgres"]["healthcheck"].is_object());
    assert_eq!(accord["read_only"], true);
    let environment = accord["environment"].as_object().unwrap();
    for name in environment.keys() {
        assert!(setting_of(name).is_some(), "{name} is no setting");
    }
    assert!(
        environment["ACCORD_DATABASE_URL"]
            .as_str()
            .unwrap()
            .starts_with("postgres://")
    );
    // Named volumes and secrets are declared; the key's directory is one.
    let declared = |kind: &str, name: &str| compose[kind].get(name).is_some();
    for volume in accord["volumes"].as_array().unwrap() {
        let source = volume.as_str().unwrap().split(':').next().unwrap();
        if !source.starts_with('.') {
            assert!(declared("volumes", source), "{source}");
        }
    }
    let data = environment["ACCORD_DATA_DIR"].as_str().unwrap();
    assert!(
        accord["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_str().unwrap().ends_with(&format!(":{data}")))
    );
    for secret in accord["secrets"].as_array().unwrap() {
        assert!(declared("secrets", secret.as_str().unwrap()), "{secret}");
    }
    // The metrics port is published to the host's loopback only.
    let ports: Vec<&str> = accord["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(ports.contains(&"127.0.0.1:9464:9464"), "{ports:?}");
}
