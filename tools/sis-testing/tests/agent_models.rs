//! QEMU tests of agent networks as governed models: the image's signed memory agent is registered, loaded and
//! installed through the governor (audited), infers exactly the host's Q-values, exports the committed weights;
//! refusals change nothing; the kernel's own training gives the committed blob; compliance sees the agent's source.

#[path = "audit_entries/mod.rs"]
mod audit_entries;

use audit_entries::model_and_outcome;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sis_ai::NetworkWeights;
use sis_governance::artifact::{self, Metadata};
use sis_governance::keys::TrustedKeys;
use sis_testing::{hex, QemuConfig, ScratchDisk, Sis, DEFAULT_DISK_BYTES};

const ARTIFACT: &[u8] = include_bytes!("../../../models/memory-agent.sismodel");
const WEIGHTS: &[u8] = include_bytes!("../../../models/memory-agent.bin");
const REPORT: &[u8] = include_bytes!("../../../models/memory-agent.training.json");
const TEST_KEY: &str = include_str!("../../../models/keys/sis-test.pub");
/// States `neuralctl infer` is asked about, as typed (parsed the same way on both sides).
const STATES: [[&str; 5]; 4] = [
    ["0.98", "0.2", "0.4", "0.5", "0.8"],
    ["0.1", "-0.05", "0.3", "0", "0.2"],
    ["0.5", "0.1", "0.9", "0.0625", "1"],
    ["0", "0", "0", "0", "0"],
];

fn ok(json: &Value) -> &Value {
    assert_eq!(json["ok"], true, "{json}");
    json
}

fn error_code(json: &Value) -> &str {
    assert_eq!(json["ok"], false, "{json}");
    json["error"]["code"].as_str().unwrap()
}

fn verified() -> (Metadata, Vec<u8>) {
    let mut keys = TrustedKeys::new();
    keys.add_hex(TEST_KEY).unwrap();
    let verified = artifact::decode(ARTIFACT, &keys).unwrap();
    (verified.metadata, verified.weights.to_vec())
}

/// The Q-values the host computes for each of [`STATES`] with the agent the kernel builds from the artifact.
fn host_q_values() -> Vec<Vec<u32>> {
    let (metadata, weights) = verified();
    let weights = NetworkWeights::decode_for(&weights, &metadata.input_shape, &metadata.output_shape).unwrap();
    let agent = sis_stress::learning::agent_with_weights(&weights, 0).unwrap();
    STATES
        .iter()
        .map(|state| {
            let state: Vec<f32> = state.iter().map(|value| value.parse().unwrap()).collect();
            agent.q_values(&state).iter().map(|value| value.to_bits()).collect()
        })
        .collect()
}

/// The guest's Q-values for each of [`STATES`], as f32 bits (serde_json prints an f32 in its shortest round-trip
/// form: parsed back, it is the same f32).
fn guest_q_values(sis: &mut Sis) -> Vec<Vec<u32>> {
    STATES
        .iter()
        .map(|state| {
            let reply = sis.run_json(&format!("neuralctl infer {}", state.join(" "))).unwrap();
            ok(&reply)["q_values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|value| (value.as_f64().unwrap() as f32).to_bits())
                .collect()
        })
        .collect()
}

/// The install entries of the audit log: model (or none), principal, outcome.
fn installs(sis: &mut Sis) -> Vec<(String, String, String)> {
    let audit = sis.run_json("llmctl audit --action install").unwrap();
    ok(&audit)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let (model, outcome) = model_and_outcome(entry);
            (model, entry["principal"].as_str().unwrap().to_string(), outcome)
        })
        .collect()
}

fn triples(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    list.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect()
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn the_builtin_agent_installs_through_the_governor_and_infers_the_hosts_bits() {
    let mut sis = Sis::boot(&QemuConfig::new()).unwrap();
    let registered = sis.run_json("llmctl register builtin:memory-agent").unwrap();
    assert_eq!(
        (ok(&registered)["name"].as_str(), registered["kind"].as_str(), registered["source"].as_str()),
        (Some("memory-agent"), Some("agent-network"), Some("builtin:memory-agent"))
    );
    assert_eq!(registered["artifact_bytes"], ARTIFACT.len() as u64);
    let digest = registered["digest"].as_str().unwrap().to_string();
    // The digest covers the artifact up to its trailer (digest, signature, key id: 104 bytes).
    assert_eq!(digest, hex(&Sha256::digest(&ARTIFACT[..ARTIFACT.len() - 104])[..]));
    assert_eq!(ok(&sis.run_json("llmctl register builtin").unwrap())["name"], "shakespeare-lm");
    assert_eq!(error_code(&sis.run_json("llmctl register builtin:nothing").unwrap()), "unknown-builtin");
    let info = sis.run_json("llmctl info memory-agent").unwrap();
    assert_eq!(ok(&info)["network"], serde_json::json!({ "layers": [5, 16, 3], "parameters": 147 }));
    assert_eq!((&info["input_shape"], &info["output_shape"]), (&serde_json::json!([5]), &serde_json::json!([3])));
    assert_eq!(info["training_data_sha256"], hex(&Sha256::digest(REPORT)[..]));
    assert_eq!(ok(&sis.run_json("llmctl info shakespeare-lm").unwrap())["network"], Value::Null);

    for subcommand in ["install", "export"] {
        let usage = sis.run(&format!("neuralctl {subcommand} --help")).unwrap().text;
        assert!(usage.starts_with(&format!("usage: neuralctl {subcommand}")), "{usage}");
    }

    // Refused, each with its reason and its audit entry; no agent appears.
    assert_eq!(error_code(&sis.run_json("neuralctl install memory-agent").unwrap()), "not-loaded");
    assert_eq!(error_code(&sis.run_json("neuralctl install nothing").unwrap()), "unknown-model");
    ok(&sis.run_json("llmctl load shakespeare-lm").unwrap());
    let language_model = sis.run_json("neuralctl install shakespeare-lm").unwrap();
    assert_eq!(error_code(&language_model), "not-an-agent-network");
    assert_eq!(language_model["error"]["message"], "shakespeare-lm@1.0.0 is of kind language-model, not agent-network");
    // A malformed reference is the parser's: no audit entry.
    assert_eq!(error_code(&sis.run_json("neuralctl install memory-agent@1.2").unwrap()), "invalid-value");
    assert_eq!(error_code(&sis.run_json("neuralctl status").unwrap()), "no-agent");

    ok(&sis.run_json("llmctl load memory-agent").unwrap());
    let installed = sis.run_json("neuralctl install memory-agent").unwrap();
    assert_eq!(
        ok(&installed)["model"],
        serde_json::json!({ "name": "memory-agent", "version": "1.0.0", "digest": digest })
    );
    assert_eq!((installed["principal"].as_str(), installed["parameters"].as_u64()), (Some("console"), Some(147)));
    assert_eq!(installed["shape"], serde_json::json!([5, 16, 3]));
    assert_eq!((installed["epsilon"].as_f64().unwrap() as f32).to_bits(), 0.05f32.to_bits());
    let status = sis.run_json("neuralctl status").unwrap();
    assert_eq!(ok(&status)["origin"], format!("installed from memory-agent@1.0.0 (digest {digest})"));
    assert_eq!(status["model"], installed["model"]);
    assert_eq!(
        (status["seed"].as_u64(), status["training_steps"].as_u64(), status["decisions"].as_u64()),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(guest_q_values(&mut sis), host_q_values(), "Q-values of the installed agent, guest against host");

    let generate = sis.run_json("llmctl infer memory-agent \"x\"").unwrap();
    assert_eq!(error_code(&generate), "not-a-language-model");
    assert_eq!(
        generate["error"]["message"],
        "memory-agent@1.0.0 is an agent network, not a language model: it generates no text; install it into the \
         learning agent with `neuralctl install memory-agent@1.0.0`"
    );
    let shown = sis.run_json("llmctl budget show --principal console").unwrap();
    assert_eq!(ok(&shown)["principals"][0]["counters"]["requests"], 0, "refused before the policy");

    let exported = sis.run_json("neuralctl export /agents/memory.bin").unwrap();
    assert_eq!((ok(&exported)["bytes"].as_u64(), exported["parameters"].as_u64()), (Some(605), Some(147)));
    assert_eq!(exported["weights_hex"], hex(WEIGHTS));
    assert_eq!(exported["sha256"], hex(&Sha256::digest(WEIGHTS)[..]));
    let listed = sis.run_json("ls /agents").unwrap();
    assert_eq!(ok(&listed)["entries"][0]["size"], 605);

    assert_eq!(
        installs(&mut sis),
        triples(&[
            ("memory-agent@1.0.0", "console", "not-loaded"),
            ("-", "console", "unknown-model"),
            ("shakespeare-lm@1.0.0", "console", "not-an-agent-network"),
            ("memory-agent@1.0.0", "console", "ok"),
        ])
    );
    let compliance = sis.run_json("llmctl compliance").unwrap();
    assert_eq!((ok(&compliance)["compliant"].as_bool(), compliance["loaded_models"].as_u64()), (Some(true), Some(2)));
    // Unloading the model leaves the agent its weights, still verified.
    ok(&sis.run_json("llmctl unload memory-agent").unwrap());
    assert_eq!(ok(&sis.run_json("llmctl compliance").unwrap())["compliant"], true);

    // An untrained agent runs weights nothing signed: a violation, and status no longer names a model.
    ok(&sis.run_json("neuralctl reset --seed 3").unwrap());
    let compliance = sis.run_json("llmctl compliance").unwrap();
    assert_eq!(error_code(&compliance), "non-compliant");
    assert_eq!(
        compliance["violations"],
        serde_json::json!([{
            "kind": "agent-unsigned",
            "code": "agent-unsigned",
            "origin": "untrained (neuralctl reset, seed 3)",
            "message": "the agent runs weights no signed model vouches for (untrained (neuralctl reset, seed 3))"
        }])
    );
    assert_eq!(ok(&sis.run_json("neuralctl status").unwrap())["model"], Value::Null);
    let verified = sis.run_json("llmctl audit verify").unwrap();
    assert_eq!(ok(&verified)["verified"], true);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn signed_agent_networks_of_another_shape_or_architecture_are_refused_and_change_nothing() {
    let (metadata, weights) = verified();
    let test_seed: [u8; 32] = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/keys/sis-test.key"))
        .unwrap()
        .try_into()
        .unwrap();
    let sign = |name: &str, input: u32, weights: &[u8]| {
        let metadata = Metadata { name: name.into(), input_shape: vec![input], ..metadata.clone() };
        artifact::encode(&metadata, weights, &test_seed).unwrap()
    };
    let wider = NetworkWeights { sizes: vec![5, 32, 3], parameters: vec![0.25; 5 * 32 + 32 + 32 * 3 + 3] };
    let artifacts = [
        ("four-inputs", sign("four-inputs", 4, &weights)),
        ("wider", sign("wider", 5, &wider.encode().unwrap())),
        ("short", sign("short", 5, &weights[..weights.len() - 4])),
    ];
    let disk = ScratchDisk::create(DEFAULT_DISK_BYTES).unwrap();
    for (index, (_, bytes)) in artifacts.iter().enumerate() {
        disk.write_sectors(2048 * (index as u64 + 1), bytes).unwrap();
    }
    let mut sis = Sis::boot(&QemuConfig::new().disk_image(disk.path())).unwrap();
    for (index, (name, bytes)) in artifacts.iter().enumerate() {
        let registered = sis.run_json(&format!("llmctl register disk:{}:{}", 2048 * (index + 1), bytes.len())).unwrap();
        assert_eq!(ok(&registered)["name"], *name);
        ok(&sis.run_json(&format!("llmctl load {name}")).unwrap());
    }
    let info = sis.run_json("llmctl info wider").unwrap();
    assert_eq!(ok(&info)["network"], serde_json::json!({ "layers": [5, 32, 3], "parameters": 291 }));
    let info = sis.run_json("llmctl info four-inputs").unwrap();
    assert_eq!(ok(&info)["network"]["error"]["code"], "shape-mismatch");

    ok(&sis.run_json("llmctl register builtin:memory-agent").unwrap());
    ok(&sis.run_json("llmctl load memory-agent").unwrap());
    ok(&sis.run_json("neuralctl install memory-agent").unwrap());
    let before = guest_q_values(&mut sis);
    for (name, code, message) in [
        ("four-inputs", "shape-mismatch", "four-inputs@1.0.0: the artifact's input shape is [4]; the network's is [5]"),
        (
            "wider",
            "architecture-mismatch",
            "wider@1.0.0: the weights are a [5, 32, 3] network; the agent is [5, 16, 3]",
        ),
        ("short", "weights-truncated", "short@1.0.0: the weights are 601 bytes; their header needs 605"),
    ] {
        let refused = sis.run_json(&format!("neuralctl install {name}")).unwrap();
        assert_eq!((error_code(&refused), refused["error"]["message"].as_str()), (code, Some(message)));
    }
    let status = sis.run_json("neuralctl status").unwrap();
    assert_eq!(ok(&status)["model"]["name"], "memory-agent", "the installed agent stays");
    assert_eq!(guest_q_values(&mut sis), before);
    assert_eq!(
        installs(&mut sis),
        triples(&[
            ("memory-agent@1.0.0", "console", "ok"),
            ("four-inputs@1.0.0", "console", "shape-mismatch"),
            ("wider@1.0.0", "console", "architecture-mismatch"),
            ("short@1.0.0", "console", "weights-truncated"),
        ])
    );
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn the_kernels_training_gives_the_committed_weights_and_report() {
    let mut sis = Sis::boot(&QemuConfig::new()).unwrap();
    let trained = sis.run_json("stresstest learning --episodes 20 --seed 1").unwrap();
    let report: Value = serde_json::from_slice(REPORT).unwrap();
    assert_eq!(trained["learning"], report, "the guest's report is the committed one");
    let exported = sis.run_json("neuralctl export /agents/trained.bin").unwrap();
    assert_eq!(ok(&exported)["weights_hex"], hex(WEIGHTS), "the guest trains the committed weights, bit for bit");
    let compliance = sis.run_json("llmctl compliance").unwrap();
    assert_eq!(error_code(&compliance), "non-compliant");
    assert_eq!(
        compliance["violations"][0]["origin"],
        "trained by stresstest learning (20 episodes, seed 1, noise 0.000)"
    );
}
