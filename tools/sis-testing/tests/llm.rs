//! QEMU tests of `llmctl`: the signed model in the image, generation equal to the host's, refusals audited,
//! budgets cut and refuse, rate limits carry retry-after, the audit chain verifies, compliance is empty.

use serde_json::Value;
use sis_governance::artifact;
use sis_governance::keys::TrustedKeys;
use sis_testing::web::{Request, WebClient};
use sis_testing::{free_local_port, hex, host_random_bytes, QemuConfig, ScratchDisk, Sis, DEFAULT_DISK_BYTES};

const ARTIFACT: &[u8] = include_bytes!("../../../models/shakespeare-lm.sismodel");
const TEST_KEY: &str = include_str!("../../../models/keys/sis-test.pub");

fn boot() -> Sis {
    Sis::boot(&QemuConfig::new()).unwrap()
}

/// What the host's reference generates from the shipped artifact.
fn host_generate(prompt: &str, max_tokens: usize, temperature: f32, seed: u64) -> String {
    let mut keys = TrustedKeys::new();
    keys.add_hex(TEST_KEY).unwrap();
    let verified = artifact::decode(ARTIFACT, &keys).unwrap();
    let model = sis_lm::Model::from_bytes(verified.weights).unwrap();
    String::from_utf8(sis_lm::generate(&model, prompt.as_bytes(), max_tokens, temperature, seed).unwrap()).unwrap()
}

fn ok(json: &Value) -> &Value {
    assert_eq!(json["ok"], true, "{json}");
    json
}

fn error_code(json: &Value) -> &str {
    assert_eq!(json["ok"], false, "{json}");
    json["error"]["code"].as_str().unwrap()
}

fn actions(sis: &mut Sis) -> Vec<(String, String)> {
    let audit = sis.run_json("llmctl audit --json").unwrap();
    ok(&audit)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let outcome = match entry["outcome"]["status"].as_str() {
                Some("ok") => String::from("ok"),
                _ => entry["outcome"]["code"].as_str().unwrap().to_string(),
            };
            (entry["action"].as_str().unwrap().to_string(), outcome)
        })
        .collect()
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn the_builtin_model_generates_exactly_the_hosts_bytes() {
    let mut sis = boot();
    let registered = sis.run_json("llmctl register builtin --json").unwrap();
    assert_eq!(ok(&registered)["name"], "shakespeare-lm");
    assert_eq!(registered["version"], "1.0.0");
    assert_eq!(registered["artifact_bytes"], ARTIFACT.len() as u64);
    ok(&sis.run_json("llmctl load shakespeare-lm --json").unwrap());
    for (prompt, temperature, seed, tokens) in
        [("ROMEO:", "0.8", 7u64, 200usize), ("To be, or not", "0", 1, 64), ("KING", "1.5", 42, 100)]
    {
        let line = format!("llmctl infer shakespeare-lm \"{prompt}\" --max-tokens {tokens} --temperature {temperature} --seed {seed} --json");
        let reply = sis.run_json(&line).unwrap();
        let expected = host_generate(prompt, tokens, temperature.parse().unwrap(), seed);
        assert_eq!(ok(&reply)["text"], expected, "{prompt:?} T={temperature} seed {seed}");
        assert_eq!(
            (reply["tokens"].as_u64(), reply["cut"].as_bool(), reply["seed"].as_u64()),
            (Some(tokens as u64), Some(false), Some(seed))
        );
        assert_eq!(reply["model"], "shakespeare-lm@1.0.0");
    }
    let shown = sis.run_json("llmctl budget show --principal console --json").unwrap();
    let console = &ok(&shown)["principals"][0];
    assert_eq!(console["window_used_tokens"], 364);
    assert_eq!(console["remaining_tokens"], 10_000 - 364);
    assert_eq!(console["counters"]["tokens_used"], 364);
    let verified = sis.run_json("llmctl audit verify --json").unwrap();
    assert_eq!((ok(&verified)["verified"].as_bool(), verified["entries"].as_u64()), (Some(true), Some(8)));
    let compliance = sis.run_json("llmctl compliance --json").unwrap();
    assert_eq!(
        (ok(&compliance)["compliant"].as_bool(), compliance["violations"].as_array().map(Vec::len)),
        (Some(true), Some(0))
    );
    assert_eq!(compliance["loaded_models"], 1);
    // A budget lowered below what this window used is a violation until the window ends.
    ok(&sis.run_json("llmctl budget set 100 --json").unwrap());
    let compliance = sis.run_json("llmctl compliance --json").unwrap();
    assert_eq!(error_code(&compliance), "non-compliant");
    assert_eq!(
        compliance["violations"],
        serde_json::json!([{
            "kind": "budget-overdrawn",
            "code": "budget-overdrawn",
            "principal": "console",
            "used_tokens": 364,
            "budget_tokens": 100,
            "message": "console has 364 tokens charged to this window; its budget is 100"
        }])
    );
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(action, outcome)| (action.to_string(), outcome.to_string())).collect()
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn refused_models_leave_nothing_but_their_audit_entry() {
    // An untrusted signer: booted trusting another key, the image's artifact is refused.
    let other_key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let mut sis = Sis::boot(&QemuConfig::new().bootargs(format!("sis.trust={other_key}"))).unwrap();
    assert_eq!(error_code(&sis.run_json("llmctl register builtin --json").unwrap()), "unknown-key");
    assert_eq!(ok(&sis.run_json("llmctl list --json").unwrap())["count"], 0);
    assert_eq!(actions(&mut sis), pairs(&[("register", "unknown-key")]));
    // Trusting the test key makes the same bytes acceptable; registering them again is refused.
    ok(&sis.run_json(&format!("llmctl trust {} --json", TEST_KEY.trim())).unwrap());
    ok(&sis.run_json("llmctl register builtin --json").unwrap());
    assert_eq!(error_code(&sis.run_json("llmctl register builtin --json").unwrap()), "version-exists");
    assert_eq!(error_code(&sis.run_json("llmctl infer shakespeare-lm \"a\" --json").unwrap()), "not-loaded");
    assert_eq!(error_code(&sis.run_json("llmctl unload shakespeare-lm --json").unwrap()), "not-loaded");
    assert_eq!(ok(&sis.run_json("llmctl list --json").unwrap())["count"], 1);
    assert_eq!(
        actions(&mut sis),
        pairs(&[
            ("register", "unknown-key"),
            ("trust-key", "ok"),
            ("register", "ok"),
            ("register", "version-exists"),
            ("infer", "not-loaded"),
            ("unload", "not-loaded"),
        ])
    );
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn size_limits_budgets_and_rate_limits_are_enforced_and_audited() {
    let mut sis = boot();
    // Bad settings change nothing.
    assert_eq!(error_code(&sis.run_json("llmctl budget set 0 --json").unwrap()), "invalid-setting");
    assert_eq!(error_code(&sis.run_json("llmctl ratelimit set 0 --json").unwrap()), "invalid-setting");
    let too_big = sis.run_json("llmctl budget set 18446744073709551616 --json").unwrap();
    assert_eq!(error_code(&too_big), "out-of-range");
    let temperature = sis.run_json("llmctl infer shakespeare-lm \"a\" --temperature 11 --json").unwrap();
    assert_eq!(error_code(&temperature), "invalid-value");
    let version = sis.run_json("llmctl info shakespeare-lm@1.2 --json").unwrap();
    assert_eq!(error_code(&version), "invalid-value");
    let absurd = sis.run_json("llmctl load shakespeare-lm@1000000.0.0 --json").unwrap();
    assert_eq!(error_code(&absurd), "invalid-value");
    assert_eq!(actions(&mut sis), pairs(&[("set-budget", "invalid-setting"), ("set-rate", "invalid-setting")]));
    let shown = sis.run_json("llmctl budget show --json").unwrap();
    let console = &ok(&shown)["principals"][0];
    assert_eq!(console["principal"], "console");
    assert_eq!(
        (console["limits"]["budget_tokens"].as_u64(), console["limits"]["rate_per_second"].as_u64()),
        (Some(10_000), Some(10))
    );

    // Over the size limit: refused, nothing registered.
    ok(&sis.run_json("llmctl sizelimit 100000 --json").unwrap());
    assert_eq!(error_code(&sis.run_json("llmctl register builtin --json").unwrap()), "model-too-large");
    assert_eq!(ok(&sis.run_json("llmctl list --json").unwrap())["count"], 0);
    ok(&sis.run_json("llmctl sizelimit 1048576 --json").unwrap());
    ok(&sis.run_json("llmctl register builtin --json").unwrap());
    ok(&sis.run_json("llmctl load shakespeare-lm@1.0.0 --json").unwrap());

    // Budget 100: 60, then cut to the 40 left, then refused with 0 left.
    ok(&sis.run_json("llmctl budget set 100 --json").unwrap());
    let infer = |sis: &mut Sis, tokens: u64| {
        sis.run_json(&format!("llmctl infer shakespeare-lm \"ROMEO:\" --max-tokens {tokens} --temperature 0 --json"))
            .unwrap()
    };
    let first = infer(&mut sis, 60);
    assert_eq!(
        (ok(&first)["tokens"].as_u64(), first["cut"].as_bool(), first["remaining_tokens"].as_u64()),
        (Some(60), Some(false), Some(40))
    );
    let second = infer(&mut sis, 60);
    assert_eq!(
        (ok(&second)["tokens"].as_u64(), second["cut"].as_bool(), second["remaining_tokens"].as_u64()),
        (Some(40), Some(true), Some(0))
    );
    assert_eq!(second["text"], host_generate("ROMEO:", 40, 0.0, 0));
    let third = infer(&mut sis, 1);
    assert_eq!(error_code(&third), "budget-exhausted");
    assert_eq!(third["remaining_tokens"], 0);
    assert!(third["window_reset_ns"].as_u64().unwrap() > 0);

    // Rate 1 per second, burst 1: the next request passes, the one after is refused with retry-after.
    ok(&sis.run_json("llmctl budget set 1000 --json").unwrap());
    ok(&sis.run_json("llmctl ratelimit set 1 --burst 1 --json").unwrap());
    ok(&infer(&mut sis, 5));
    let limited = infer(&mut sis, 5);
    assert_eq!(error_code(&limited), "rate-limited");
    let retry_after_ns = limited["retry_after_ns"].as_u64().unwrap();
    assert!(retry_after_ns > 0 && retry_after_ns <= 1_000_000_000, "{limited}");

    let shown = sis.run_json("llmctl ratelimit show --principal console --json").unwrap();
    let counters = &ok(&shown)["principals"][0]["counters"];
    assert_eq!(
        (
            counters["requests"].as_u64(),
            counters["allowed"].as_u64(),
            counters["cut"].as_u64(),
            counters["refused_rate"].as_u64(),
            counters["refused_budget"].as_u64(),
            counters["tokens_used"].as_u64()
        ),
        (Some(5), Some(3), Some(1), Some(1), Some(1), Some(105))
    );
    let infers = sis.run_json("llmctl audit --action infer --json").unwrap();
    assert_eq!(ok(&infers)["matched"], 5);
    let last_two = sis.run_json("llmctl audit --limit 2 --json").unwrap();
    let outcomes: Vec<&Value> =
        ok(&last_two)["entries"].as_array().unwrap().iter().map(|entry| &entry["outcome"]["code"]).collect();
    assert_eq!(outcomes, [&Value::Null, &Value::from("rate-limited")]);
    let verified = sis.run_json("llmctl audit verify --json").unwrap();
    assert_eq!(ok(&verified)["verified"], true);
    let compliance = sis.run_json("llmctl compliance --json").unwrap();
    assert_eq!(ok(&compliance)["violations"], Value::Array(Vec::new()));
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn each_web_token_is_its_own_principal() {
    let admin = hex(&host_random_bytes().unwrap());
    let config = QemuConfig::new().web_server(free_local_port().unwrap(), Some(admin));
    let client = WebClient::new(config.forwarded_address().unwrap());
    let mut sis = Sis::boot(&config).unwrap();
    ok(&sis.run_json("llmctl register builtin --json").unwrap());
    ok(&sis.run_json("llmctl load shakespeare-lm --json").unwrap());
    let created = sis.run_json("webctl token create --role admin --json").unwrap();
    let (id, secret) = (ok(&created)["token"]["id"].as_u64().unwrap(), created["secret"].as_str().unwrap().to_string());
    ok(&sis.run_json(&format!("llmctl budget set 50 --principal token:{id} --json")).unwrap());

    let line = "llmctl infer shakespeare-lm \"ROMEO:\" --max-tokens 80 --temperature 0";
    let transfer = client.send(&Request::command(line).bearer(&secret)).unwrap();
    let reply = transfer.json().unwrap();
    assert_eq!(transfer.status, 200, "{reply}");
    assert_eq!(ok(&reply)["principal"], format!("token:{id}"));
    assert_eq!(
        (reply["tokens"].as_u64(), reply["cut"].as_bool(), reply["remaining_tokens"].as_u64()),
        (Some(50), Some(true), Some(0))
    );
    assert_eq!(reply["text"], host_generate("ROMEO:", 50, 0.0, 0));

    // The console's budget is untouched; the token's is spent; the audit names the token.
    let console = sis.run_json("llmctl budget show --principal console --json").unwrap();
    assert_eq!(ok(&console)["principals"][0]["window_used_tokens"], 0);
    let token = sis.run_json(&format!("llmctl budget show --principal token:{id} --json")).unwrap();
    assert_eq!(ok(&token)["principals"][0]["window_used_tokens"], 50);
    let audit = sis.run_json(&format!("llmctl audit --principal token:{id} --json")).unwrap();
    let entries: Vec<(&str, &str)> = ok(&audit)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| (entry["action"].as_str().unwrap(), entry["outcome"]["status"].as_str().unwrap()))
        .collect();
    assert_eq!(entries, [("infer", "ok"), ("complete", "ok")]);
    let audit = sis.run_json("llmctl audit --principal console --json").unwrap();
    assert_eq!(ok(&audit)["matched"], 3, "register, load, set-budget");
}

/// Sectors of the disk's audit region (kernel/src/governance/persist.rs).
const AUDIT_REGION_SECTORS: u64 = 4096;

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn the_audit_log_on_the_disk_is_read_back_after_a_reboot() {
    let disk = ScratchDisk::create(DEFAULT_DISK_BYTES).unwrap();
    let config = QemuConfig::new().disk_image(disk.path());
    let expected = pairs(&[
        ("register", "ok"),
        ("load", "ok"),
        ("infer", "ok"),
        ("complete", "ok"),
        ("set-budget", "invalid-setting"),
    ]);
    let head_hash = {
        let mut sis = Sis::boot(&config).unwrap();
        ok(&sis.run_json("llmctl register builtin --json").unwrap());
        ok(&sis.run_json("llmctl load shakespeare-lm --json").unwrap());
        ok(&sis.run_json("llmctl infer shakespeare-lm \"KING\" --max-tokens 10 --temperature 0 --json").unwrap());
        assert_eq!(error_code(&sis.run_json("llmctl budget set 0 --json").unwrap()), "invalid-setting");
        let audit = sis.run_json("llmctl audit --json").unwrap();
        let persistence = &ok(&audit)["persistence"];
        assert_eq!(persistence["state"], "persisting", "{persistence}");
        assert_eq!(persistence["start_lba"], DEFAULT_DISK_BYTES / 512 - AUDIT_REGION_SECTORS);
        assert_eq!(
            (persistence["recovered_entries"].as_u64(), persistence["persisted_sequence"].as_u64()),
            (Some(0), Some(5))
        );
        assert_eq!(actions(&mut sis), expected);
        let verified = sis.run_json("llmctl audit verify --json").unwrap();
        ok(&verified)["head_hash"].as_str().unwrap().to_string()
    };

    // The host reads the same log from the image.
    let region = disk.read_sectors(DEFAULT_DISK_BYTES / 512 - AUDIT_REGION_SECTORS, AUDIT_REGION_SECTORS).unwrap();
    let decoded = sis_governance::audit::decode(&region, 1024).unwrap();
    assert_eq!((decoded.records, decoded.torn_tail), (5, None));
    assert_eq!(hex(&decoded.log.head_hash()), head_hash);

    let mut sis = Sis::boot(&config).unwrap();
    let audit = sis.run_json("llmctl audit --json").unwrap();
    assert_eq!(ok(&audit)["persistence"]["recovered_entries"], 5);
    assert_eq!(actions(&mut sis), expected);
    let verified = sis.run_json("llmctl audit verify --json").unwrap();
    assert_eq!(
        (ok(&verified)["entries"].as_u64(), verified["head_hash"].as_str()),
        (Some(5), Some(head_hash.as_str()))
    );
    // The registry is not kept across a reboot; the chain goes on from the disk's last entry.
    assert_eq!(ok(&sis.run_json("llmctl list --json").unwrap())["count"], 0);
    ok(&sis.run_json("llmctl register builtin --json").unwrap());
    let last = sis.run_json("llmctl audit --limit 1 --json").unwrap();
    assert_eq!(ok(&last)["entries"][0]["sequence"], 5);
    assert_eq!(ok(&sis.run_json("llmctl audit verify --json").unwrap())["entries"], 6);
    drop(sis);
    let start_lba = DEFAULT_DISK_BYTES / 512 - AUDIT_REGION_SECTORS;
    let region = disk.read_sectors(start_lba, AUDIT_REGION_SECTORS).unwrap();
    assert_eq!(sis_governance::audit::decode(&region, 1024).unwrap().records, 6);

    // A changed entry on the disk is detected at the next boot: the region is left as it is, the log kept in memory.
    let first_length = u32::from_le_bytes(region[52..56].try_into().unwrap()) as usize;
    let first_hash_byte = 52 + 4 + first_length;
    let mut sector = region[first_hash_byte / 512 * 512..][..512].to_vec();
    sector[first_hash_byte % 512] ^= 1;
    disk.write_sectors(start_lba + (first_hash_byte / 512) as u64, &sector).unwrap();
    let mut sis = Sis::boot(&config).unwrap();
    let audit = sis.run_json("llmctl audit --json").unwrap();
    let persistence = &ok(&audit)["persistence"];
    assert_eq!(
        (persistence["state"].as_str(), persistence["reason"][0].as_str()),
        (Some("refused"), Some("audit-hash-mismatch"))
    );
    assert_eq!(audit["total"], 0);
    drop(sis);
    let after = disk.read_sectors(start_lba, AUDIT_REGION_SECTORS).unwrap();
    assert_eq!(after[first_hash_byte], region[first_hash_byte] ^ 1, "the evidence is left untouched");
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn artifacts_on_the_disk_tampered_or_unsigned_are_refused_and_a_new_version_registers() {
    let mut keys = TrustedKeys::new();
    keys.add_hex(TEST_KEY).unwrap();
    let shipped = artifact::decode(ARTIFACT, &keys).unwrap();
    let test_seed: [u8; 32] = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/keys/sis-test.key"))
        .unwrap()
        .try_into()
        .unwrap();
    let mut metadata = shipped.metadata.clone();
    metadata.version = artifact::Version::new(1, 1, 0).unwrap();
    let newer = artifact::encode(&metadata, shipped.weights, &test_seed).unwrap();
    let unsigned = artifact::encode(&metadata, shipped.weights, &[7u8; 32]).unwrap();
    let mut tampered = newer.clone();
    tampered[newer.len() / 2] ^= 0x10;
    let disk = ScratchDisk::create(DEFAULT_DISK_BYTES).unwrap();
    let (newer_lba, unsigned_lba, tampered_lba) = (2048u64, 4096u64, 6144u64);
    disk.write_sectors(newer_lba, &newer).unwrap();
    disk.write_sectors(unsigned_lba, &unsigned).unwrap();
    disk.write_sectors(tampered_lba, &tampered).unwrap();

    let mut sis = Sis::boot(&QemuConfig::new().disk_image(disk.path())).unwrap();
    ok(&sis.run_json("llmctl register builtin --json").unwrap());
    let line = |lba: u64, bytes: usize| format!("llmctl register disk:{lba}:{bytes} --json");
    assert_eq!(error_code(&sis.run_json(&line(tampered_lba, tampered.len())).unwrap()), "digest-mismatch");
    assert_eq!(error_code(&sis.run_json(&line(unsigned_lba, unsigned.len())).unwrap()), "unknown-key");
    assert_eq!(error_code(&sis.run_json(&line(newer_lba, newer.len() - 1)).unwrap()), "truncated");
    assert_eq!(error_code(&sis.run_json("llmctl register disk:2048:0 --json").unwrap()), "invalid-value");
    assert_eq!(error_code(&sis.run_json("llmctl register disk:131070:4096 --json").unwrap()), "out-of-range");
    let versions = sis.run_json("llmctl versions shakespeare-lm --json").unwrap();
    assert_eq!(ok(&versions)["versions"], serde_json::json!(["1.0.0"]));
    let registered = sis.run_json(&line(newer_lba, newer.len())).unwrap();
    assert_eq!(
        (ok(&registered)["version"].as_str(), registered["source"].as_str()),
        (Some("1.1.0"), Some("disk:2048:200262"))
    );
    let versions = sis.run_json("llmctl versions shakespeare-lm --json").unwrap();
    assert_eq!(ok(&versions)["versions"], serde_json::json!(["1.0.0", "1.1.0"]));
    // The latest version is the default; the older one is still addressable.
    assert_eq!(ok(&sis.run_json("llmctl load shakespeare-lm --json").unwrap())["version"], "1.1.0");
    assert_eq!(ok(&sis.run_json("llmctl info shakespeare-lm@1.0.0 --json").unwrap())["loaded"], false);
    assert_eq!(
        actions(&mut sis),
        pairs(&[
            ("register", "ok"),
            ("register", "digest-mismatch"),
            ("register", "unknown-key"),
            ("register", "truncated"),
            ("register", "ok"),
            ("load", "ok"),
        ])
    );
}
