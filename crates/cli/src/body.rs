//! Building request bodies that carry only the fields the user gave.

use clap::ValueEnum;
use serde_json::{Map, Value};

/// A JSON object under construction; absent options and empty nested objects are left out.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Body(Map<String, Value>);

impl Body {
    pub fn new() -> Self {
        Self::default()
    }

    /// Always sets `key`.
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    /// Sets `key` when `value` is present.
    pub fn opt(self, key: &str, value: Option<impl Into<Value>>) -> Self {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    /// Sets `key` to the API name of an enum value when present.
    pub fn opt_enum<E: ValueEnum>(self, key: &str, value: Option<E>) -> Self {
        self.opt(key, value.map(|v| enum_name(&v)))
    }

    /// Sets `key` to a list of strings when the list is not empty.
    pub fn list(self, key: &str, values: &[String]) -> Self {
        if values.is_empty() {
            self
        } else {
            self.set(key, values.to_vec())
        }
    }

    /// Sets `key` to the nested object when it has any field.
    pub fn nested(self, key: &str, inner: Body) -> Self {
        if inner.is_empty() {
            self
        } else {
            self.set(key, inner.build())
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn build(self) -> Value {
        Value::Object(self.0)
    }
}

/// The value name clap shows for an enum variant, which is the API's spelling.
pub fn enum_name<E: ValueEnum>(value: &E) -> String {
    value
        .to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}

/// `--yes` / `--no-yes` pairs: `Some(true)`, `Some(false)` or not given.
pub fn tri(yes: bool, no: bool) -> Option<bool> {
    match (yes, no) {
        (true, _) => Some(true),
        (false, true) => Some(false),
        (false, false) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(clap::ValueEnum, Clone, Copy, Debug)]
    #[value(rename_all = "snake_case")]
    enum Mode {
        InsertCookie,
    }

    #[test]
    fn omits_absent_and_empty() {
        let b = Body::new()
            .opt("a", Some(1))
            .opt("b", None::<u32>)
            .opt_enum("m", Some(Mode::InsertCookie))
            .list("l", &[])
            .nested("n", Body::new().opt("x", None::<bool>))
            .nested("k", Body::new().set("y", true));
        assert_eq!(b.build(), json!({"a": 1, "m": "insert_cookie", "k": {"y": true}}));
    }

    #[test]
    fn tri_state() {
        assert_eq!(tri(true, false), Some(true));
        assert_eq!(tri(false, true), Some(false));
        assert_eq!(tri(false, false), None);
    }
}
