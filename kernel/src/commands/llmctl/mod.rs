//! `llmctl`: signed models, their registry, generation under per-principal budgets and rate limits, the audit log
//! and compliance (the state: `crate::governance`; the rules: crates/governance; fields: docs/governance.md).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{json, Value};
use sis_ai::{NetworkWeights, WeightsError};
use sis_governance::artifact::{Kind, ModelRef};
use sis_governance::hex;
use sis_governance::policy::PolicyError;
use sis_governance::registry::ModelInfo;
use sis_governance::{GovernanceError, Principal};
use sis_otel::{CommandOutcome, KeyValue};
use sis_platform::time;
use sis_shell::{ArgSpec, ArgValue, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::blk::disk;
use super::files::{shell_error, FILES};
use super::Kernel;
use crate::format;
use crate::governance::{self, InferRequest, LlmError, BUILTIN_ARTIFACTS};

mod audit;
mod inspect;
mod policy;

/// `register builtin`: the image's first artifact (the language model).
const BUILTIN: &str = "builtin";
/// `register builtin:NAME`: the image's artifact signed as NAME.
const BUILTIN_PREFIX: &str = "builtin:";
/// `register disk:LBA:BYTES`: an artifact on the virtio-blk disk.
const DISK_PREFIX: &str = "disk:";
/// The largest artifact read from the disk: the registry's largest weights plus room for metadata and trailer.
const MAX_DISK_ARTIFACT_BYTES: u64 = sis_governance::artifact::MAX_WEIGHTS_BYTES + 64 * 1024;
const MODEL: ArgSpec = ArgSpec::positional(
    "model",
    ValueKind::Custom { value_name: "NAME[@VERSION]", parse: parse_model },
    "model name, optionally @MAJOR.MINOR.PATCH",
);
const PRINCIPAL: ArgSpec = ArgSpec::flag(
    "principal",
    ValueKind::Custom { value_name: "console|token:N|agent:N", parse: parse_principal },
    "whose limits (default: the caller)",
);
const TEMPERATURE: ValueKind = ValueKind::Custom { value_name: "T", parse: parse_temperature };
const ACTIONS: &[&str] = &[
    "register",
    "load",
    "unload",
    "infer",
    "complete",
    "set-budget",
    "set-rate",
    "set-model-limit",
    "trust-key",
    "install",
];

/// `llmctl`.
pub static LLMCTL: CommandSpec<Kernel> = CommandSpec {
    name: "llmctl",
    summary: "Signed models: register, load, generate under token budgets and rate limits; audit log, compliance",
    description: "Every operation is checked by the policy and leaves exactly one audit entry, refusals included. Artifacts are verified (SHA-256 digest, Ed25519 signature by a trusted key) before anything is kept. The caller is the principal console on the serial console and in batch mode, token:ID for a web request, agent:ID for a line a WebAssembly agent runs (COMMAND_RUN). Fields and rules: docs/governance.md.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "register",
            summary: "Verify and register a signed artifact: a file of the in-memory filesystem, one of the image's (builtin:shakespeare-lm, builtin:memory-agent; builtin is the first), or disk:LBA:BYTES (the virtio-blk disk)",
            description: "Refused with a reason, and nothing kept but the audit entry: a digest or signature that does not verify, an untrusted key, an artifact over the caller's size limit, a version that exists. The image carries the language model shakespeare-lm and the agent network memory-agent (neuralctl install).",
            args: &[ArgSpec::positional("path", ValueKind::Str, "absolute path, builtin, builtin:NAME, or disk:LBA:BYTES").required()],
            subcommands: &[],
            handler: Some(register),
        },
        CommandSpec { name: "list", summary: "Every registered model and version", description: "", args: &[], subcommands: &[], handler: Some(list) },
        CommandSpec { name: "info", summary: "A model's metadata (the latest version unless @VERSION); for an agent network also its layers and parameter count", description: "", args: &[MODEL.required()], subcommands: &[], handler: Some(info) },
        CommandSpec {
            name: "inspect",
            summary: "A loaded language model's layers, shapes, parameter counts and weight statistics; activations for --prompt",
            description: "The latest loaded version unless @VERSION. Each layer (the embedding table, then the dense layers): kind, inputs, outputs, parameters, and the statistics of its weights and biases (count, min, max, mean, population standard deviation, zeros), computed from the loaded weights. With --prompt, every layer's output statistics for the byte after the prompt and the most likely next bytes. Read only: not charged to a budget, not audited.",
            args: &[MODEL.required(), ArgSpec::flag("prompt", ValueKind::Str, "text whose next byte the activations are for")],
            subcommands: &[],
            handler: Some(inspect::inspect),
        },
        CommandSpec {
            name: "versions",
            summary: "A model's registered versions, ascending",
            description: "",
            args: &[ArgSpec::positional("name", ValueKind::Str, "model name").required()],
            subcommands: &[],
            handler: Some(versions),
        },
        CommandSpec { name: "load", summary: "Load a model (the latest version unless @VERSION)", description: "", args: &[MODEL.required()], subcommands: &[], handler: Some(load) },
        CommandSpec { name: "unload", summary: "Unload a model (the latest loaded version unless @VERSION)", description: "", args: &[MODEL.required()], subcommands: &[], handler: Some(unload) },
        CommandSpec {
            name: "infer",
            summary: "Generate text with a loaded language model, charged to the caller's token budget",
            description: "One token is one generated byte. A request over the remaining budget is cut to it (\"cut\": true); with nothing left it is refused with the remaining budget and the window's reset time. The rate limit refuses with retry_after_ns. The seed defaults to the clock and is always printed. An agent-network model generates nothing: it is refused (not-a-language-model) before any grant; neuralctl install puts it in the learning agent.",
            args: &[
                MODEL.required(),
                ArgSpec::positional("prompt", ValueKind::Str, "the prompt (quote it)").required(),
                ArgSpec::flag("max-tokens", ValueKind::U64 { min: 1, max: sis_lm::MAX_TOKENS as u64 }, "tokens to generate").default("64"),
                ArgSpec::flag("temperature", TEMPERATURE, "0 (greedy) to 10").default("0.8"),
                ArgSpec::flag("seed", ValueKind::U64 { min: 0, max: u64::MAX }, "sampling seed (default: the clock)"),
            ],
            subcommands: &[],
            handler: Some(infer),
        },
        CommandSpec {
            name: "budget",
            summary: "Token budgets per principal",
            description: "",
            args: &[],
            subcommands: &[
                CommandSpec {
                    name: "set",
                    summary: "Set a principal's token budget per window",
                    description: "Tokens and window must be at least 1; the window starts again now.",
                    args: &[
                        ArgSpec::positional("tokens", ValueKind::U64 { min: 0, max: u64::MAX }, "generated tokens per window").required(),
                        ArgSpec::flag("window-ms", ValueKind::U64 { min: 0, max: u64::MAX / 1_000_000 }, "window length, ms (default: unchanged)"),
                        PRINCIPAL,
                    ],
                    subcommands: &[],
                    handler: Some(policy::budget_set),
                },
                CommandSpec { name: "show", summary: "A principal's limits, window and counters (all principals without --principal)", description: "", args: &[PRINCIPAL], subcommands: &[], handler: Some(policy::policy_show) },
            ],
            handler: None,
        },
        CommandSpec {
            name: "ratelimit",
            summary: "Request rate limits (token buckets) per principal",
            description: "",
            args: &[],
            subcommands: &[
                CommandSpec {
                    name: "set",
                    summary: "Set a principal's requests per second and burst",
                    description: "",
                    args: &[
                        ArgSpec::positional("rate", ValueKind::U64 { min: 0, max: u64::MAX }, "requests per second").required(),
                        ArgSpec::flag("burst", ValueKind::U64 { min: 0, max: u64::MAX }, "requests the bucket holds (default: unchanged)"),
                        PRINCIPAL,
                    ],
                    subcommands: &[],
                    handler: Some(policy::ratelimit_set),
                },
                CommandSpec { name: "show", summary: "A principal's limits, window and counters (all principals without --principal)", description: "", args: &[PRINCIPAL], subcommands: &[], handler: Some(policy::policy_show) },
            ],
            handler: None,
        },
        CommandSpec {
            name: "sizelimit",
            summary: "Set a principal's model size limit (bytes of an artifact it may register)",
            description: "",
            args: &[ArgSpec::positional("bytes", ValueKind::U64 { min: 0, max: u64::MAX }, "bytes").required(), PRINCIPAL],
            subcommands: &[],
            handler: Some(policy::sizelimit),
        },
        CommandSpec {
            name: "audit",
            summary: "Query the audit log (oldest first), or verify its hash chain",
            description: "Filters combine; --since is ns since boot; --limit keeps the newest N that match.",
            args: &[
                PRINCIPAL,
                ArgSpec::flag("action", ValueKind::Choice(ACTIONS), "action"),
                ArgSpec::flag("model", ValueKind::Custom { value_name: "NAME[@VERSION]", parse: parse_model }, "model"),
                ArgSpec::flag("since", ValueKind::U64 { min: 0, max: u64::MAX }, "entries at or after this time, ns since boot"),
                ArgSpec::flag("limit", ValueKind::U64 { min: 1, max: 1 << 20 }, "the newest N"),
            ],
            subcommands: &[CommandSpec {
                name: "verify",
                summary: "Recompute the audit log's hash chain",
                description: "",
                args: &[],
                subcommands: &[],
                handler: Some(audit::audit_verify),
            }],
            handler: Some(audit::audit),
        },
        CommandSpec { name: "compliance", summary: "Loaded models verified again, size limits, the audit chain, the learning agent's source, budgets: every violation", description: "An agent whose weights no signed model vouches for (trained by stresstest learning, neuralctl reset or load, a chaos run) is the violation agent-unsigned; one installed by neuralctl install is compliant while its model verifies.", args: &[], subcommands: &[], handler: Some(audit::compliance) },
        CommandSpec {
            name: "trust",
            summary: "Trust a public key (64 hex digits) for model signatures",
            description: "",
            args: &[ArgSpec::positional("key", ValueKind::Str, "Ed25519 public key, 64 hex digits").required()],
            subcommands: &[],
            handler: Some(audit::trust),
        },
    ],
    handler: None,
};

/// A `NAME[@VERSION]` argument (validated here, parsed again by the handler).
pub(crate) fn parse_model(text: &str) -> Result<ArgValue, String> {
    ModelRef::parse(text).map(|_| ArgValue::Str(text.into())).map_err(|error| alloc::format!("{text:?}: {error}"))
}

fn parse_principal(text: &str) -> Result<ArgValue, String> {
    match Principal::parse(text) {
        Some(_) => Ok(ArgValue::Str(text.into())),
        None => Err(alloc::format!("{text:?}: use console, token:N or agent:N")),
    }
}

fn parse_temperature(text: &str) -> Result<ArgValue, String> {
    let value = text.parse::<f32>().map_err(|_| alloc::format!("{text:?} is not a number"))?;
    sis_lm::check_temperature(value)
        .map(|_| ArgValue::Str(text.into()))
        .map_err(|error| alloc::format!("{text:?}: {error}"))
}

fn error(error: LlmError) -> ShellError {
    ShellError::new(error.code(), error.to_string())
}

fn model_arg(invocation: &Invocation<'_>, name: &str) -> Option<ModelRef> {
    invocation.args.str(name).and_then(|text| ModelRef::parse(text).ok())
}

fn required_model(invocation: &Invocation<'_>) -> Result<ModelRef, ShellError> {
    model_arg(invocation, "model").ok_or_else(|| ShellError::new("bad-model", "a model name is required"))
}

fn principal_arg(invocation: &Invocation<'_>) -> Option<Principal> {
    invocation.args.str("principal").and_then(Principal::parse)
}

fn info_json(info: &ModelInfo) -> Value {
    serde_json::to_value(info).unwrap_or(Value::Null)
}

fn info_line(info: &ModelInfo) -> String {
    alloc::format!(
        "{}@{}  {}  {}  key {}  {}",
        info.metadata.name,
        info.metadata.version,
        info.metadata.kind.name(),
        format::bytes(info.artifact_bytes),
        info.key_id,
        if info.loaded { "loaded" } else { "not loaded" }
    )
}

fn register(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let caller = kernel.principal;
    let path = invocation.args.str("path").unwrap_or_default();
    let bytes = if path == BUILTIN {
        BUILTIN_ARTIFACTS[0].1.to_vec()
    } else if let Some(name) = path.strip_prefix(BUILTIN_PREFIX) {
        builtin(name)?.to_vec()
    } else if let Some(location) = path.strip_prefix(DISK_PREFIX) {
        read_disk(location)?
    } else {
        FILES.lock().read(path).map_err(shell_error)?.to_vec()
    };
    register_artifact(caller, &bytes, path)
}

/// The `source` of an artifact uploaded through `POST /api/models`.
pub const UPLOAD_SOURCE: &str = "upload";

/// Verifies and registers `artifact` for `principal`, as `llmctl register` does for every source (the image, a
/// file, the disk, and [`UPLOAD_SOURCE`] for the web door): the model's fields, `source` and `register_ns`, or
/// the governor's refusal (audited; nothing else kept).
pub fn register_artifact(principal: Principal, artifact: &[u8], source: &str) -> Result<Reply, ShellError> {
    let started_ns = time::now_ns();
    let info = governance::register(principal, artifact).map_err(error)?;
    let register_ns = time::now_ns().saturating_sub(started_ns);
    let mut fields = info_json(&info);
    fields["source"] = Value::from(source);
    fields["register_ns"] = Value::from(register_ns);
    Ok(Reply::new(alloc::format!("registered {} from {source}", info_line(&info)), fields))
}

/// The image's artifact signed as `name`.
fn builtin(name: &str) -> Result<&'static [u8], ShellError> {
    let found = BUILTIN_ARTIFACTS.iter().find(|(builtin, _)| *builtin == name).map(|(_, bytes)| *bytes);
    found.ok_or_else(|| {
        let names: Vec<&str> = BUILTIN_ARTIFACTS.iter().map(|(builtin, _)| *builtin).collect();
        ShellError::new(
            "unknown-builtin",
            alloc::format!("the image carries no artifact named {name:?}; it carries {}", names.join(", ")),
        )
    })
}

/// The `BYTES` bytes from sector `LBA` of the disk (`LBA:BYTES`, both decimal).
fn read_disk(location: &str) -> Result<Vec<u8>, ShellError> {
    let bad = || {
        ShellError::new(
            sis_shell::codes::INVALID_VALUE,
            alloc::format!("disk:{location}: use disk:LBA:BYTES, BYTES 1..={MAX_DISK_ARTIFACT_BYTES}"),
        )
    };
    let (lba, bytes) = location.split_once(':').ok_or_else(bad)?;
    let (lba, bytes) = (lba.parse::<u64>().map_err(|_| bad())?, bytes.parse::<u64>().map_err(|_| bad())?);
    if bytes == 0 || bytes > MAX_DISK_ARTIFACT_BYTES {
        return Err(bad());
    }
    let sectors = bytes.div_ceil(sis_blk::SECTOR_SIZE as u64);
    disk::with_disk(|disk| {
        let capacity = sis_blk::BlockDevice::capacity_sectors(&disk.stack);
        if lba.checked_add(sectors).is_none_or(|end| end > capacity) {
            return Err(ShellError::new(
                sis_shell::codes::OUT_OF_RANGE,
                alloc::format!("sectors {lba}..{lba}+{sectors} are past the disk's {capacity}"),
            ));
        }
        let length = (sectors as usize) * sis_blk::SECTOR_SIZE;
        let mut buffer = Vec::new();
        buffer.try_reserve_exact(length).map_err(|_| {
            ShellError::new("out-of-memory", alloc::format!("the heap cannot hold the {bytes}-byte artifact"))
        })?;
        buffer.resize(length, 0);
        sis_blk::BlockDevice::read_sectors(&mut disk.stack, lba, &mut buffer).map_err(disk::shell_error)?;
        buffer.truncate(bytes as usize);
        Ok(buffer)
    })
}

fn list(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let (models, held_bytes) =
        governance::with(|state| (state.governor.registry().list(), state.governor.registry().held_bytes()))
            .map_err(error)?;
    let mut human: Vec<String> = models.iter().map(info_line).collect();
    if human.is_empty() {
        human.push(String::from("no models registered (llmctl register builtin)"));
    }
    let list: Vec<Value> = models.iter().map(info_json).collect();
    Ok(Reply::new(human.join("\n"), json!({ "models": list, "count": models.len(), "held_bytes": held_bytes })))
}

fn info(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let model = required_model(invocation)?;
    let (info, network) = governance::with(|state| {
        state.governor.registry().resolve(&model).map(|entry| (entry.info(), agent_network(entry)))
    })
    .map_err(error)?
    .map_err(|refused| error(LlmError::Governance(GovernanceError::Registry(refused))))?;
    let metadata = &info.metadata;
    let shape = |shape: &[u32]| shape.iter().map(u32::to_string).collect::<Vec<_>>().join("x");
    let mut human = [
        info_line(&info),
        alloc::format!("  shapes        in {} -> out {}", shape(&metadata.input_shape), shape(&metadata.output_shape)),
        alloc::format!("  author        {}", metadata.author),
        alloc::format!("  created       {} (Unix seconds)", metadata.created_unix_s),
        alloc::format!("  description   {}", metadata.description),
        alloc::format!("  training data sha256 {}", hex::encode(&metadata.training_data_sha256)),
        alloc::format!("  weights       {} bytes", format::thousands(info.weights_bytes)),
        alloc::format!("  digest        sha256 {}", info.digest),
        alloc::format!("  registered by {} at {} ns", info.registered_by, format::thousands(info.registered_ns)),
    ]
    .to_vec();
    let mut fields = info_json(&info);
    match network {
        None => {}
        Some(Ok(weights)) => {
            human.push(alloc::format!(
                "  network       {:?} (ReLU hidden, linear output), {} parameters; neuralctl install {}@{} puts it in the agent",
                weights.sizes,
                format::thousands(weights.parameters.len() as u64),
                metadata.name,
                metadata.version
            ));
            fields["network"] = json!({ "layers": weights.sizes, "parameters": weights.parameters.len() });
        }
        Some(Err(refused)) => {
            human.push(alloc::format!("  network       the weights do not decode: {refused} ({})", refused.code()));
            fields["network"] = json!({ "error": { "code": refused.code(), "message": refused.to_string() } });
        }
    }
    Ok(Reply::new(human.join("\n"), fields))
}

/// An agent-network model's decoded weights (checked against its shapes), or why they do not decode; `None` for
/// another kind.
fn agent_network(model: &sis_governance::registry::Model) -> Option<Result<NetworkWeights, WeightsError>> {
    let metadata = model.metadata();
    (metadata.kind == Kind::AgentNetwork)
        .then(|| NetworkWeights::decode_for(model.weights(), &metadata.input_shape, &metadata.output_shape))
}

fn versions(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let name = String::from(invocation.args.str("name").unwrap_or_default());
    let versions = governance::with(|state| state.governor.registry().versions(&name))
        .map_err(error)?
        .map_err(|refused| error(LlmError::Governance(GovernanceError::Registry(refused))))?;
    let texts: Vec<String> = versions.iter().map(ToString::to_string).collect();
    Ok(Reply::new(alloc::format!("{name}: {}", texts.join(", ")), json!({ "name": name, "versions": texts })))
}

fn load(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let caller = kernel.principal;
    let model = required_model(invocation)?;
    let info = governance::load(caller, &model).map_err(error)?;
    Ok(Reply::new(alloc::format!("loaded {}", info_line(&info)), info_json(&info)))
}

fn unload(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let caller = kernel.principal;
    let model = required_model(invocation)?;
    let info = governance::unload(caller, &model).map_err(error)?;
    Ok(Reply::new(alloc::format!("unloaded {}", info_line(&info)), info_json(&info)))
}

fn infer(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let caller = kernel.principal;
    let model = required_model(invocation)?;
    let prompt = String::from(invocation.args.str("prompt").unwrap_or_default());
    let max_tokens = invocation.args.u64("max-tokens").unwrap_or(64);
    let temperature_text = String::from(invocation.args.str("temperature").unwrap_or("0.8"));
    let temperature = temperature_text.parse::<f32>().unwrap_or(0.8);
    let seed = invocation.args.u64("seed").unwrap_or_else(time::now_ns);
    let request = InferRequest { model: &model, prompt: prompt.as_bytes(), max_tokens, temperature, seed };
    let started_ns = time::now_ns();
    let outcome = governance::infer(caller, &request);
    inference_span(&model.to_string(), started_ns, &outcome, max_tokens, seed);
    let result = match outcome {
        Ok(result) => result,
        Err(refused) => return refused_inference(refused, max_tokens, seed),
    };
    let text = String::from_utf8_lossy(&result.text).into_owned();
    let tokens = result.text.len() as u64;
    let tokens_per_second = tokens.saturating_mul(1_000_000_000).checked_div(result.generation_ns).unwrap_or(0);
    let human = alloc::format!(
        "{text}\n-- {} tokens{} from {} in {} ({} tokens/s), temperature {temperature_text}, seed {seed}; {} tokens left in this window",
        tokens,
        if result.cut { alloc::format!(" (cut from {max_tokens} by the budget)") } else { String::new() },
        result.model,
        format::milliseconds(result.generation_ns),
        format::thousands(tokens_per_second),
        format::thousands(result.remaining_tokens),
    );
    Ok(Reply::new(
        human,
        json!({
            "model": result.model.to_string(),
            "principal": caller,
            "prompt": prompt,
            "text": text,
            "tokens": tokens,
            "requested_tokens": result.requested_tokens,
            "cut": result.cut,
            "remaining_tokens": result.remaining_tokens,
            "window_reset_ns": result.window_reset_ns,
            "temperature": temperature,
            "seed": seed,
            "grant_ns": result.grant_ns,
            "generation_ns": result.generation_ns,
            "tokens_per_second": tokens_per_second,
        }),
    ))
}

/// A refused inference: the error, and in JSON the figures a client needs to retry.
/// The inference's span `sis.llm.inference` (while telemetry records): model, tokens asked and made, seed, the
/// governor's grant and generation times; status error with the refusal's code.
fn inference_span(
    model: &str,
    started_ns: u64,
    outcome: &Result<governance::InferResult, LlmError>,
    max_tokens: u64,
    seed: u64,
) {
    let ended_ns = time::now_ns();
    let int = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    let mut attributes = alloc::vec![
        KeyValue::string("sis.llm.model", model),
        KeyValue::int("sis.llm.requested_tokens", int(max_tokens)),
        KeyValue::string("sis.llm.seed", &alloc::format!("{seed}")),
    ];
    let code = match outcome {
        Ok(result) => {
            attributes.push(KeyValue::int("sis.llm.tokens", int(result.text.len() as u64)));
            attributes.push(KeyValue::bool("sis.llm.cut", result.cut));
            attributes.push(KeyValue::int("sis.llm.grant_ns", int(result.grant_ns)));
            attributes.push(KeyValue::int("sis.llm.generation_ns", int(result.generation_ns)));
            None
        }
        Err(refused) => Some(refused.code()),
    };
    let span = crate::otel::while_recording(|telemetry| {
        let outcome = code.map_or(CommandOutcome::Ok, CommandOutcome::Failed);
        sis_otel::operation_span(telemetry.ids(), "sis.llm.inference", started_ns, ended_ns, attributes, outcome)
    });
    if let Some(span) = span {
        crate::otel::enqueue_spans(alloc::vec![span]);
    }
}

fn refused_inference(refused: LlmError, max_tokens: u64, seed: u64) -> Result<Reply, ShellError> {
    let mut fields = json!({ "requested_tokens": max_tokens, "seed": seed });
    match &refused {
        LlmError::Governance(GovernanceError::Policy(PolicyError::RateLimited { retry_after_ns })) => {
            fields["retry_after_ns"] = Value::from(*retry_after_ns);
        }
        LlmError::Governance(GovernanceError::Policy(PolicyError::BudgetExhausted {
            remaining_tokens,
            window_reset_ns,
            ..
        })) => {
            fields["remaining_tokens"] = Value::from(*remaining_tokens);
            fields["window_reset_ns"] = Value::from(*window_reset_ns);
        }
        _ => return Err(error(refused)),
    }
    Ok(Reply::new("", fields).failing(error(refused)))
}
