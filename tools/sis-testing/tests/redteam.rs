//! QEMU tests of `stresstest redteam` with a network device: every class attacked, every attack rejected with its
//! expected error, no crash, no leak; the shell answers after the run. Without a device (whose replies arrive in
//! host time, so the number of rounds in a duration varies) a seed replays identical JSON, and another seed draws
//! other inputs.

use serde_json::Value;
use sis_proto::exit;
use sis_testing::{run_batch, QemuConfig};

const CLASSES: [&str; 6] = [
    "shell-input",
    "filesystem-paths",
    "privileged-commands",
    "resource-exhaustion",
    "malformed-packets",
    "hostile-agents",
];

fn redteam(seed: u64, network: bool) -> (Option<i32>, Vec<Value>) {
    let commands = format!("stresstest redteam --duration 500 --seed {seed} --json; version --json");
    let mut config = QemuConfig::new().batch(&commands).deterministic();
    if network {
        config = config.user_network_free_port(7).unwrap();
    }
    let result = run_batch(&config).unwrap();
    (result.status, result.json_lines().unwrap())
}

fn count(class: &Value, key: &str) -> u64 {
    class[key].as_u64().unwrap_or_else(|| panic!("{key} missing in {class}"))
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn every_attack_is_rejected_with_its_expected_error_without_crash_or_leak_and_a_seed_replays() {
    let (status, first) = redteam(5, true);
    assert_eq!(first.len(), 2, "{first:?}");
    let report = &first[0]["redteam"];
    assert_eq!(report["status"], "pass", "{report}");
    assert_eq!(first[0]["ok"], true);
    assert_eq!(report["config"]["seed"], 5);
    let classes = report["classes"].as_array().unwrap();
    let names: Vec<&str> = classes.iter().map(|class| class["class"].as_str().unwrap()).collect();
    assert_eq!(names, CLASSES);
    let rounds = report["rounds"].as_u64().unwrap();
    assert!(rounds > 0);
    for class in classes {
        assert_eq!(count(class, "attempts"), rounds, "{class}");
        assert_eq!(count(class, "rejected_expected"), rounds, "{class}");
        for key in ["rejected_unexpected", "accepted", "crashed", "leaked", "skipped"] {
            assert_eq!(count(class, key), 0, "{key}: {class}");
        }
        assert_eq!(class["survived"], true, "{class}");
    }
    assert_eq!(report["totals"]["classes_survived"], 6);
    // The kernel answered after the run: the next command's reply.
    assert_eq!(first[1]["command"], "version");
    assert_eq!(first[1]["ok"], true);
    assert_eq!(status, Some(exit::PASS));

    let (_, alone) = redteam(5, false);
    let (_, again) = redteam(5, false);
    assert_eq!(alone, again, "the same seed replays identical JSON in deterministic mode");
    assert_eq!(alone[0]["redteam"]["status"], "partial_pass", "a skipped class is never a pass");
    let (_, other) = redteam(6, false);
    for (a, b) in classes.iter().zip(other[0]["redteam"]["classes"].as_array().unwrap()) {
        assert_ne!(a["input_digest"], b["input_digest"], "seed 6 drew the same {} inputs", a["class"]);
    }
}
