//! The model registry: verified artifacts by name and semantic version, with a loaded flag.
//!
//! [`Registry::register`] keeps a model only after its artifact verified under a trusted key, its size is within
//! the registering principal's limit, its name and version are new, and the registry has room; a refusal
//! leaves the registry as it was. The registry keeps the whole artifact (so [`crate::compliance`] can verify it
//! again later) and hands out its weights while it is loaded.

#[cfg(test)]
mod tests;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use serde::Serialize;

use crate::artifact::{self, ArtifactError, Metadata, ModelRef, Version, DIGEST_BYTES};
use crate::hex;
use crate::keys::{KeyId, TrustedKeys};
use crate::policy::Policy;
use crate::principal::Principal;

/// Models a registry holds at most by default.
pub const DEFAULT_MAX_MODELS: usize = 64;
/// Artifact bytes a registry holds at most by default, all models together (64 MiB).
pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 64 << 20;

/// A registered model: its verified artifact and what the registry knows of it.
#[derive(Debug, Clone)]
pub struct Model {
    artifact: Vec<u8>,
    metadata: Metadata,
    weights_range: Range<usize>,
    digest: [u8; DIGEST_BYTES],
    key_id: KeyId,
    registered_ns: u64,
    registered_by: Principal,
    loaded: bool,
}

impl Model {
    /// Its metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Its weights, for the kernel to build the model from.
    pub fn weights(&self) -> &[u8] {
        &self.artifact[self.weights_range.clone()]
    }

    /// The artifact as registered (to verify it again, or to save it).
    pub fn artifact(&self) -> &[u8] {
        &self.artifact
    }

    /// Who registered it.
    pub fn registered_by(&self) -> Principal {
        self.registered_by
    }

    /// Whether it is loaded.
    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// `name@version`.
    pub fn id(&self) -> ModelId {
        ModelId { name: self.metadata.name.clone(), version: self.metadata.version }
    }

    #[cfg(test)]
    pub(crate) fn artifact_mut(&mut self) -> &mut Vec<u8> {
        &mut self.artifact
    }

    /// What `llmctl info` shows.
    pub fn info(&self) -> ModelInfo {
        ModelInfo {
            metadata: self.metadata.clone(),
            artifact_bytes: self.artifact.len() as u64,
            weights_bytes: self.weights_range.len() as u64,
            digest: hex::encode(&self.digest),
            key_id: self.key_id,
            registered_ns: self.registered_ns,
            registered_by: self.registered_by,
            loaded: self.loaded,
        }
    }
}

/// A model's name and version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ModelId {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: Version,
}

impl fmt::Display for ModelId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}@{}", self.name, self.version)
    }
}

/// A model as listed: its metadata and the registry's facts about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    /// The signed metadata.
    #[serde(flatten)]
    pub metadata: Metadata,
    /// Bytes of the whole artifact (what the size limit counts).
    pub artifact_bytes: u64,
    /// Bytes of the weights.
    pub weights_bytes: u64,
    /// The artifact's SHA-256 (hex).
    pub digest: String,
    /// The key that signed it.
    pub key_id: KeyId,
    /// When it was registered (the caller's clock, ns).
    pub registered_ns: u64,
    /// Who registered it.
    pub registered_by: Principal,
    /// Whether it is loaded.
    pub loaded: bool,
}

/// Why a registry operation did nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    /// The artifact did not verify or parse.
    Artifact(ArtifactError),
    /// The artifact is larger than the registering principal's model size limit.
    TooLarge {
        /// Its size.
        bytes: u64,
        /// The limit.
        max_model_bytes: u64,
    },
    /// This name and version are registered already.
    VersionExists {
        /// The model.
        model: ModelId,
    },
    /// The registry holds its maximum number of models.
    Full {
        /// That maximum.
        max_models: usize,
    },
    /// The registry's bytes would exceed its maximum.
    NoRoom {
        /// The artifact's size.
        bytes: u64,
        /// Bytes held now.
        held_bytes: u64,
        /// The maximum.
        max_total_bytes: u64,
    },
    /// The heap could not hold a copy of the artifact.
    OutOfMemory {
        /// Bytes asked for.
        bytes: u64,
    },
    /// No model has this name.
    UnknownModel {
        /// The name.
        name: String,
    },
    /// The model has no such version.
    UnknownVersion {
        /// The model asked for.
        model: ModelId,
    },
    /// `load` of a loaded model.
    AlreadyLoaded {
        /// The model.
        model: ModelId,
    },
    /// The model (or, without a version, every version of it) is not loaded.
    NotLoaded {
        /// The name and, if given, the version.
        model: String,
    },
}

impl RegistryError {
    /// A stable kebab-case code; an artifact refusal gives the artifact's code.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::Artifact(error) => error.code(),
            RegistryError::TooLarge { .. } => "model-too-large",
            RegistryError::VersionExists { .. } => "version-exists",
            RegistryError::Full { .. } => "registry-full",
            RegistryError::NoRoom { .. } => "registry-no-room",
            RegistryError::OutOfMemory { .. } => "out-of-memory",
            RegistryError::UnknownModel { .. } => "unknown-model",
            RegistryError::UnknownVersion { .. } => "unknown-version",
            RegistryError::AlreadyLoaded { .. } => "already-loaded",
            RegistryError::NotLoaded { .. } => "not-loaded",
        }
    }
}

impl From<ArtifactError> for RegistryError {
    fn from(error: ArtifactError) -> RegistryError {
        RegistryError::Artifact(error)
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::Artifact(error) => write!(formatter, "artifact refused: {error}"),
            RegistryError::TooLarge { bytes, max_model_bytes } => {
                write!(formatter, "the artifact is {bytes} bytes; the model size limit is {max_model_bytes}")
            }
            RegistryError::VersionExists { model } => write!(formatter, "{model} is registered already"),
            RegistryError::Full { max_models } => write!(formatter, "the registry holds {max_models} models already"),
            RegistryError::NoRoom { bytes, held_bytes, max_total_bytes } => write!(
                formatter,
                "no room for {bytes} bytes: the registry holds {held_bytes} of at most {max_total_bytes}"
            ),
            RegistryError::OutOfMemory { bytes } => write!(formatter, "the heap could not hold {bytes} bytes"),
            RegistryError::UnknownModel { name } => write!(formatter, "no model is named {name}"),
            RegistryError::UnknownVersion { model } => write!(formatter, "{model} is not registered"),
            RegistryError::AlreadyLoaded { model } => write!(formatter, "{model} is loaded already"),
            RegistryError::NotLoaded { model } => write!(formatter, "{model} is not loaded"),
        }
    }
}

/// Registered models, ordered by name, then version.
#[derive(Debug, Clone)]
pub struct Registry {
    models: Vec<Model>,
    max_models: usize,
    max_total_bytes: u64,
    held_bytes: u64,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry::new(DEFAULT_MAX_MODELS, DEFAULT_MAX_TOTAL_BYTES)
    }
}

impl Registry {
    /// An empty registry holding at most `max_models` models of `max_total_bytes` in all.
    pub fn new(max_models: usize, max_total_bytes: u64) -> Registry {
        Registry { models: Vec::new(), max_models, max_total_bytes, held_bytes: 0 }
    }

    /// Verifies `artifact` and keeps it (see the module docs for the checks, in order).
    pub fn register(
        &mut self,
        artifact: &[u8],
        keys: &TrustedKeys,
        policy: &Policy,
        principal: Principal,
        now_ns: u64,
    ) -> Result<ModelInfo, RegistryError> {
        let bytes = artifact.len() as u64;
        let max_model_bytes = policy.limits(principal).max_model_bytes;
        if bytes > max_model_bytes {
            return Err(RegistryError::TooLarge { bytes, max_model_bytes });
        }
        let verified = artifact::decode(artifact, keys)?;
        let position = match self.position(&verified.metadata.name, verified.metadata.version) {
            Ok(_) => {
                let model = ModelId { name: verified.metadata.name, version: verified.metadata.version };
                return Err(RegistryError::VersionExists { model });
            }
            Err(position) => position,
        };
        if self.models.len() >= self.max_models {
            return Err(RegistryError::Full { max_models: self.max_models });
        }
        let held_bytes = self.held_bytes;
        if held_bytes.checked_add(bytes).is_none_or(|total| total > self.max_total_bytes) {
            return Err(RegistryError::NoRoom { bytes, held_bytes, max_total_bytes: self.max_total_bytes });
        }
        let mut copy = Vec::new();
        copy.try_reserve_exact(artifact.len()).map_err(|_| RegistryError::OutOfMemory { bytes })?;
        self.models.try_reserve(1).map_err(|_| RegistryError::OutOfMemory { bytes })?;
        copy.extend_from_slice(artifact);
        let model = Model {
            artifact: copy,
            metadata: verified.metadata,
            weights_range: verified.weights_range,
            digest: verified.digest,
            key_id: verified.key_id,
            registered_ns: now_ns,
            registered_by: principal,
            loaded: false,
        };
        let info = model.info();
        self.models.insert(position, model);
        self.held_bytes = held_bytes + bytes;
        Ok(info)
    }

    /// Every model, by name then version.
    pub fn list(&self) -> Vec<ModelInfo> {
        self.models.iter().map(Model::info).collect()
    }

    /// Every model, by name then version.
    pub fn models(&self) -> &[Model] {
        &self.models
    }

    #[cfg(test)]
    pub(crate) fn models_mut(&mut self) -> &mut [Model] {
        &mut self.models
    }

    /// Bytes of all artifacts held.
    pub fn held_bytes(&self) -> u64 {
        self.held_bytes
    }

    /// The versions of `name`, oldest first.
    pub fn versions(&self, name: &str) -> Result<Vec<Version>, RegistryError> {
        let versions: Vec<Version> = self
            .models
            .iter()
            .filter(|model| model.metadata.name == name)
            .map(|model| model.metadata.version)
            .collect();
        if versions.is_empty() {
            return Err(RegistryError::UnknownModel { name: String::from(name) });
        }
        Ok(versions)
    }

    /// The model `name@version`, or the latest version of `name` when `version` is `None`.
    pub fn get(&self, name: &str, version: Option<Version>) -> Result<&Model, RegistryError> {
        self.index(name, version).map(|index| &self.models[index])
    }

    /// [`Registry::get`] for a parsed reference.
    pub fn resolve(&self, model: &ModelRef) -> Result<&Model, RegistryError> {
        self.get(&model.name, model.version)
    }

    /// The loaded model `name@version`, or the latest loaded version of `name` when `version` is `None`.
    pub fn loaded(&self, model: &ModelRef) -> Result<&Model, RegistryError> {
        self.loaded_index(model).map(|index| &self.models[index])
    }

    /// Marks the model loaded (the latest version when none is given); its weights are then available.
    pub fn load(&mut self, model: &ModelRef) -> Result<ModelInfo, RegistryError> {
        let index = self.index(&model.name, model.version)?;
        let found = &mut self.models[index];
        if found.loaded {
            return Err(RegistryError::AlreadyLoaded { model: found.id() });
        }
        found.loaded = true;
        Ok(found.info())
    }

    /// Marks the model not loaded (the latest loaded version when none is given).
    pub fn unload(&mut self, model: &ModelRef) -> Result<ModelInfo, RegistryError> {
        let index = self.loaded_index(model)?;
        let found = &mut self.models[index];
        found.loaded = false;
        Ok(found.info())
    }

    /// Where `name@version` is, or where it would go.
    fn position(&self, name: &str, version: Version) -> Result<usize, usize> {
        self.models
            .binary_search_by(|model| (model.metadata.name.as_str(), model.metadata.version).cmp(&(name, version)))
    }

    fn index(&self, name: &str, version: Option<Version>) -> Result<usize, RegistryError> {
        match version {
            Some(version) => self.position(name, version).map_err(|_| {
                if self.models.iter().any(|model| model.metadata.name == name) {
                    RegistryError::UnknownVersion { model: ModelId { name: String::from(name), version } }
                } else {
                    RegistryError::UnknownModel { name: String::from(name) }
                }
            }),
            // Versions of a name are contiguous and ascending: the latest is the last.
            None => self
                .models
                .iter()
                .rposition(|model| model.metadata.name == name)
                .ok_or_else(|| RegistryError::UnknownModel { name: String::from(name) }),
        }
    }

    fn loaded_index(&self, model: &ModelRef) -> Result<usize, RegistryError> {
        match model.version {
            Some(version) => {
                let index = self.index(&model.name, Some(version))?;
                if self.models[index].loaded {
                    Ok(index)
                } else {
                    Err(RegistryError::NotLoaded { model: model.to_string() })
                }
            }
            None => {
                self.index(&model.name, None)?;
                self.models
                    .iter()
                    .rposition(|found| found.metadata.name == model.name && found.loaded)
                    .ok_or_else(|| RegistryError::NotLoaded { model: model.to_string() })
            }
        }
    }
}
