//! `cargo xtask model keygen | sign | verify`: model signing keys and signed artifacts on the host (`train`,
//! `generate`: model_lm.rs; `train-agent`: model_agent.rs).
//!
//! Key files (docs/governance.md): `NAME.key` holds the 32-byte Ed25519 seed, raw, mode 0600 — a secret, kept
//! under `target/model-keys/` by default, which git ignores; `NAME.pub` holds the public key as 64 lowercase hex
//! digits and a newline, the form the kernel is given to trust.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use sha2::{Digest, Sha256};
use sis_governance::artifact::{self, Kind, Metadata, Version};
use sis_governance::hex;
use sis_governance::keys::{public_key_from_seed, KeyId, TrustedKeys, SEED_BYTES};

/// The model subcommands.
#[derive(Subcommand)]
pub enum ModelTask {
    /// Make a signing key from the OS random source: DIR/NAME.key (secret seed) and DIR/NAME.pub (hex).
    Keygen {
        /// The key's file name, without extension.
        name: String,
        /// Where to write the files.
        #[arg(long, default_value = "target/model-keys")]
        dir: PathBuf,
        /// Replace existing files of that name.
        #[arg(long)]
        force: bool,
    },
    /// Build a signed artifact from metadata and a weights file.
    Sign(Box<SignArgs>),
    /// Train the byte-level language model on a text (minibatch Adam, deterministic from the seed) and write its
    /// weights blob; prints the loss per epoch, the held-out bits per byte and the unigram baseline on the same split.
    Train(crate::model_lm::TrainArgs),
    /// Train the learning agent of `stresstest learning` on the host (the kernel's code, bit for bit) and write its
    /// weights in the agent-network format and its training report.
    TrainAgent(crate::model_agent::TrainAgentArgs),
    /// Generate bytes from a weights blob and print them with the generation speed (tokens/s, host).
    Generate(crate::model_lm::GenerateArgs),
    /// Verify an artifact against public keys (NAME.pub files) and print its metadata.
    Verify {
        /// The artifact.
        artifact: PathBuf,
        /// A trusted public key file (repeatable).
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `model sign`'s flags.
#[derive(clap::Args)]
pub struct SignArgs {
    /// The signing key (a NAME.key file from `keygen`).
    #[arg(long)]
    key: PathBuf,
    /// The weights file (opaque bytes).
    #[arg(long)]
    weights: PathBuf,
    /// Where to write the artifact.
    #[arg(long, short)]
    output: PathBuf,
    /// Model name: 1 to 64 ASCII letters, digits, '-', '_', '.'.
    #[arg(long)]
    name: String,
    /// Semantic version MAJOR.MINOR.PATCH.
    #[arg(long)]
    version: String,
    /// language-model or agent-network.
    #[arg(long)]
    kind: String,
    /// Input shape, axis lengths separated by commas (e.g. 32 or 1,32).
    #[arg(long, value_delimiter = ',', required = true)]
    input_shape: Vec<u32>,
    /// Output shape, axis lengths separated by commas.
    #[arg(long, value_delimiter = ',', required = true)]
    output_shape: Vec<u32>,
    /// Author.
    #[arg(long, default_value = "")]
    author: String,
    /// Creation time in Unix seconds (default: now).
    #[arg(long)]
    created: Option<u64>,
    /// Description.
    #[arg(long, default_value = "")]
    description: String,
    /// The training data: its SHA-256 goes into the metadata.
    #[arg(long, conflicts_with = "training_data_sha256", required_unless_present = "training_data_sha256")]
    training_data: Option<PathBuf>,
    /// The training data's SHA-256 as 64 hex digits, when the data is not at hand.
    #[arg(long)]
    training_data_sha256: Option<String>,
}

/// Runs a model subcommand.
pub fn run(task: ModelTask) -> Result<(), String> {
    match task {
        ModelTask::Keygen { name, dir, force } => {
            let (secret, public) = keygen(&name, &dir, force)?;
            println!("secret key {} (keep it; never commit it)", secret.display());
            println!("public key {}", public.display());
            Ok(())
        }
        ModelTask::Sign(args) => {
            let bytes = sign(&args)?;
            let key_id = KeyId::of(&public_key_from_seed(&read_seed(&args.key)?));
            println!("wrote {} ({} bytes), signed by key {key_id}", args.output.display(), bytes.len());
            Ok(())
        }
        ModelTask::Train(args) => crate::model_lm::train(args),
        ModelTask::Generate(args) => crate::model_lm::generate(args),
        ModelTask::TrainAgent(args) => crate::model_agent::train(args),
        ModelTask::Verify { artifact, keys, json } => {
            let report = verify(&artifact, &keys, json)?;
            println!("{report}");
            Ok(())
        }
    }
}

/// Writes `dir/name.key` (a fresh seed from the OS) and `dir/name.pub`; returns their paths.
pub fn keygen(name: &str, dir: &Path, force: bool) -> Result<(PathBuf, PathBuf), String> {
    if name.is_empty() || !name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_')) {
        return Err(format!("key name {name:?}: use ASCII letters, digits, '-' and '_'"));
    }
    let secret = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    for path in [&secret, &public] {
        if path.exists() && !force {
            return Err(format!("{} exists (pass --force to replace it)", path.display()));
        }
    }
    std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let mut seed = [0u8; SEED_BYTES];
    getrandom::fill(&mut seed).map_err(|error| format!("the OS random source failed: {error}"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&secret).map_err(|error| format!("{}: {error}", secret.display()))?;
    file.write_all(&seed).map_err(|error| format!("{}: {error}", secret.display()))?;
    let line = format!("{}\n", hex::encode(&public_key_from_seed(&seed)));
    std::fs::write(&public, line).map_err(|error| format!("{}: {error}", public.display()))?;
    Ok((secret, public))
}

/// Builds, signs and writes the artifact `args` describe; returns its bytes.
pub fn sign(args: &SignArgs) -> Result<Vec<u8>, String> {
    let seed = read_seed(&args.key)?;
    let weights = std::fs::read(&args.weights).map_err(|error| format!("{}: {error}", args.weights.display()))?;
    let training_data_sha256 = match (&args.training_data, &args.training_data_sha256) {
        (Some(path), _) => {
            let data = std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
            Sha256::digest(&data).into()
        }
        (None, Some(text)) => hex::decode::<32>(text.trim())
            .ok_or_else(|| format!("--training-data-sha256 {text:?}: not 64 hex digits"))?,
        (None, None) => return Err("give --training-data or --training-data-sha256".into()),
    };
    let created_unix_s = match args.created {
        Some(seconds) => seconds,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|error| format!("the clock is before 1970: {error}"))?
            .as_secs(),
    };
    let metadata = Metadata {
        name: args.name.clone(),
        version: Version::parse(&args.version).map_err(|error| format!("--version {:?}: {error}", args.version))?,
        kind: Kind::parse(&args.kind)
            .ok_or_else(|| format!("--kind {:?}: use language-model or agent-network", args.kind))?,
        input_shape: args.input_shape.clone(),
        output_shape: args.output_shape.clone(),
        author: args.author.clone(),
        created_unix_s,
        description: args.description.clone(),
        training_data_sha256,
    };
    let bytes = artifact::encode(&metadata, &weights, &seed).map_err(|error| format!("{error} ({})", error.code()))?;
    std::fs::write(&args.output, &bytes).map_err(|error| format!("{}: {error}", args.output.display()))?;
    Ok(bytes)
}

/// Verifies `path` against the public key files `keys`; returns the metadata as text or JSON.
pub fn verify(path: &Path, keys: &[PathBuf], json: bool) -> Result<String, String> {
    let mut trusted = TrustedKeys::new();
    for key in keys {
        let text = std::fs::read_to_string(key).map_err(|error| format!("{}: {error}", key.display()))?;
        trusted.add_hex(&text).map_err(|error| format!("{}: {error}", key.display()))?;
    }
    let bytes = std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let verified = artifact::decode(&bytes, &trusted)
        .map_err(|error| format!("{}: refused: {error} ({})", path.display(), error.code()))?;
    let metadata = &verified.metadata;
    if json {
        let mut object = serde_json::to_value(metadata).map_err(|error| error.to_string())?;
        object["artifact_bytes"] = bytes.len().into();
        object["weights_bytes"] = verified.weights.len().into();
        object["digest"] = hex::encode(&verified.digest).into();
        object["key_id"] = verified.key_id.to_string().into();
        return Ok(object.to_string());
    }
    let shape = |shape: &[u32]| shape.iter().map(u32::to_string).collect::<Vec<_>>().join("x");
    Ok([
        format!("{}: verified, signed by key {}", path.display(), verified.key_id),
        format!("  name          {}@{}", metadata.name, metadata.version),
        format!("  kind          {}", metadata.kind.name()),
        format!("  shapes        in {} -> out {}", shape(&metadata.input_shape), shape(&metadata.output_shape)),
        format!("  author        {}", metadata.author),
        format!("  created       {} (Unix seconds)", metadata.created_unix_s),
        format!("  description   {}", metadata.description),
        format!("  training data sha256 {}", hex::encode(&metadata.training_data_sha256)),
        format!("  weights       {} bytes (artifact {} bytes)", verified.weights.len(), bytes.len()),
        format!("  digest        sha256 {}", hex::encode(&verified.digest)),
    ]
    .join("\n"))
}

fn read_seed(path: &Path) -> Result<[u8; SEED_BYTES], String> {
    let bytes = std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
    bytes.try_into().map_err(|bytes: Vec<u8>| {
        format!("{}: a key file holds {SEED_BYTES} bytes, this one {}", path.display(), bytes.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sis-xtask-model-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn sign_args(dir: &Path, key: &Path) -> SignArgs {
        std::fs::write(dir.join("weights.bin"), [1u8, 2, 3, 4, 5]).unwrap();
        std::fs::write(dir.join("corpus.txt"), "abc").unwrap();
        SignArgs {
            key: key.to_path_buf(),
            weights: dir.join("weights.bin"),
            output: dir.join("model.sisart"),
            name: "tiny".into(),
            version: "0.1.0".into(),
            kind: "language-model".into(),
            input_shape: vec![8],
            output_shape: vec![1, 256],
            author: "xtask test".into(),
            created: Some(1_700_000_000),
            description: "five bytes".into(),
            training_data: Some(dir.join("corpus.txt")),
            training_data_sha256: None,
        }
    }

    #[test]
    fn keygen_sign_and_verify_round_trip_and_a_wrong_key_is_refused() {
        let dir = scratch("round-trip");
        let (secret, public) = keygen("dev", &dir, false).unwrap();
        assert_eq!(std::fs::read(&secret).unwrap().len(), 32);
        let public_text = std::fs::read_to_string(&public).unwrap();
        assert_eq!(public_text.len(), 65);
        assert_eq!(public_text, format!("{}\n", hex::encode(&public_key_from_seed(&read_seed(&secret).unwrap()))));
        #[cfg(unix)]
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&secret).unwrap().permissions()) & 0o777,
            0o600
        );
        assert!(keygen("dev", &dir, false).unwrap_err().contains("exists"));

        let args = sign_args(&dir, &secret);
        let bytes = sign(&args).unwrap();
        assert_eq!(std::fs::read(&args.output).unwrap(), bytes);
        let json: serde_json::Value =
            serde_json::from_str(&verify(&args.output, std::slice::from_ref(&public), true).unwrap()).unwrap();
        assert_eq!(json["name"], "tiny");
        assert_eq!(json["version"], "0.1.0");
        assert_eq!(json["output_shape"], serde_json::json!([1, 256]));
        assert_eq!(json["weights_bytes"], 5);
        assert_eq!(json["training_data_sha256"], hex::encode(&Sha256::digest(b"abc")));
        assert_eq!(json["key_id"], KeyId::of(&public_key_from_seed(&read_seed(&secret).unwrap())).to_string());
        let text = verify(&args.output, std::slice::from_ref(&public), false).unwrap();
        assert!(text.lines().any(|line| line == "  name          tiny@0.1.0"), "{text}");

        let (_, other) = keygen("other", &dir, false).unwrap();
        assert!(verify(&args.output, &[other], false).unwrap_err().ends_with("(unknown-key)"));
        let mut damaged = bytes.clone();
        damaged[30] ^= 1;
        std::fs::write(dir.join("damaged.sisart"), damaged).unwrap();
        assert!(verify(&dir.join("damaged.sisart"), &[public], false).unwrap_err().ends_with("(digest-mismatch)"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The artifact the kernel embeds is what `model sign` makes from the committed weights, training text and
    /// public test key (Ed25519 is deterministic), and its shapes are the shipped model's.
    #[test]
    fn the_shipped_artifact_is_reproduced_byte_for_byte_by_signing_again() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let models = root.join("models");
        let dir = scratch("shipped");
        let args = SignArgs {
            key: models.join("keys/sis-test.key"),
            weights: models.join("lm.bin"),
            output: dir.join("shakespeare-lm.sismodel"),
            name: "shakespeare-lm".into(),
            version: "1.0.0".into(),
            kind: "language-model".into(),
            input_shape: vec![8],
            output_shape: vec![62],
            author: "SIS project".into(),
            created: Some(1_796_601_600),
            description: SHIPPED_DESCRIPTION.into(),
            training_data: Some(models.join("shakespeare.txt")),
            training_data_sha256: None,
        };
        let signed = sign(&args).unwrap();
        let shipped = std::fs::read(models.join("shakespeare-lm.sismodel")).unwrap();
        assert_eq!(signed.len(), 200_262);
        assert!(signed == shipped, "models/shakespeare-lm.sismodel differs from a fresh signature");

        let public = std::fs::read_to_string(models.join("keys/sis-test.pub")).unwrap();
        assert_eq!(public, format!("{}\n", hex::encode(&public_key_from_seed(&read_seed(&args.key).unwrap()))));
        let mut trusted = TrustedKeys::new();
        trusted.add_hex(&public).unwrap();
        let verified = artifact::decode(&shipped, &trusted).unwrap();
        let model = sis_lm::Model::from_bytes(verified.weights).unwrap();
        let architecture = model.architecture();
        assert_eq!(verified.metadata.input_shape, [architecture.context as u32]);
        assert_eq!(verified.metadata.output_shape, [model.vocabulary_size() as u32]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The agent network the kernel embeds: it verifies under the public test key, carries the committed weights
    /// (the network's shapes, 147 parameters) and the training report's digest, and is what signing them again
    /// makes; training again with the documented configuration gives the same weights and report, byte for byte.
    #[test]
    fn the_shipped_agent_is_reproduced_byte_for_byte_by_training_and_signing_again() {
        use crate::model_agent::{train_agent, REPORT_PATH, SHIPPED_EPISODES, SHIPPED_SEED, WEIGHTS_PATH};
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let models = root.join("models");
        let dir = scratch("shipped-agent");
        let args = SignArgs {
            key: models.join("keys/sis-test.key"),
            weights: root.join(WEIGHTS_PATH),
            output: dir.join("memory-agent.sismodel"),
            name: "memory-agent".into(),
            version: "1.0.0".into(),
            kind: "agent-network".into(),
            input_shape: vec![5],
            output_shape: vec![3],
            author: "SIS project".into(),
            created: Some(1_796_601_600),
            description: SHIPPED_AGENT_DESCRIPTION.into(),
            training_data: Some(root.join(REPORT_PATH)),
            training_data_sha256: None,
        };
        let signed = sign(&args).unwrap();
        let shipped = std::fs::read(models.join("memory-agent.sismodel")).unwrap();
        assert_eq!(signed.len(), 1_031);
        assert!(signed == shipped, "models/memory-agent.sismodel differs from a fresh signature");

        let mut trusted = TrustedKeys::new();
        trusted.add_hex(&std::fs::read_to_string(models.join("keys/sis-test.pub")).unwrap()).unwrap();
        let verified = artifact::decode(&shipped, &trusted).unwrap();
        let committed_weights = std::fs::read(root.join(WEIGHTS_PATH)).unwrap();
        assert_eq!(verified.weights, &committed_weights[..]);
        let report = std::fs::read(root.join(REPORT_PATH)).unwrap();
        assert_eq!(verified.metadata.training_data_sha256, <[u8; 32]>::from(Sha256::digest(&report)));
        let network = sis_ai::NetworkWeights::decode_for(
            verified.weights,
            &verified.metadata.input_shape,
            &verified.metadata.output_shape,
        )
        .unwrap();
        assert_eq!((network.sizes, network.parameters.len()), (vec![5, 16, 3], 147));

        let config =
            sis_stress::learning::LearningConfig { episodes: SHIPPED_EPISODES, noise_per_mille: 0, seed: SHIPPED_SEED };
        let (blob, retrained_report) = train_agent(&config, &mut |_| {}).unwrap();
        assert!(blob == committed_weights, "training again gave other weights than {WEIGHTS_PATH}");
        assert!(retrained_report == report, "training again gave another report than {REPORT_PATH}");
        let parsed: serde_json::Value = serde_json::from_slice(&report).unwrap();
        assert_eq!(
            (parsed["status"].as_str(), parsed["held_out"]["beats_best_baseline"].as_bool()),
            (Some("pass"), Some(true))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    const SHIPPED_AGENT_DESCRIPTION: &str = "Q-network of the memory-pool learning agent ([5, 16, 3], ReLU hidden, \
        linear output) trained by cargo xtask model train-agent --episodes 20 --seed 1; signed with the public test \
        key models/keys/sis-test.key";

    const SHIPPED_DESCRIPTION: &str = "Byte-level MLP language model (8-byte context, 62-byte vocabulary) trained on \
        models/shakespeare.txt; signed with the public test key models/keys/sis-test.key";

    #[test]
    fn sign_refuses_bad_metadata_and_bad_key_files() {
        let dir = scratch("refusals");
        let (secret, _) = keygen("dev", &dir, false).unwrap();
        let mut args = sign_args(&dir, &secret);
        args.version = "1.2".into();
        assert!(sign(&args).unwrap_err().starts_with("--version \"1.2\""));
        let mut args = sign_args(&dir, &secret);
        args.name = "bad name".into();
        assert!(sign(&args).unwrap_err().ends_with("(invalid-name)"));
        let mut args = sign_args(&dir, &secret);
        args.kind = "llm".into();
        assert!(sign(&args).unwrap_err().starts_with("--kind"));
        std::fs::write(dir.join("short.key"), [0u8; 31]).unwrap();
        let args = sign_args(&dir, &dir.join("short.key"));
        assert!(sign(&args).unwrap_err().ends_with("this one 31"));
        assert!(!dir.join("model.sisart").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
