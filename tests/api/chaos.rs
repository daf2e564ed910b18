//! A short form of `scripts/chaos.sh`: the four services as processes under order
//! load while random ones are killed; every invariant must hold at the end.

use std::process::Command;

#[test]
fn a_short_chaos_run_ends_with_every_invariant_true() {
    let root = env!("CARGO_MANIFEST_DIR");
    let work = tempfile::tempdir().expect("a folder");
    let output = Command::new("bash")
        .arg(format!("{root}/scripts/chaos.sh"))
        .arg("12")
        .env("PENGUIN_BIN", env!("CARGO_BIN_EXE_penguin"))
        .env("CHAOS_EVERY", "2")
        .env("CHAOS_CLIENTS", "4")
        .env("CHAOS_DIR", work.path())
        .output()
        .expect("bash runs the chaos script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "chaos failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("chaos: all invariants hold"), "{stdout}");
    assert!(stdout.contains("chaos: killed"), "nothing was killed:\n{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
}
