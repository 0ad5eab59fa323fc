//! The variables one script call sees (`source`, `target`, `object`, `linkQualifier`, ...).
//! Owns only the ordered name/value list; conversion to JavaScript happens in the engine.

use std::borrow::Cow;

use serde_json::Value;

/// An ordered set of variables for one call. Values are borrowed when the caller already holds
/// them (the common case: the source object of a recon), owned otherwise. A later `set` of the
/// same name replaces the earlier value.
#[derive(Debug, Clone, Default)]
pub struct Bindings<'a> {
    vars: Vec<(Cow<'a, str>, Cow<'a, Value>)>,
}

impl<'a> Bindings<'a> {
    /// No variables.
    pub fn new() -> Self {
        Self { vars: Vec::new() }
    }

    /// Binds `name` to a borrowed value.
    pub fn set(&mut self, name: impl Into<Cow<'a, str>>, value: &'a Value) -> &mut Self {
        self.put(name.into(), Cow::Borrowed(value));
        self
    }

    /// Binds `name` to an owned value.
    pub fn set_owned(&mut self, name: impl Into<Cow<'a, str>>, value: Value) -> &mut Self {
        self.put(name.into(), Cow::Owned(value));
        self
    }

    /// Builder form of [`Bindings::set`].
    pub fn with(mut self, name: impl Into<Cow<'a, str>>, value: &'a Value) -> Self {
        self.set(name, value);
        self
    }

    /// Builder form of [`Bindings::set_owned`].
    pub fn with_owned(mut self, name: impl Into<Cow<'a, str>>, value: Value) -> Self {
        self.set_owned(name, value);
        self
    }

    /// The value bound to `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// The variables in binding order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.vars.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }

    /// How many variables are bound.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether no variable is bound.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    fn put(&mut self, name: Cow<'a, str>, value: Cow<'a, Value>) {
        if let Some(slot) = self.vars.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = value;
        } else {
            self.vars.push((name, value));
        }
    }
}
