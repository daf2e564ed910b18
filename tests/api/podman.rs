//! The image, the Compose file and the Kubernetes pod templates, run for real in a
//! container engine: Debian's podman (4.3) with runc, and podman-compose from PyPI, as
//! `.ci/run` installs them. Each test builds `deploy/Dockerfile` into an image of its
//! own, runs the four services from the deploy files, walks through the original
//! design's curl commands against them and runs `penguin check` from the host.
//!
//! podman here runs no health-check timer, so the tests run each container's check
//! themselves (`podman healthcheck run`). Everything a test creates carries its name
//! and this process's id, and is removed when the test ends, passed or failed.
//! Needs root and the tools; skipped, saying why, without them.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine as _;
use penguin::service::Service;
use serde_json::{Value as Json, json};
use serde_norway::Value;

use crate::deploy::{deploy, kustomized, said, text, yaml_documents};
use crate::helpers::{TOKEN, free_port, on_path, penguin, skip};
use crate::image::static_binary;

/// How long a container may take to start, restart or pass its health check.
const PATIENCE: Duration = Duration::from_secs(60);

/// What this kind of machine needs: runc (crun refuses its hybrid cgroups), cgroupfs
/// (no systemd), limits it allows, and netavark, whose aardvark-dns answers names on
/// a network. The test's own file, named by CONTAINERS_CONF: the machine's own
/// configuration is left alone.
const CONTAINERS_CONF: &str = r#"[containers]
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"

[network]
network_backend = "netavark"
"#;

/// A name no other test or run uses at the same time.
fn unique(what: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "penguin-{what}-{}-{}",
        std::process::id(),
        now.as_millis() % 100_000
    )
}

/// podman, configured by a containers.conf of the test's own.
struct Podman {
    conf: tempfile::TempDir,
}

impl Podman {
    /// podman, or why this machine cannot run the test.
    fn find(tools: &[&str]) -> Result<Self, String> {
        if !cfg!(all(target_os = "linux", target_env = "gnu")) {
            return Err("the static build is documented for Linux with glibc".into());
        }
        // SAFETY: geteuid(2) only reads the process's user id.
        if unsafe { libc::geteuid() } != 0 {
            return Err("podman runs the containers as root here".into());
        }
        for tool in ["podman", "runc", "curl"].iter().chain(tools) {
            if on_path(tool).is_none() {
                return Err(format!("{tool} is not installed (.ci/run installs it)"));
            }
        }
        let conf = tempfile::tempdir().map_err(|e| e.to_string())?;
        std::fs::write(conf.path().join("containers.conf"), CONTAINERS_CONF).map_err(|e| e.to_string())?;
        Ok(Self { conf })
    }

    /// `program` (podman or podman-compose) reading the test's containers.conf.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("CONTAINERS_CONF", self.conf.path().join("containers.conf"));
        command
    }

    /// `podman ARGS`, whatever comes of it.
    fn try_run(&self, args: &[&str]) -> Output {
        self.command("podman").args(args).output().expect("podman runs")
    }

    /// `podman ARGS`, which must succeed: what it printed.
    fn run(&self, args: &[&str]) -> String {
        let output = self.try_run(args);
        assert!(
            output.status.success(),
            "podman {}: {}",
            args.join(" "),
            said(&output)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// A field of `podman inspect` (a Go template such as `{{.State.Pid}}`).
    fn inspect(&self, container: &str, field: &str) -> String {
        self.run(&["inspect", "--format", field, container])
    }

    fn logs(&self, container: &str) -> String {
        said(&self.try_run(&["logs", container]))
    }

    /// Waits until `args` (a podman command) succeeds, as a health check would.
    fn wait_for(&self, container: &str, args: &[&str]) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let output = self.try_run(args);
            if output.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "podman {} never passed: {}\n{container}'s log:\n{}",
                args.join(" "),
                said(&output),
                self.logs(container)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Runs a container's own health check (the image's HEALTHCHECK) until it passes.
    fn wait_healthy(&self, container: &str) {
        self.wait_for(container, &["healthcheck", "run", container]);
    }

    /// Builds deploy/Dockerfile as its header says, from the static binary as `.ci/run`
    /// builds it (the debug profile: the release build is minutes longer and is packed
    /// the same way), into an image removed with `created`.
    fn build_image(&self, name: &str, created: &mut Created) -> String {
        let tag = format!("localhost/{name}:test");
        let context = tempfile::tempdir().unwrap();
        std::fs::copy(static_binary(), context.path().join("penguin")).unwrap();
        std::fs::create_dir(context.path().join("data")).unwrap();
        created.removal(&["rmi", "--force", &tag]);
        let dockerfile = deploy().join("Dockerfile");
        self.run(&[
            "build",
            "--quiet",
            "--format",
            "docker",
            "--layers=false",
            "--file",
            dockerfile.to_str().unwrap(),
            "--tag",
            &tag,
            context.path().to_str().unwrap(),
        ]);
        let config: Json = serde_json::from_str(&self.run(&["image", "inspect", &tag])).expect("JSON");
        let config = &config[0];
        assert_eq!(config["Config"]["User"], "10001:10001", "{config}");
        assert_eq!(
            config["Healthcheck"]["Test"],
            json!(["CMD", "/penguin", "probe", "http://127.0.0.1:8080/health"]),
            "the image keeps its health check: {config}"
        );
        // The binary and a /data its user owns, which a new volume copies (Docker
        // does; podman hands an empty volume to the user itself): nothing else.
        let root = PathBuf::from(self.run(&["image", "mount", &tag]));
        let listing: Vec<(String, u32)> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().uid(),
                )
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        self.run(&["image", "unmount", &tag]);
        assert_eq!(listing, [("data".to_string(), 10001), ("penguin".to_string(), 0)]);
        tag
    }
}

/// What a test created in podman, removed when the test ends, passed or failed.
struct Created<'a> {
    podman: &'a Podman,
    /// The label (`key=value`) of containers, volumes and networks made for the test.
    labelled: Vec<String>,
    /// podman commands that remove the rest, run last first.
    removals: Vec<Vec<String>>,
}

impl<'a> Created<'a> {
    fn new(podman: &'a Podman) -> Self {
        Self {
            podman,
            labelled: Vec::new(),
            removals: Vec::new(),
        }
    }

    fn removal(&mut self, args: &[&str]) {
        self.removals.push(args.iter().map(|a| a.to_string()).collect());
    }
}

impl Drop for Created<'_> {
    fn drop(&mut self) {
        for label in &self.labelled {
            let filter = format!("label={label}");
            for (list, remove) in [
                (&["ps", "--all"][..], &["rm", "--force"][..]),
                (&["volume", "ls"], &["volume", "rm", "--force"]),
                (&["network", "ls"], &["network", "rm", "--force"]),
            ] {
                let listed = self
                    .podman
                    .try_run(&[list, &["--quiet", "--filter", &filter]].concat());
                let ids = String::from_utf8_lossy(&listed.stdout).into_owned();
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    self.podman.try_run(&[remove, &ids].concat());
                }
            }
        }
        for removal in self.removals.iter().rev() {
            let args: Vec<&str> = removal.iter().map(String::as_str).collect();
            self.podman.try_run(&args);
        }
    }
}

/// `curl` as design-es.md runs it, with the token if given: the status and the body.
fn curl(token: Option<&str>, method: &str, url: &str, body: Option<Json>) -> (u16, Json) {
    let mut command = Command::new("curl");
    command.args(["-sS", "-X", method, url, "-w", "\n%{http_code}"]);
    if let Some(token) = token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    if let Some(body) = body {
        command.args(["-H", "Content-Type: application/json", "-d", &body.to_string()]);
    }
    let output = command.output().expect("curl runs");
    assert!(
        output.status.success(),
        "curl -X {method} {url}: {}",
        said(&output)
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    let (body, status) = printed
        .trim_end()
        .rsplit_once('\n')
        .unwrap_or(("", printed.trim()));
    (
        status.parse().expect("curl prints the status"),
        serde_json::from_str(body).unwrap_or(Json::Null),
    )
}

fn get(url: String) -> (u16, Json) {
    curl(Some(TOKEN), "GET", &url, None)
}

/// design-es.md's quick tests ("Pruebas rápidas" in design-es.md), its four curl
/// commands as written there, against the shop whose services `url` names: a product,
/// 50 units, an order of 3 paid, an order of 2 whose payment fails and whose units come
/// back.
fn walkthrough(url: &dyn Fn(Service) -> String) {
    let post = |service, path: &str, body| {
        curl(
            Some(TOKEN),
            "POST",
            &format!("{}{path}", url(service)),
            Some(body),
        )
    };
    let (status, producto) = post(
        Service::Productos,
        "/productos",
        json!({"nombre": "Hielo Premium", "precio": 10000}),
    );
    assert_eq!((status, &producto["id"]), (201, &json!(1)), "{producto}");
    let (status, stock) = post(
        Service::Inventario,
        "/stock",
        json!({"producto_id": 1, "cantidad": 50}),
    );
    assert_eq!(status, 200, "{stock}");
    let (status, pedido) = post(
        Service::Pedidos,
        "/pedidos",
        json!({"items":[{"producto_id":1,"cantidad":3}], "pago":{"medio":"tarjeta","moneda":"PYG"}}),
    );
    assert_eq!(
        (status, pedido["estado"].as_str()),
        (201, Some("confirmado")),
        "{pedido}"
    );
    let (status, pedido) = post(
        Service::Pedidos,
        "/pedidos",
        json!({"items":[{"producto_id":1,"cantidad":2}], "pago":{"medio":"tarjeta","moneda":"PYG","fail":true}}),
    );
    assert_eq!(
        (status, pedido["estado"].as_str()),
        (402, Some("rechazado")),
        "{pedido}"
    );
    let (_, stock) = get(format!("{}/stock/1", url(Service::Inventario)));
    assert_eq!(
        stock,
        json!({"producto_id": 1, "cantidad": 47, "reservado": 0, "confirmado": 3})
    );
}

/// One more order of product 1, paid.
fn order(url: &dyn Fn(Service) -> String, cantidad: i64) {
    let (status, pedido) = curl(
        Some(TOKEN),
        "POST",
        &format!("{}/pedidos", url(Service::Pedidos)),
        Some(
            json!({"items":[{"producto_id":1,"cantidad":cantidad}], "pago":{"medio":"tarjeta","moneda":"PYG"}}),
        ),
    );
    assert_eq!(
        (status, pedido["estado"].as_str()),
        (201, Some("confirmado")),
        "{pedido}"
    );
}

/// `penguin check` from the host, with the 50 units the walkthrough loads: every order
/// final, every unit and payment accounted for.
fn check_books(url: &dyn Fn(Service) -> String) {
    let output = penguin(&std::env::temp_dir())
        .args(["check", "--loaded", "1=50", "--wait", "10", "--orders-url"])
        .arg(url(Service::Pedidos))
        .arg("--inventory-url")
        .arg(url(Service::Inventario))
        .arg("--payments-url")
        .arg(url(Service::Pagos))
        .env("SERVICE_TOKEN", TOKEN)
        .output()
        .expect("penguin runs");
    assert!(output.status.success(), "penguin check:\n{}", said(&output));
}

/// The log of a container started from the image names the address it bound.
fn assert_logs_bound_address(podman: &Podman, container: &str) {
    let logs = podman.logs(container);
    assert!(
        logs.contains("listening on http://0.0.0.0:8080"),
        "{container}:\n{logs}"
    );
}

/// deploy/compose.yaml run by podman-compose as a project of the test's own: its
/// image, its token and free host ports.
struct Compose<'a> {
    podman: &'a Podman,
    project: String,
    image: String,
    ports: Vec<(Service, u16)>,
}

impl Compose<'_> {
    fn run(&self, args: &[&str]) {
        let compose = deploy().join("compose.yaml");
        let mut command = self.podman.command("podman-compose");
        command
            .args(["--project-name", &self.project, "--file"])
            .arg(compose)
            .args(args)
            .env("PENGUIN_IMAGE", &self.image)
            .env("SERVICE_TOKEN", TOKEN)
            // Required by the file for its replicators, which this test does not start.
            .env("LITESTREAM_REPLICA_URL", "file:///replica");
        for (service, port) in &self.ports {
            command.env(
                format!("{}_PORT", service.name().to_uppercase()),
                port.to_string(),
            );
        }
        let output = command.output().expect("podman-compose runs");
        assert!(
            output.status.success(),
            "podman-compose {}: {}",
            args.join(" "),
            said(&output)
        );
    }

    /// Starts penguin's four services, by name and without what they depend on: the
    /// Litestream restore and replicator beside each come from a registry, and
    /// nothing is pulled here (tests/api/restore.rs runs the real litestream).
    fn up(&self) {
        self.run(
            &[
                &["up", "--detach", "--no-deps"][..],
                &Service::ALL.map(Service::name),
            ]
            .concat(),
        );
    }

    fn container(&self, service: Service) -> String {
        format!("{}_{}_1", self.project, service.name())
    }

    fn url(&self, service: Service) -> String {
        let port = self
            .ports
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, p)| p)
            .unwrap();
        format!("http://127.0.0.1:{port}")
    }

    fn wait_healthy(&self) {
        for service in Service::ALL {
            self.podman.wait_healthy(&self.container(service));
        }
    }

    /// The project's containers that exist, running or not.
    fn containers(&self) -> String {
        let filter = format!("label=io.podman.compose.project={}", self.project);
        self.podman.run(&["ps", "--all", "--quiet", "--filter", &filter])
    }
}

#[test]
fn compose_runs_the_shop_restarts_a_crashed_service_stops_cleanly_and_keeps_its_data() {
    let podman = match Podman::find(&["podman-compose"]) {
        Ok(podman) => podman,
        Err(why) => return skip(&why),
    };
    let project = unique("compose");
    let mut created = Created::new(&podman);
    created
        .labelled
        .push(format!("io.podman.compose.project={project}"));
    // podman-compose also makes a pod for the project, unlabelled.
    created.removal(&["pod", "rm", "--force", &format!("pod_{project}")]);
    let image = podman.build_image(&project, &mut created);
    let compose = Compose {
        podman: &podman,
        project,
        image,
        ports: Service::ALL.iter().map(|s| (*s, free_port())).collect(),
    };
    let url = |service| compose.url(service);

    // Up, healthy by the image's own check, and the original walkthrough through the
    // host ports, pedidos reaching its peers by service name.
    compose.up();
    compose.wait_healthy();
    assert_logs_bound_address(&podman, &compose.container(Service::Pedidos));
    walkthrough(&url);
    check_books(&url);

    // kill -9 of inventario's process, as a crash or the OOM killer would: the restart
    // policy brings it back (`podman kill` would count as a stop by the user, which
    // no restart policy undoes), and the books still balance after another order.
    let victim = compose.container(Service::Inventario);
    let restarts = podman.inspect(&victim, "{{.RestartCount}}");
    let pid: i32 = podman.inspect(&victim, "{{.State.Pid}}").parse().expect("a pid");
    // SAFETY: kill(2) sends a signal to the container's process and touches no memory.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill -9 {pid}");
    let deadline = Instant::now() + PATIENCE;
    while podman.inspect(&victim, "{{.RestartCount}}") == restarts {
        assert!(Instant::now() < deadline, "{victim} was not restarted");
        std::thread::sleep(Duration::from_millis(100));
    }
    podman.wait_healthy(&victim);
    order(&url, 4);
    check_books(&url);

    // A stop is SIGTERM, then SIGKILL after stop_grace_period: exit code 0 is a drain
    // finished within it, 137 would be the kill.
    compose.run(&["stop"]);
    for service in Service::ALL {
        let container = compose.container(service);
        assert_eq!(
            podman.inspect(&container, "{{.State.Status}} {{.State.ExitCode}}"),
            "exited 0",
            "{container}:\n{}",
            podman.logs(&container)
        );
    }

    // down removes the containers, not the volumes: up again, the orders are there.
    compose.run(&["down"]);
    assert_eq!(compose.containers(), "", "down leaves no container");
    compose.up();
    compose.wait_healthy();
    let (status, pedidos) = get(format!("{}/pedidos", url(Service::Pedidos)));
    assert_eq!(
        (status, pedidos.as_array().map(Vec::len)),
        (200, Some(3)),
        "{pedidos}"
    );
    check_books(&url);
}

/// One StatefulSet's pod template as `podman kube play` runs it.
struct Played {
    service: Service,
    pod: String,
    /// The pod's one container, as podman names it.
    container: String,
    claim: String,
    host_port: u16,
    /// The container as the manifest writes it.
    manifest: Value,
    /// The pod's securityContext as the manifest writes it.
    pod_security: Value,
}

/// deploy/k8s as `podman kube play` takes it, which plays Pods and claims but no
/// StatefulSet or Service: each StatefulSet's pod template as a Pod named
/// `{prefix}-{name}`, its claim template as a PersistentVolumeClaim mounted there as
/// the StatefulSet controller would; peers' Service names turned into the names of the
/// pods they select; the Secret and the image the test's own; the named port published
/// on a free host port. The YAML, and what was played.
fn pods_of_the_manifests(prefix: &str, image: &str) -> (String, Vec<Played>) {
    let documents: Vec<Value> = kustomized().iter().flat_map(|f| yaml_documents(f)).collect();
    let kind = |d: &Value, k: &str| text(&d["kind"]) == k;
    // Service name → the StatefulSet whose pods it selects → the pod played for it.
    let selected = |label: &Value| {
        documents
            .iter()
            .filter(|d| kind(d, "StatefulSet"))
            .find(|s| &s["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == label)
            .map(|s| format!("{prefix}-{}", text(&s["metadata"]["name"])))
    };
    let services: Vec<(String, String)> = documents
        .iter()
        .filter(|d| kind(d, "Service"))
        .filter_map(|d| {
            let pod = selected(&d["spec"]["selector"]["app.kubernetes.io/name"])?;
            Some((text(&d["metadata"]["name"]).to_string(), pod))
        })
        .collect();
    assert_eq!(services.len(), 4, "a Service for each StatefulSet");

    let mut yaml = String::new();
    let mut played = Vec::new();
    for set in documents.iter().filter(|d| kind(d, "StatefulSet")) {
        let name = text(&set["metadata"]["name"]);
        let service = *Service::ALL.iter().find(|s| s.name() == name).expect("a service");
        let pod = format!("{prefix}-{name}");
        let template = &set["spec"]["template"];
        let mut spec = template["spec"].clone();
        let mut volumes = Vec::new();
        let mut claim = String::new();
        for claim_template in set["spec"]["volumeClaimTemplates"].as_sequence().expect("claims") {
            let volume = text(&claim_template["metadata"]["name"]);
            // The StatefulSet controller's name for its first pod's claim.
            claim = format!("{prefix}-{volume}-{name}-0");
            let document = json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim},
                "spec": to_json(&claim_template["spec"]),
            });
            yaml.push_str(&serde_norway::to_string(&document).unwrap());
            yaml.push_str("---\n");
            volumes.push(json!({"name": volume, "persistentVolumeClaim": {"claimName": claim}}));
        }
        spec["volumes"] = serde_norway::to_value(volumes).unwrap();
        // penguin's container, the one named after its service, alone: a sidecar's or
        // an init container's image would come from a registry, and nothing is pulled.
        let manifest = spec["containers"]
            .as_sequence()
            .expect("containers")
            .iter()
            .find(|c| text(&c["name"]) == name)
            .unwrap_or_else(|| panic!("{name}: no container named {name}"))
            .clone();
        spec["containers"] = Value::Sequence(vec![manifest.clone()]);
        if let Some(spec) = spec.as_mapping_mut() {
            spec.remove("initContainers");
        }
        let container = &mut spec["containers"][0];
        container["image"] = Value::from(image);
        let host_port = free_port();
        for port in container["ports"].as_sequence_mut().expect("ports") {
            port["hostPort"] = Value::from(host_port);
            port["hostIP"] = Value::from("127.0.0.1");
        }
        for variable in container["env"].as_sequence_mut().expect("env") {
            if let Some(secret) = variable["valueFrom"]["secretKeyRef"].as_mapping_mut() {
                let secret_name = format!("{prefix}-{}", text(&secret["name"]));
                secret.insert("name".into(), Value::from(secret_name));
            }
            if let Some(value) = variable["value"].as_str() {
                let value = services.iter().fold(value.to_string(), |value, (service, pod)| {
                    value.replace(&format!("://{service}:"), &format!("://{pod}:"))
                });
                variable["value"] = Value::from(value);
            }
        }
        let container_name = text(&manifest["name"]).to_string();
        let document = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod, "labels": to_json(&template["metadata"]["labels"])},
            "spec": to_json(&spec),
        });
        yaml.push_str(&serde_norway::to_string(&document).unwrap());
        yaml.push_str("---\n");
        played.push(Played {
            service,
            container: format!("{pod}-{container_name}"),
            pod,
            claim,
            host_port,
            pod_security: template["spec"]["securityContext"].clone(),
            manifest,
        });
    }
    assert_eq!(played.len(), 4, "a StatefulSet for each service");
    (yaml, played)
}

fn to_json(value: &Value) -> Json {
    serde_json::to_value(value).expect("YAML that JSON can hold")
}

/// The secrets the manifests' containers read (`secretKeyRef`): name → keys.
fn secrets_read(played: &[Played]) -> BTreeMap<String, BTreeSet<String>> {
    let mut secrets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for variable in played
        .iter()
        .flat_map(|p| p.manifest["env"].as_sequence().expect("env"))
    {
        let reference = &variable["valueFrom"]["secretKeyRef"];
        if reference.is_mapping() {
            secrets
                .entry(text(&reference["name"]).to_string())
                .or_default()
                .insert(text(&reference["key"]).to_string());
        }
    }
    secrets
}

/// A `/proc/PID/status` line's values (`Uid:\t10001\t10001...` → the numbers).
fn status_line<'a>(status: &'a str, key: &str) -> Vec<&'a str> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key} in:\n{status}"))
        .split_whitespace()
        .collect()
}

/// What the kernel says of the container's process holds what its securityContext
/// asks: the user and group, no capability at all, no privilege escalation, a
/// seccomp filter, a read-only root and the claim's volume at its mount path.
fn assert_security_context(podman: &Podman, played: &Played) {
    let pid = podman.inspect(&played.container, "{{.State.Pid}}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let pod = &played.pod_security;
    let context = &played.manifest["securityContext"];
    let user = pod["runAsUser"].as_u64().expect("runAsUser").to_string();
    let group = pod["runAsGroup"].as_u64().expect("runAsGroup").to_string();
    assert_eq!(status_line(&status, "Uid"), [user.as_str(); 4], "{}", played.pod);
    assert_eq!(status_line(&status, "Gid"), [group.as_str(); 4], "{}", played.pod);
    assert_eq!(pod["runAsNonRoot"], Value::from(true));
    assert_eq!(
        context["capabilities"]["drop"],
        serde_norway::to_value(["ALL"]).unwrap()
    );
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(
            status_line(&status, set),
            ["0000000000000000"],
            "{}: {set}",
            played.pod
        );
    }
    assert_eq!(context["allowPrivilegeEscalation"], Value::from(false));
    assert_eq!(status_line(&status, "NoNewPrivs"), ["1"], "{}", played.pod);
    assert_eq!(text(&pod["seccompProfile"]["type"]), "RuntimeDefault");
    assert_eq!(
        status_line(&status, "Seccomp"),
        ["2"],
        "{}: a seccomp filter",
        played.pod
    );

    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    // Fields: id, parent, device, root, mount point, options, ...
    let mount = |point: &str| {
        mounts
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find(|fields| fields.get(4) == Some(&point))
            .unwrap_or_else(|| panic!("{}: nothing mounted at {point}:\n{mounts}", played.pod))
    };
    assert_eq!(context["readOnlyRootFilesystem"], Value::from(true));
    assert!(
        mount("/")[5].split(',').any(|o| o == "ro"),
        "{}: a read-only root",
        played.pod
    );
    let data = text(&played.manifest["volumeMounts"][0]["mountPath"]);
    assert!(
        mount(data)[3].contains(&format!("/volumes/{}/_data", played.claim)),
        "{}: the claim {} at {data}",
        played.pod,
        played.claim
    );
}

/// The port a probe names (`http`) as the container's number for it.
fn probe_url(manifest: &Value, probe: &str) -> String {
    let get = &manifest[probe]["httpGet"];
    let port = manifest["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == get["port"] || p["containerPort"] == get["port"])
        .expect("the probe's port")["containerPort"]
        .as_u64()
        .expect("a port number");
    format!("http://127.0.0.1:{port}{}", text(&get["path"]))
}

#[test]
fn the_kubernetes_pod_templates_run_as_their_security_context_says_and_take_orders() {
    let podman = match Podman::find(&[]) {
        Ok(podman) => podman,
        Err(why) => return skip(&why),
    };
    let prefix = unique("kube");
    let mut created = Created::new(&podman);
    let image = podman.build_image(&prefix, &mut created);
    let (yaml, played) = pods_of_the_manifests(&prefix, &image);

    // The Secret, as podman 4.3 reads one for secretKeyRef: a JSON object of its keys
    // and their values in base64.
    let files = tempfile::tempdir().unwrap();
    for (secret, keys) in secrets_read(&played) {
        let name = format!("{prefix}-{secret}");
        let value = base64::engine::general_purpose::STANDARD.encode(TOKEN);
        let data: serde_json::Map<String, Json> = keys.into_iter().map(|k| (k, json!(value))).collect();
        let file = files.path().join(&name);
        std::fs::write(&file, Json::Object(data).to_string()).unwrap();
        created.removal(&["secret", "rm", &name]);
        podman.run(&["secret", "create", &name, file.to_str().unwrap()]);
    }
    // A network of the test's own, whose DNS answers the pods' names.
    created.removal(&["network", "rm", "--force", &prefix]);
    podman.run(&["network", "create", &prefix]);
    for pod in &played {
        created.removal(&["volume", "rm", "--force", &pod.claim]);
        created.removal(&["pod", "rm", "--force", &pod.pod]);
    }
    let file = files.path().join("pods.yaml");
    std::fs::write(&file, &yaml).unwrap();
    podman.run(&["kube", "play", "--network", &prefix, file.to_str().unwrap()]);

    // podman turns the httpGet probes into curl commands, which the image does not
    // have, and runs no timer for them: the test asks what they ask, from inside.
    for pod in &played {
        for probe in ["readinessProbe", "livenessProbe"] {
            let url = probe_url(&pod.manifest, probe);
            podman.wait_for(
                &pod.container,
                &["exec", &pod.container, "/penguin", "probe", &url],
            );
        }
        assert_security_context(&podman, pod);
        assert_logs_bound_address(&podman, &pod.container);
    }

    let url = |service| {
        let pod = played.iter().find(|p| p.service == service).unwrap();
        format!("http://127.0.0.1:{}", pod.host_port)
    };
    // The token is the Secret's: without it, 401.
    let (status, body) = curl(
        None,
        "GET",
        &format!("{}/productos", url(Service::Productos)),
        None,
    );
    assert_eq!(status, 401, "{body}");
    walkthrough(&url);
    check_books(&url);
}
