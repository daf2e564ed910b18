//! `deploy/`: the image, compose and Kubernetes files. Real parsers validate them when
//! they are installed (`.ci/run` installs them): `docker-compose config` and
//! `kubernetes-validate` against the Kubernetes schemas, offline, and `litestream
//! databases` for each service's `deploy/litestream/<service>.yml`. Whatever is
//! installed, the files are read as data and held to what they promise: a volume per
//! service, a grace period longer than the drain, readiness on `/ready`, liveness on
//! `/health`, the token from a secret, peers by service name, and beside each service
//! Litestream: a restore before it when the volume is empty, a replicator that
//! outlives it, the same litestream.yml in compose and Kubernetes, and penguin's own
//! checkpoints off.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use penguin::config::DEFAULT_SHUTDOWN_GRACE;
use penguin::service::Service;
use serde_norway::Value;

use crate::helpers::skip;

/// pedidos' settings that name its peers, and the peers they name.
const PEERS: [(&str, &str); 3] = [
    ("PRODUCTS_URL", "productos"),
    ("INVENTORY_URL", "inventario"),
    ("PAYMENTS_URL", "pagos"),
];

pub fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

pub fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|document| {
            let mut value = <Value as serde::Deserialize>::deserialize(document)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            value.apply_merge().expect("merge keys");
            value
        })
        .collect()
}

pub fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// A duration written as compose writes one (`20s`) or as a number of seconds.
fn seconds(value: &Value) -> Duration {
    let text = match value {
        Value::Number(n) => n.to_string(),
        other => text(other).trim_end_matches('s').to_string(),
    };
    Duration::from_secs_f64(
        text.parse()
            .unwrap_or_else(|_| panic!("{value:?} is no duration")),
    )
}

/// Runs a validator, or says why the test cannot (it is not installed).
fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Option<Output> {
    match Command::new(program)
        .args(args)
        .env_remove("SERVICE_TOKEN")
        .envs(env.iter().copied())
        .output()
    {
        Ok(output) => Some(output),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("{program}: {e}"),
    }
}

pub fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A container's entry for an environment variable in a Kubernetes manifest.
fn env<'a>(container: &'a Value, variable: &str) -> &'a Value {
    container["env"]
        .as_sequence()
        .expect("env")
        .iter()
        .find(|e| text(&e["name"]) == variable)
        .unwrap_or_else(|| panic!("no {variable} in {:?}", container["name"]))
}

/// `deploy/litestream/<service>.yml`, the service's Litestream configuration.
fn litestream_yml(service: Service) -> PathBuf {
    deploy().join("litestream").join(format!("{service}.yml"))
}

/// Where Litestream finds its configuration in the containers, and the replicator's arguments.
const LITESTREAM_CONFIG: &str = "/etc/litestream.yml";
const REPLICATE: [&str; 3] = ["replicate", "-config", LITESTREAM_CONFIG];

/// A sequence of strings as a `Vec`, for comparing argument lists.
fn strings(value: &Value) -> Vec<&str> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("{value:?} is no list"))
        .iter()
        .map(text)
        .collect()
}

/// The files the kustomization lists.
pub fn kustomized() -> Vec<PathBuf> {
    let kustomization = &yaml_documents(&deploy().join("k8s/kustomization.yaml"))[0];
    kustomization["resources"]
        .as_sequence()
        .expect("resources")
        .iter()
        .map(|r| deploy().join("k8s").join(text(r)))
        .collect()
}

#[test]
fn compose_file_passes_docker_compose_config_and_demands_a_token() {
    let compose = deploy().join("compose.yaml");
    let compose = compose.to_str().unwrap();
    // An empty env file: a developer's deploy/.env must not hide a missing token.
    let empty = tempfile::NamedTempFile::new().unwrap();
    let empty = empty.path().to_str().unwrap();
    let args = ["--env-file", empty, "-f", compose, "config"];
    let replica = ("LITESTREAM_REPLICA_URL", "s3://compose-test/penguin");
    let Some(output) = run(
        "docker-compose",
        &args,
        &[("SERVICE_TOKEN", "compose-test"), replica],
    ) else {
        return skip("docker-compose is not installed (.ci/run installs it)");
    };
    assert!(output.status.success(), "{}", said(&output));
    let config: Value = serde_norway::from_slice(&output.stdout).expect("config prints YAML");
    for service in Service::ALL {
        assert_eq!(
            text(&config["services"][service.name()]["environment"]["SERVICE_TOKEN"]),
            "compose-test",
            "{service}"
        );
    }
    for service in Service::ALL {
        let replicator = &config["services"][format!("{service}-litestream").as_str()];
        assert_eq!(
            text(&replicator["environment"]["LITESTREAM_REPLICA_URL"]),
            replica.1,
            "{service}"
        );
    }
    let output = run("docker-compose", &args, &[replica]).unwrap();
    assert!(!output.status.success(), "compose started without a token");
    assert!(said(&output).contains("SERVICE_TOKEN"), "{}", said(&output));
    let output = run("docker-compose", &args, &[("SERVICE_TOKEN", "compose-test")]).unwrap();
    assert!(!output.status.success(), "compose started without a replica");
    assert!(
        said(&output).contains("LITESTREAM_REPLICA_URL"),
        "{}",
        said(&output)
    );
}

#[test]
fn each_litestream_yml_passes_litestream_and_replicates_its_service_database() {
    for service in Service::ALL {
        let file = litestream_yml(service);
        let config = &yaml_documents(&file)[0];
        let db = &config["dbs"][0];
        assert_eq!(text(&db["path"]), format!("/data/{service}.db"));
        assert_eq!(
            text(&db["replica"]["url"]),
            format!("${{LITESTREAM_REPLICA_URL}}/{service}")
        );
        let args = ["databases", "-config", file.to_str().unwrap()];
        let replica = [("LITESTREAM_REPLICA_URL", "file:///replica")];
        let Some(output) = run("litestream", &args, &replica) else {
            return skip("litestream is not on PATH (.ci/run installs it)");
        };
        assert!(output.status.success(), "{service}: {}", said(&output));
        assert!(
            said(&output).contains(&format!("/data/{service}.db")),
            "{}",
            said(&output)
        );
        let unset = run("litestream", &args, &[]).unwrap();
        assert!(!unset.status.success(), "{service}: a replica without an address");
    }
}

#[test]
fn kubernetes_manifests_pass_the_schemas_offline() {
    let files = kustomized();
    let mut args = vec!["--strict", "--quiet"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let Some(output) = run("kubernetes-validate", &args, &[]) else {
        return skip("kubernetes-validate is not installed (.ci/run installs it)");
    };
    assert!(output.status.success(), "{}", said(&output));
    // The kustomization itself, rendered as `kubectl apply -k` would send it.
    let k8s = deploy().join("k8s");
    let Some(rendered) = run("kubectl", &["kustomize", k8s.to_str().unwrap()], &[]) else {
        return skip("kubectl is not installed (.ci/run installs it), to render the kustomization");
    };
    assert!(rendered.status.success(), "{}", said(&rendered));
    let file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::fs::write(file.path(), &rendered.stdout).unwrap();
    let output = run(
        "kubernetes-validate",
        &["--strict", "--quiet", file.path().to_str().unwrap()],
        &[],
    )
    .unwrap();
    assert!(output.status.success(), "{}", said(&output));
    let rendered = String::from_utf8_lossy(&rendered.stdout);
    assert_eq!(rendered.matches("namespace: penguin").count(), 12, "{rendered}");
}

#[test]
fn kustomization_lists_every_manifest() {
    let listed: BTreeSet<PathBuf> = kustomized().into_iter().collect();
    let present: BTreeSet<PathBuf> = std::fs::read_dir(deploy().join("k8s"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    assert_eq!(listed, present);
}

#[test]
fn each_service_runs_alone_with_its_volume_probes_secret_and_peers_by_name() {
    let mut resources = Vec::new();
    for file in kustomized() {
        resources.extend(yaml_documents(&file));
    }
    let find = |kind: &str, name: &str| {
        resources
            .iter()
            .find(|r| text(&r["kind"]) == kind && text(&r["metadata"]["name"]) == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    for service in Service::ALL {
        let name = service.name();
        let set = find("StatefulSet", name);
        let spec = &set["spec"];
        assert_eq!(
            spec["replicas"].as_u64(),
            Some(1),
            "{name}: SQLite has one writer"
        );
        let pod = &spec["template"]["spec"];
        let container = &pod["containers"][0];
        assert_eq!(
            container["args"],
            serde_norway::from_str::<Value>(&format!("[serve, {name}]")).unwrap()
        );
        let claim = text(&spec["volumeClaimTemplates"][0]["metadata"]["name"]);
        let mount = &container["volumeMounts"][0];
        assert_eq!(
            (text(&mount["name"]), text(&mount["mountPath"])),
            (claim, "/data"),
            "{name}"
        );

        let grace = seconds(&pod["terminationGracePeriodSeconds"]);
        let drain = seconds(&env(container, "SHUTDOWN_GRACE")["value"]);
        assert!(
            grace > drain && grace > DEFAULT_SHUTDOWN_GRACE,
            "{name}: {grace:?} after SIGTERM"
        );

        // Litestream: restore first, then a sidecar (restartPolicy Always) that starts
        // before penguin and stops after it; both on the data volume and the ConfigMap
        // that holds deploy/litestream/<service>.yml; penguin never checkpoints.
        let (restore, sidecar) = (&pod["initContainers"][0], &pod["initContainers"][1]);
        let restore_args = strings(&restore["args"]);
        assert_eq!(restore_args.first(), Some(&"restore"), "{name}");
        for flag in ["-if-db-not-exists", "-if-replica-exists", LITESTREAM_CONFIG] {
            assert!(restore_args.contains(&flag), "{name}: restore without {flag}");
        }
        assert_eq!(
            restore_args.last().copied(),
            Some(format!("/data/{name}.db").as_str())
        );
        assert_eq!(strings(&sidecar["args"]), REPLICATE, "{name}");
        assert_eq!(text(&sidecar["restartPolicy"]), "Always", "{name}: a sidecar");
        for litestream in [restore, sidecar] {
            let mounts = litestream["volumeMounts"].as_sequence().expect("mounts");
            let at = |path: &str| {
                mounts
                    .iter()
                    .find(|m| text(&m["mountPath"]) == path)
                    .unwrap_or_else(|| panic!("{name}: nothing mounted at {path}"))
            };
            assert_eq!(text(&at("/data")["name"]), claim, "{name}");
            let config = at(LITESTREAM_CONFIG);
            let volume = pod["volumes"]
                .as_sequence()
                .expect("volumes")
                .iter()
                .find(|v| v["name"] == config["name"])
                .expect("the config's volume");
            let map = find("ConfigMap", text(&volume["configMap"]["name"]));
            let shipped: Value =
                serde_norway::from_str(text(&map["data"][text(&config["subPath"])])).expect("YAML");
            assert_eq!(
                shipped,
                yaml_documents(&litestream_yml(service))[0],
                "{name}: the ConfigMap is deploy/litestream/{name}.yml"
            );
        }
        assert_eq!(
            text(&env(container, "WAL_AUTOCHECKPOINT")["value"]),
            "0",
            "{name}"
        );

        assert_eq!(
            text(&container["livenessProbe"]["httpGet"]["path"]),
            "/health",
            "{name}"
        );
        assert_eq!(
            text(&container["readinessProbe"]["httpGet"]["path"]),
            "/ready",
            "{name}"
        );
        let token = &env(container, "SERVICE_TOKEN")["valueFrom"]["secretKeyRef"];
        assert_eq!(
            (text(&token["name"]), text(&token["key"])),
            ("penguin-token", "SERVICE_TOKEN")
        );
        for (kind, figure) in [("requests", "memory"), ("requests", "cpu"), ("limits", "memory")] {
            assert!(
                !text(&container["resources"][kind][figure]).is_empty(),
                "{name}: {kind} {figure}"
            );
        }

        let exposed = find("Service", name);
        assert_eq!(
            exposed["spec"]["selector"], spec["selector"]["matchLabels"],
            "{name}"
        );
        assert_eq!(
            exposed["spec"]["ports"][0]["targetPort"],
            container["ports"][0]["name"]
        );
    }
    let pedidos = &find("StatefulSet", "pedidos")["spec"]["template"]["spec"]["containers"][0];
    for (variable, peer) in PEERS {
        let port = find("Service", peer)["spec"]["ports"][0]["port"]
            .as_u64()
            .unwrap();
        assert_eq!(
            text(&env(pedidos, variable)["value"]),
            format!("http://{peer}:{port}")
        );
    }
}

#[test]
fn compose_runs_each_service_in_its_container_with_its_volume_and_peers_by_name() {
    let compose = &yaml_documents(&deploy().join("compose.yaml"))[0];
    let mut volumes = BTreeSet::new();
    for service in Service::ALL {
        let name = service.name();
        let container = &compose["services"][name];
        assert_eq!(
            container["command"],
            serde_norway::from_str::<Value>(&format!("[serve, {name}]")).unwrap()
        );
        let volume = format!("{name}-data");
        assert_eq!(
            container["volumes"][0].as_str(),
            Some(format!("{volume}:/data").as_str()),
            "{name}"
        );
        assert!(
            compose["volumes"].get(&volume).is_some(),
            "{volume} is not declared"
        );
        volumes.insert(volume.clone());
        // On loopback, at the walkthrough's port unless the environment moves it.
        let port = 5001 + Service::ALL.iter().position(|s| *s == service).unwrap();
        assert_eq!(
            text(&container["ports"][0]),
            format!("127.0.0.1:${{{}_PORT:-{port}}}:8080", name.to_uppercase())
        );
        assert!(
            text(&container["environment"]["SERVICE_TOKEN"]).starts_with("${SERVICE_TOKEN:?"),
            "{name}: the token comes from deploy/.env or the environment, or compose refuses"
        );
        let probe = container["healthcheck"]["test"]
            .as_sequence()
            .expect("a health check");
        assert_eq!(
            probe.iter().map(text).collect::<Vec<_>>(),
            ["CMD", "/penguin", "probe", "http://127.0.0.1:8080/health"]
        );
        let grace = seconds(&container["stop_grace_period"]);
        let drain = seconds(&container["environment"]["SHUTDOWN_GRACE"]);
        assert!(grace > drain && grace > DEFAULT_SHUTDOWN_GRACE, "{name}");
        assert!(
            !text(&container["restart"]).is_empty(),
            "{name}: a restart policy"
        );

        // Litestream: the service starts once its restore is done and its replicator
        // has started, and so stops before the replicator; penguin never checkpoints.
        assert_eq!(
            text(&container["environment"]["WAL_AUTOCHECKPOINT"]),
            "0",
            "{name}"
        );
        let mounts = [
            format!("{volume}:/data"),
            format!("./litestream/{name}.yml:{LITESTREAM_CONFIG}:ro"),
        ];
        let restore = format!("{name}-restore");
        let replicator = format!("{name}-litestream");
        for (helper, condition) in [
            (&restore, "service_completed_successfully"),
            (&replicator, "service_started"),
        ] {
            assert_eq!(
                text(&container["depends_on"][helper.as_str()]["condition"]),
                condition,
                "{name}"
            );
            assert_eq!(
                strings(&compose["services"][helper.as_str()]["volumes"]),
                mounts,
                "{helper}"
            );
        }
        let replicate = &compose["services"][replicator.as_str()];
        assert_eq!(strings(&replicate["command"]), REPLICATE, "{replicator}");
        assert_eq!(
            text(&replicate["user"]),
            "10001:10001",
            "{replicator}: penguin's user"
        );
        let restore_command = strings(&compose["services"][restore.as_str()]["command"]).concat();
        for part in [
            "litestream restore",
            "-if-db-not-exists",
            "-if-replica-exists",
            &format!("/data/{name}.db"),
        ] {
            assert!(restore_command.contains(part), "{restore}: {restore_command}");
        }
    }
    assert_eq!(volumes.len(), 4, "one volume each");
    let pedidos = &compose["services"]["pedidos"];
    for (variable, peer) in PEERS {
        assert_eq!(
            text(&pedidos["environment"][variable]),
            format!("http://{peer}:8080")
        );
        assert_eq!(text(&pedidos["depends_on"][peer]["condition"]), "service_healthy");
    }
}

#[test]
fn image_is_the_static_binary_alone_run_by_a_user_with_its_own_health_check() {
    let dockerfile = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let build = "RUSTFLAGS='-C target-feature=+crt-static'";
    assert!(
        dockerfile.contains(build),
        "the Dockerfile names the static build it packs"
    );
    assert!(readme.contains(build), "the README documents the static build");
    // Built offline: no base image to pull, no BuildKit frontend to fetch.
    for line in dockerfile.lines() {
        assert!(!line.starts_with("# syntax="), "{line}");
        if line.starts_with("FROM") {
            assert_eq!(line, "FROM scratch");
        }
    }
    for line in [
        "FROM scratch",
        "USER 10001:10001",
        "EXPOSE 8080",
        "ENV HOST=0.0.0.0 PORT=8080 DATA_DIR=/data",
        r#"CMD ["/penguin", "probe", "http://127.0.0.1:8080/health"]"#,
        r#"ENTRYPOINT ["/penguin"]"#,
    ] {
        assert!(dockerfile.contains(line), "the Dockerfile lacks {line:?}");
    }
}

/// The rule of `helpers::skip`, seen from outside: this binary runs one test that skips
/// (docker-compose out of reach), once plainly and once under CI.
#[test]
fn a_skip_is_said_in_a_plain_run_and_fails_under_ci() {
    let test = "deploy::compose_file_passes_docker_compose_config_and_demands_a_token";
    let nothing = tempfile::tempdir().unwrap();
    let run = |ci: bool| {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([test, "--exact", "--test-threads=1"])
            .env("PATH", nothing.path())
            .env_remove("CI");
        if ci {
            command.env("CI", "true");
        }
        command.output().unwrap()
    };
    let plain = run(false);
    assert!(plain.status.success(), "{}", said(&plain));
    assert!(
        said(&plain).contains(&format!("test {test} skipped: docker-compose is not installed")),
        "{}",
        said(&plain)
    );
    let ci = run(true);
    assert!(!ci.status.success(), "a skip passed under CI: {}", said(&ci));
    assert!(
        said(&ci).contains("docker-compose is not installed"),
        "{}",
        said(&ci)
    );
}
