//! `portal-migrate bench --quick` runs every benchmark at a tiny size and prints its figures.
//! No figure is asserted against a goal: a debug build on a shared CI machine measures
//! nothing worth asserting. What is asserted is that each benchmark runs to the end (its
//! own checks included, e.g. the copied file's hash) and reports its figures.

use std::process::Command;

#[test]
fn the_quick_bench_runs_every_benchmark_and_prints_its_figures() {
    let output = Command::new(env!("CARGO_BIN_EXE_portal-migrate"))
        .args(["bench", "--quick"])
        .output()
        .expect("the binary starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench --quick failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for bench in portal_migrate::bench::NAMES {
        assert!(
            stdout.contains(&format!("== {bench}")),
            "{bench} did not run:\n{stdout}"
        );
        let figures = stdout
            .lines()
            .filter(|line| line.starts_with(bench) && !line.starts_with("=="))
            .count();
        assert!(figures >= 1, "{bench} printed no figure:\n{stdout}");
    }
    for figure in [
        "target request rate / limit",
        "objects/s with 1 workers",
        "pool with a no-op executor",
        "peak RSS of the daemon",
        "claim latency at the end of the queue",
        "speed-up of the daemon",
    ] {
        assert!(
            stdout.contains(figure),
            "missing figure '{figure}':\n{stdout}"
        );
    }
}

#[test]
fn an_unknown_benchmark_is_refused_with_the_list_of_names() {
    let output = Command::new(env!("CARGO_BIN_EXE_portal-migrate"))
        .args(["bench", "--quick", "--only", "nonsense"])
        .output()
        .expect("the binary starts");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown benchmark 'nonsense'"), "{stderr}");
    assert!(stderr.contains("saturation"), "{stderr}");
}
