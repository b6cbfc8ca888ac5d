//! Named tensors for `tensorctl`: one store with its own budget, apart from every graph's.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use sis_dataflow::tensor::{Budget, BudgetStats, Tensor, TensorError};

use super::lock;

/// Most named tensors.
pub const MAX_TENSORS: usize = 64;
/// Budget of the store until changed: 8 MiB.
pub const DEFAULT_BUDGET_BYTES: u64 = 8 << 20;

struct Store {
    budget: Arc<Budget>,
    tensors: Vec<(String, Tensor)>,
}

static STORE: spin::Mutex<Option<Store>> = spin::Mutex::new(None);

/// Why a store operation was refused; nothing changed.
#[derive(Debug)]
pub enum StoreError {
    /// No tensor has this name.
    NoSuchTensor(String),
    /// The name is taken.
    Exists(String),
    /// [`MAX_TENSORS`] exist.
    Full,
    /// The budget changes only while the store is empty.
    NotEmpty(usize),
    /// The tensor library refused (shape, budget).
    Tensor(TensorError),
}

impl StoreError {
    /// Stable code for `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::NoSuchTensor(_) => "no-such-tensor",
            StoreError::Exists(_) => "tensor-exists",
            StoreError::Full => "too-many-tensors",
            StoreError::NotEmpty(_) => "store-not-empty",
            StoreError::Tensor(error) => error.code(),
        }
    }
}

impl core::fmt::Display for StoreError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StoreError::NoSuchTensor(name) => write!(formatter, "no tensor named {name}"),
            StoreError::Exists(name) => write!(formatter, "a tensor named {name} exists (free it first)"),
            StoreError::Full => write!(formatter, "at most {MAX_TENSORS} tensors"),
            StoreError::NotEmpty(count) => {
                write!(formatter, "{count} tensor(s) exist: the budget changes only while the store is empty")
            }
            StoreError::Tensor(error) => write!(formatter, "{error}"),
        }
    }
}

fn with_store<T>(body: impl FnOnce(&mut Store) -> T) -> T {
    let mut guard = lock(&STORE);
    let store = guard.get_or_insert_with(|| Store { budget: Budget::new(DEFAULT_BUDGET_BYTES), tensors: Vec::new() });
    body(store)
}

/// The store's budget.
pub fn budget() -> Arc<Budget> {
    with_store(|store| Arc::clone(&store.budget))
}

/// Replaces the (empty) store's budget.
pub fn set_budget(limit_bytes: u64) -> Result<BudgetStats, StoreError> {
    with_store(|store| {
        if !store.tensors.is_empty() {
            return Err(StoreError::NotEmpty(store.tensors.len()));
        }
        store.budget = Budget::new(limit_bytes);
        Ok(store.budget.stats())
    })
}

/// Stores `make(budget)` under `name` (a new name, within [`MAX_TENSORS`]).
pub fn insert(name: &str, make: impl FnOnce(&Arc<Budget>) -> Result<Tensor, TensorError>) -> Result<(), StoreError> {
    with_store(|store| {
        if store.tensors.iter().any(|(existing, _)| existing == name) {
            return Err(StoreError::Exists(name.into()));
        }
        if store.tensors.len() >= MAX_TENSORS {
            return Err(StoreError::Full);
        }
        let tensor = make(&store.budget).map_err(StoreError::Tensor)?;
        store.tensors.push((name.into(), tensor));
        Ok(())
    })
}

/// Runs `read` on the tensors named in `names`, in that order.
pub fn with_tensors<T>(names: &[&str], read: impl FnOnce(&[&Tensor]) -> T) -> Result<T, StoreError> {
    with_store(|store| {
        let mut found = Vec::with_capacity(names.len());
        for name in names {
            let tensor = store
                .tensors
                .iter()
                .find(|(existing, _)| existing == name)
                .map(|(_, tensor)| tensor)
                .ok_or_else(|| StoreError::NoSuchTensor(String::from(*name)))?;
            found.push(tensor);
        }
        Ok(read(&found))
    })
}

/// Removes a tensor; returns its storage bytes.
pub fn remove(name: &str) -> Result<u64, StoreError> {
    with_store(|store| {
        let index = store
            .tensors
            .iter()
            .position(|(existing, _)| existing == name)
            .ok_or_else(|| StoreError::NoSuchTensor(name.into()))?;
        let (_, tensor) = store.tensors.swap_remove(index);
        Ok(tensor.bytes())
    })
}

/// Removes every tensor; returns how many.
pub fn clear() -> usize {
    with_store(|store| {
        let count = store.tensors.len();
        store.tensors = Vec::new();
        count
    })
}

/// Names, shapes and bytes of every tensor.
pub fn list() -> Vec<(String, Vec<usize>, u64)> {
    with_store(|store| {
        store.tensors.iter().map(|(name, tensor)| (name.clone(), tensor.shape().to_vec(), tensor.bytes())).collect()
    })
}
