//! QEMU tests of the phase suite (seed 002): verdicts replay in deterministic mode, and only pending phases fail.

use sis_testing::phases::{self, Status};

fn verdicts(report: &phases::Report) -> Vec<(String, Status, Option<String>)> {
    report
        .phases
        .iter()
        .flat_map(|phase| &phase.tests)
        .map(|test| (test.id.clone(), test.status.clone(), test.reason.clone()))
        .collect()
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn every_phase_outside_the_pending_list_passes_and_verdicts_replay() {
    let first = phases::run(&[], true, &mut |_| {});
    let second = phases::run(&[], true, &mut |_| {});
    print!("{}", phases::table(&first));
    assert_eq!(verdicts(&first), verdicts(&second), "identical verdicts in two deterministic runs");
    assert_eq!(first.failing_outside_pending, 0, "{}", phases::table(&first));
    // Every phase is complete: all 75 tests pass.
    assert_eq!((first.passed, first.total), (75, 75), "{}", phases::table(&first));
    // Phase 3 is complete: every test passes, and a failure would fail CI.
    let phase3 = first.phases.iter().find(|phase| phase.number == 3).unwrap();
    assert_eq!((phase3.passed, phase3.total), (10, 10), "{}", phases::table(&first));
    assert!(phase3.tests.iter().filter(|test| test.status == Status::Passed).all(|test| test.duration_ms > 0));
    // Phase 1 is complete: every test of the dataflow graphs, operators, channels and tensors passes.
    let phase1 = first.phases.iter().find(|phase| phase.number == 1).unwrap();
    assert_eq!((phase1.passed, phase1.total, phase1.pending_issue), (13, 13, None), "{}", phases::table(&first));
    // Phase 8 is complete, graph integration included.
    let phase8 = first.phases.iter().find(|phase| phase.number == 8).unwrap();
    assert_eq!((phase8.passed, phase8.total, phase8.pending_issue), (8, 8, None), "{}", phases::table(&first));
    // Phase 6 is complete: its session drives the web server with curl, Python's websockets and raw TCP.
    let phase6 = first.phases.iter().find(|phase| phase.number == 6).unwrap();
    assert_eq!((phase6.passed, phase6.total, phase6.pending_issue), (15, 15, None), "{}", phases::table(&first));
    assert!(phase6.tests.iter().all(|test| test.duration_ms > 0));
    // Phase 9 is complete: protocol, capabilities, audit and supervision of the WebAssembly agents.
    let phase9 = first.phases.iter().find(|phase| phase.number == 9).unwrap();
    assert_eq!((phase9.passed, phase9.total, phase9.pending_issue), (4, 4, None), "{}", phases::table(&first));
    // Phase 7 is complete: its batch judges the lifecycle, and its session the OpenTelemetry export at the host
    // collector and the whole workflow.
    let phase7 = first.phases.iter().find(|phase| phase.number == 7).unwrap();
    assert_eq!((phase7.passed, phase7.total, phase7.pending_issue), (7, 7, None), "{}", phases::table(&first));
}
