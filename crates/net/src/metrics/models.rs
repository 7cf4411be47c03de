//! The closed set of `model` label values: model names interned process-wide, at most
//! [`MAX_MODELS`] of them; every other name (unknown, invalid, or past the cap) is "other".
//!
//! Only names that come from a trusted source (the worker's configured model, a model a
//! worker actually served) are interned; names typed by an app are only looked up, so an
//! app cannot put text of its choosing into a label.

use std::sync::RwLock;

/// Most distinct model label values; the rest fold into "other".
pub const MAX_MODELS: usize = 64;
/// Longest model name used as a label value.
pub const MAX_MODEL_LABEL_BYTES: usize = 128;
/// The label value of every model outside the set.
pub const OTHER: &str = "other";

/// Interned names; leaked on purpose (bounded: `MAX_MODELS` × `MAX_MODEL_LABEL_BYTES`) so
/// labels can be `&'static str`.
static NAMES: RwLock<Vec<&'static str>> = RwLock::new(Vec::new());

/// A `model` label value: an index into the interned names, or "other".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModelId(u8);

impl ModelId {
    pub const OTHER: ModelId = ModelId(MAX_MODELS as u8);

    /// Slot of this model in per-model tables of `MAX_MODELS + 1` entries.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    pub fn from_index(index: usize) -> ModelId {
        ModelId(u8::try_from(index.min(MAX_MODELS)).unwrap_or(MAX_MODELS as u8))
    }

    /// The label value.
    pub fn label(self) -> &'static str {
        let names = NAMES.read().unwrap_or_else(|p| p.into_inner());
        names.get(self.index()).copied().unwrap_or(OTHER)
    }
}

/// Whether `name` may be a label value: 1..=128 bytes of `[A-Za-z0-9._:/@+-]`, not "other".
/// (No quotes, backslashes, commas, `=`, spaces or control characters: the value is safe in
/// any Prometheus tooling, with or without escaping.)
pub fn valid_model_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_MODEL_LABEL_BYTES
        && name != OTHER
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/@+-".contains(&b))
}

/// The label of a model name from a trusted source, adding it to the set while there is
/// room.
pub fn intern(name: &str) -> ModelId {
    intern_into(&NAMES, name)
}

/// The label of a model name already in the set, else "other". Never adds.
pub fn lookup(name: &str) -> ModelId {
    lookup_in(&NAMES, name)
}

pub(super) fn intern_into(table: &RwLock<Vec<&'static str>>, name: &str) -> ModelId {
    let found = lookup_in(table, name);
    if found != ModelId::OTHER || !valid_model_label(name) {
        return found;
    }
    let mut names = table.write().unwrap_or_else(|p| p.into_inner());
    if let Some(i) = names.iter().position(|n| *n == name) {
        return ModelId::from_index(i);
    }
    if names.len() >= MAX_MODELS {
        return ModelId::OTHER;
    }
    names.push(Box::leak(name.to_owned().into_boxed_str()));
    ModelId::from_index(names.len() - 1)
}

pub(super) fn lookup_in(table: &RwLock<Vec<&'static str>>, name: &str) -> ModelId {
    let names = table.read().unwrap_or_else(|p| p.into_inner());
    names
        .iter()
        .position(|n| *n == name)
        .map_or(ModelId::OTHER, ModelId::from_index)
}
