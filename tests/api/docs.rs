//! The README documents what the code does: its table of error codes lists every
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
    let command = penguin::config::Cli::command();
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
