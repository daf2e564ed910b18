//! Every `curl` line of the README, run in order with the system's curl against a real
//! `penguin serve all` on free ports, answers the status the comment above it promises,
//! so that the prose and the binary cannot drift apart.

use std::process::Command;

use crate::helpers::{penguin, skip, start};

/// A `curl` command of the README and the status the comment above it promises.
#[derive(Debug)]
struct Example {
    line: usize,
    command: String,
    promised: Option<u16>,
}

/// The first status in a comment: a `: ` followed by three digits (`# 2) Load stock: 200`).
fn promised(comment: &str) -> Option<u16> {
    comment.match_indices(": ").find_map(|(at, _)| {
        let rest = &comment[at + 2..];
        let digits = rest.get(..3)?;
        let after = rest[3..].chars().next();
        (digits.bytes().all(|b| b.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten()
    })
}

/// Every `curl` command in the README's shell blocks, with its continuation lines.
fn examples(readme: &str) -> Vec<Example> {
    let mut found = Vec::new();
    let mut in_shell = false;
    let mut comment = "";
    let mut lines = readme.lines().enumerate();
    while let Some((at, line)) = lines.next() {
        if let Some(fence) = line.strip_prefix("```") {
            in_shell = !in_shell && matches!(fence, "bash" | "sh" | "shell");
            continue;
        }
        if !in_shell {
            continue;
        }
        if line.starts_with("curl ") {
            let mut command = line.to_string();
            while command.ends_with('\\') {
                let Some((_, next)) = lines.next() else { break };
                command.push('\n');
                command.push_str(next);
            }
            found.push(Example {
                line: at + 1,
                command,
                promised: promised(comment),
            });
        }
        comment = line.strip_prefix('#').unwrap_or_default();
    }
    found
}

/// The status curl's `-w 'HTTP %{http_code}'` printed last.
fn answered(output: &str) -> Option<u16> {
    output
        .rmatch_indices("HTTP ")
        .find_map(|(at, _)| output.get(at + 5..at + 8)?.parse().ok())
}

#[test]
fn every_curl_line_of_the_readme_answers_the_status_it_promises() {
    if let Err(e) = Command::new("curl").arg("--version").output() {
        return skip(&format!("cannot run curl: {e}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut command = penguin(dir.path());
    command.args(["serve", "all", "--base-port", "0", "--data-dir", "data"]);
    let examples = examples(include_str!("../../README.md"));
    assert!(
        examples.len() >= 5,
        "the walkthrough alone has five: {examples:?}"
    );
    for example in &examples {
        assert!(
            example.promised.is_some() && example.command.contains("%{http_code}"),
            "README.md:{}: a curl line must be under a comment promising its status \
             (`# what it does: 201`) and show it with -w 'HTTP %{{http_code}}\\n': {}",
            example.line,
            example.command
        );
    }
    let running = start(&mut command, 4);
    let ports = [
        ("5001", "productos"),
        ("5002", "inventario"),
        ("5003", "pagos"),
        ("5004", "pedidos"),
    ];
    for example in examples {
        let mut line = example.command.clone();
        for (port, service) in ports {
            for host in ["127.0.0.1", "localhost"] {
                line = line.replace(&format!("http://{host}:{port}"), &running.urls[service]);
            }
        }
        let output = Command::new("bash")
            .args(["-c", &line])
            .current_dir(dir.path())
            .output()
            .expect("bash runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "README.md:{}: {line}\n{stdout}{}",
            example.line,
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            answered(&stdout),
            example.promised,
            "README.md:{}: {line}\n{stdout}",
            example.line
        );
    }
}

#[test]
fn statuses_are_read_from_comments_and_curl_output() {
    assert_eq!(
        promised(" 3) Place an order (happy path): 201, \"estado\""),
        Some(201)
    );
    assert_eq!(promised(" The stock: 200, cantidad 47"), Some(200));
    assert_eq!(promised(" at 12:30: 2019"), None);
    assert_eq!(promised(" no status"), None);
    assert_eq!(answered("HTTP/1.1 201 Created\r\n\r\n{}\nHTTP 201\n"), Some(201));
    assert_eq!(answered("{\"id\": 1}\n"), None);
}
