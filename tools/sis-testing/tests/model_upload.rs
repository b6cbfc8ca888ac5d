//! QEMU test of `POST /api/models` with curl: the shipped artifact uploaded as raw bytes is registered exactly as
//! `llmctl register` registers it, under the principal `token:ID` of the token that sent it; a second upload, a
//! copy with one byte flipped and an artifact over the token's size limit are refused by the governor with their
//! codes and statuses, each leaving only its audit entry; no token, a viewer's token and a body one byte over the
//! route's limit are refused before the body is read and leave nothing at all.

mod common;

use common::{error_code, number, ok};
use serde_json::{json, Value};
use sis_governance::artifact;
use sis_governance::keys::TrustedKeys;
use sis_testing::web::{Request, WebClient};
use sis_testing::{free_local_port, hex, host_random_bytes, QemuConfig, Sis};

const ARTIFACT: &[u8] = include_bytes!("../../../models/shakespeare-lm.sismodel");
const TEST_KEY: &str = include_str!("../../../models/keys/sis-test.pub");

/// Sends `request` with curl; returns the status and the JSON body.
fn send(client: &WebClient, request: &Request) -> (u16, Value) {
    let transfer = client.send(request).unwrap_or_else(|error| panic!("{} {}: {error}", request.method, request.path));
    let body =
        transfer.json().unwrap_or_else(|error| panic!("{} {}: {error} ({transfer:?})", request.method, request.path));
    (transfer.status, body)
}

/// The reply of `line` through `POST /api/command`, which must succeed.
fn command(client: &WebClient, token: &str, line: &str) -> Value {
    let (status, reply) = send(client, &Request::command(line).bearer(token));
    assert_eq!((status, &reply["ok"]), (200, &json!(true)), "{line}: {reply}");
    reply
}

/// The status and error code of a refused upload.
fn refusal(answer: &(u16, Value)) -> (u16, &str) {
    (answer.0, answer.1["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code: {}", answer.1)))
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn an_uploaded_artifact_is_registered_under_its_token_and_every_refusal_is_exact() {
    // What the artifact is, read on the host.
    let mut keys = TrustedKeys::new();
    keys.add_hex(TEST_KEY.trim()).unwrap();
    let verified = artifact::decode(ARTIFACT, &keys).unwrap();
    let digest = hex(&verified.digest);
    assert_eq!(digest, hex(&ARTIFACT[ARTIFACT.len() - 104..ARTIFACT.len() - 72]), "the digest in the trailer");
    let (name, version) = (verified.metadata.name.clone(), verified.metadata.version.to_string());
    assert_eq!((name.as_str(), version.as_str()), ("shakespeare-lm", "1.0.0"));

    // The files curl sends: the artifact, a copy with one byte of its weights flipped, a body exactly at the
    // upload limit and one byte over it.
    let limit = sis_web::Limits::default().max_upload_bytes;
    assert_eq!(limit, 2 * 1024 * 1024);
    let files = tempfile::tempdir().unwrap();
    let path = |file: &str| files.path().join(file);
    std::fs::write(path("shipped.sismodel"), ARTIFACT).unwrap();
    let mut flipped = ARTIFACT.to_vec();
    flipped[verified.weights_range.start + verified.weights.len() / 2] ^= 0x01;
    std::fs::write(path("flipped.sismodel"), &flipped).unwrap();
    std::fs::write(path("at-limit.bin"), vec![0x5a; limit]).unwrap();
    std::fs::write(path("over-limit.bin"), vec![0x5a; limit + 1]).unwrap();

    let boot_token = hex(&host_random_bytes().unwrap());
    let config = QemuConfig::new().web_server(free_local_port().unwrap(), Some(boot_token.clone()));
    let client = WebClient::new(config.forwarded_address().unwrap());
    let mut sis = Sis::boot(&config).unwrap();
    let created = ok(&mut sis, "webctl token create --role admin --json");
    let (id, admin) = (number(&created, "/token/id"), created["secret"].as_str().unwrap().to_string());
    let viewer = ok(&mut sis, "webctl token create --role viewer --json")["secret"].as_str().unwrap().to_string();
    let principal = format!("token:{id}");
    let upload = |file: &str, token: Option<&str>| {
        let request = Request::model_upload(&path(file));
        send(
            &client,
            &match token {
                Some(token) => request.bearer(token),
                None => request,
            },
        )
    };

    // Registered: 201 with the model as llmctl register prints it, registered by the token.
    let (status, registered) = upload("shipped.sismodel", Some(&admin));
    assert_eq!(status, 201, "{registered}");
    assert_eq!(
        (
            registered["name"].as_str(),
            registered["version"].as_str(),
            registered["digest"].as_str(),
            registered["artifact_bytes"].as_u64(),
            registered["key_id"].as_str(),
        ),
        (
            Some(name.as_str()),
            Some(version.as_str()),
            Some(digest.as_str()),
            Some(ARTIFACT.len() as u64),
            Some(verified.key_id.to_string().as_str())
        )
    );
    assert_eq!(
        (registered["registered_by"].as_str(), registered["source"].as_str(), registered["schema_version"].as_u64()),
        (Some(principal.as_str()), Some("upload"), Some(1))
    );
    assert_eq!(registered["weights_bytes"], verified.weights.len() as u64);
    assert_eq!(registered["loaded"], false);
    let list = command(&client, &boot_token, "llmctl list");
    assert_eq!(list["count"], 1, "{list}");
    let model = &list["models"][0];
    assert_eq!(
        (model["name"].as_str(), model["version"].as_str(), model["digest"].as_str(), model["registered_by"].as_str()),
        (Some(name.as_str()), Some(version.as_str()), Some(digest.as_str()), Some(principal.as_str()))
    );
    // The same bytes the console registers: the image's copy is now a duplicate.
    assert_eq!(error_code(&mut sis, "llmctl register builtin --json"), "version-exists");

    // Refused by the governor, each with its audit entry and nothing registered.
    assert_eq!(refusal(&upload("shipped.sismodel", Some(&admin))), (409, "version-exists"));
    assert_eq!(refusal(&upload("flipped.sismodel", Some(&admin))), (422, "digest-mismatch"));
    // A body exactly at the route's limit is read whole and reaches the governor: over the token's 1 MiB model
    // size limit.
    assert_eq!(refusal(&upload("at-limit.bin", Some(&admin))), (413, "model-too-large"));
    // Refused before the body is read, leaving no audit entry.
    assert_eq!(refusal(&upload("shipped.sismodel", None)), (401, "missing-token"));
    assert_eq!(refusal(&upload("shipped.sismodel", Some(&viewer))), (403, "permission-denied"));
    assert_eq!(refusal(&upload("over-limit.bin", Some(&admin))), (413, "body-too-large"));
    let wrong_type = Request::new("POST", "/api/models")
        .body_file(&path("shipped.sismodel"))
        .header("Content-Type: application/json")
        .bearer(&admin);
    assert_eq!(refusal(&send(&client, &wrong_type)), (415, "unsupported-media-type"));

    let list = command(&client, &boot_token, "llmctl list");
    assert_eq!((list["count"].as_u64(), list["held_bytes"].as_u64()), (Some(1), Some(ARTIFACT.len() as u64)));
    let audit = command(&client, &boot_token, &format!("llmctl audit --principal {principal}"));
    let entries: Vec<Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            json!([entry["action"], entry["principal"], entry["model"], entry["outcome"], entry["figures"]["bytes"]])
        })
        .collect();
    let model_id = json!({ "name": name, "version": version });
    let refused = |code: &str| json!({ "status": "refused", "code": code });
    let size = ARTIFACT.len();
    assert_eq!(
        entries,
        [
            json!(["register", principal, model_id, { "status": "ok" }, size]),
            json!(["register", principal, null, refused("version-exists"), size]),
            json!(["register", principal, null, refused("digest-mismatch"), size]),
            json!(["register", principal, null, refused("model-too-large"), limit]),
        ],
        "{audit}"
    );
    // Every register entry there is: the four uploads and the console's duplicate.
    let registers = command(&client, &boot_token, "llmctl audit --action register");
    assert_eq!(registers["matched"], 5, "{registers}");
    assert_eq!(command(&client, &boot_token, "llmctl audit verify")["verified"], true);
    let status = ok(&mut sis, "webctl status --json");
    assert_eq!(
        (
            number(&status, "/app/protocol_errors/body_too_large"),
            number(&status, "/app/auth/unauthorized"),
            number(&status, "/app/auth/forbidden"),
        ),
        (1, 1, 1),
        "{status}"
    );
}
