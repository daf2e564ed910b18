//! The README documents what the code does: its tables of error codes, settings and
//! metrics match the code. Its table of error codes lists every
//! code penguin answers, each with the status the code gives it, and no other.

use std::collections::HashMap;

use penguin::error::ErrorCode;
use strum::IntoEnumIterator;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("the README")
}

#[test]
fn the_readme_lists_every_error_code_with_its_status() {
    let readme = readme();
    let table = readme
        .split("## Errors")
        .nth(1)
        .expect("an Errors section")
        .lines()
        .skip_while(|l| !l.starts_with("| status"))
        .skip(2)
        .take_while(|l| l.starts_with('|'));
    let mut documented: HashMap<String, u16> = HashMap::new();
    for row in table {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let status: u16 = cells[1].parse().unwrap_or_else(|_| panic!("a status in {row:?}"));
        for code in cells[2].split(',').map(|c| c.trim().trim_matches('`')) {
            assert!(
                documented.insert(code.to_string(), status).is_none(),
                "{code} twice"
            );
        }
    }
    for code in ErrorCode::iter() {
        let status = documented.remove(code.as_str());
        assert_eq!(
            status,
            Some(code.status().as_u16()),
            "{code:?} in the README's table"
        );
    }
    assert!(
        documented.is_empty(),
        "codes penguin never answers: {documented:?}"
    );
}

#[test]
fn the_readme_lists_every_setting_with_its_default() {
    use clap::CommandFactory;
    let readme = readme();
    let rows: HashMap<String, String> = readme
        .split("## Configuration")
        .nth(1)
        .expect("a Configuration section")
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_string(), cells[3].to_string())
        })
        .collect();
    let command = penguin::cli::Cli::command();
    let serve = command.find_subcommand("serve").expect("serve");
    for arg in serve.get_arguments() {
        let Some(variable) = arg.get_env() else { continue };
        let variable = variable.to_string_lossy();
        let documented = rows
            .get(variable.as_ref())
            .unwrap_or_else(|| panic!("{variable} is not in the README's table"));
        for default in arg.get_default_values() {
            let default = default.to_string_lossy();
            assert!(
                documented.contains(default.as_ref()),
                "{variable}: the README says {documented:?}, the code {default:?}"
            );
        }
    }
}

/// The metrics table of "Operating penguin": every metric a service serves is in it,
/// and every metric in it is one that penguin registers.
#[actix_web::test]
async fn the_readme_lists_every_metric() {
    use crate::helpers::{Http, TestApp};
    use actix_web::http::Method;
    use penguin::service::Service;

    let readme = readme();
    let documented: Vec<String> = readme
        .split("## Operating penguin")
        .nth(1)
        .expect("an Operating penguin section")
        .lines()
        .skip_while(|l| !l.starts_with("| metric"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            row.split('|')
                .nth(1)
                .unwrap_or("")
                .trim()
                .trim_matches('`')
                .to_string()
        })
        .collect();
    assert!(!documented.is_empty(), "a metrics table");

    let app = TestApp::spawn_all().await;
    let producto = app.stocked("Hielo", serde_json::json!(5), 3).await;
    assert_eq!(app.pedir(&[(producto, 1)], false).await.status, 201);
    let mut served = Vec::new();
    for service in Service::ALL {
        let scrape = Http::default()
            .call(Method::GET, format!("{}/metrics", app.url(service)))
            .send()
            .await
            .expect("metrics");
        for name in scrape.text.lines().filter_map(|l| l.strip_prefix("# HELP ")) {
            let name = name.split(' ').next().unwrap_or_default();
            assert!(
                documented.iter().any(|d| d == name),
                "{service:?} serves {name}, which the README's metrics table lacks"
            );
            served.push(name.to_string());
        }
    }
    let sources: String = [
        "src/metrics.rs",
        "src/db.rs",
        "src/logging.rs",
        "src/pedidos/metrics.rs",
        "src/inventario/metrics.rs",
        "src/telemetry.rs",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(format!("{}/{f}", env!("CARGO_MANIFEST_DIR"))).expect(f))
    .collect();
    for name in &documented {
        // The process' own series come from the prometheus crate, under their standard names.
        let Some(registered) = name.strip_prefix("penguin_") else {
            assert!(
                name.starts_with("process_") && served.contains(name),
                "the README lists {name}, which no service serves"
            );
            continue;
        };
        assert!(
            sources.contains(&format!("\"{registered}\"")),
            "the README lists {name}, which penguin does not register"
        );
    }
}
