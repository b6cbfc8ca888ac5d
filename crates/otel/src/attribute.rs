//! Attributes (key and typed value), the resource that produced the telemetry and the instrumentation scope.

use alloc::string::String;
use alloc::vec::Vec;

/// The resource attribute naming the service; OTLP backends group everything by it.
pub const SERVICE_NAME: &str = "service.name";

/// An attribute's value: the scalar kinds of OTLP's `AnyValue` that SIS uses.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyValue {
    /// Text (`stringValue`).
    String(String),
    /// A signed 64-bit integer (`intValue`, written as a decimal string).
    Int(i64),
    /// A double (`doubleValue`; NaN and the infinities as the strings protobuf's JSON mapping uses).
    Double(f64),
    /// A boolean (`boolValue`).
    Bool(bool),
}

/// One attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    /// Its name, such as `sis.command.path`.
    pub key: String,
    /// Its value.
    pub value: AnyValue,
}

impl KeyValue {
    /// A text attribute.
    pub fn string(key: &str, value: &str) -> Self {
        KeyValue { key: key.into(), value: AnyValue::String(value.into()) }
    }

    /// An integer attribute.
    pub fn int(key: &str, value: i64) -> Self {
        KeyValue { key: key.into(), value: AnyValue::Int(value) }
    }

    /// A double attribute.
    pub fn double(key: &str, value: f64) -> Self {
        KeyValue { key: key.into(), value: AnyValue::Double(value) }
    }

    /// A boolean attribute.
    pub fn bool(key: &str, value: bool) -> Self {
        KeyValue { key: key.into(), value: AnyValue::Bool(value) }
    }
}

/// What produced the telemetry: attributes shared by every span and metric of an export.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Its attributes, `service.name` first.
    pub attributes: Vec<KeyValue>,
}

impl Resource {
    /// A resource with only `service.name`.
    pub fn new(service_name: &str) -> Self {
        Resource { attributes: alloc::vec![KeyValue::string(SERVICE_NAME, service_name)] }
    }

    /// Adds an attribute.
    pub fn with(mut self, attribute: KeyValue) -> Self {
        self.attributes.push(attribute);
        self
    }

    /// The value of `service.name`, if set as text.
    pub fn service_name(&self) -> Option<&str> {
        self.attributes.iter().find(|attribute| attribute.key == SERVICE_NAME).and_then(|attribute| {
            match &attribute.value {
                AnyValue::String(name) => Some(name.as_str()),
                _ => None,
            }
        })
    }
}

/// The instrumentation scope: which code made the spans or metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Its name, such as `sis.shell`.
    pub name: String,
    /// Its version (empty when it has none).
    pub version: String,
}

impl Scope {
    /// A scope named `name` at `version`.
    pub fn new(name: &str, version: &str) -> Self {
        Scope { name: name.into(), version: version.into() }
    }
}
