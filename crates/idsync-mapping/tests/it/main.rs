//! One integration-test binary for idsync-mapping: the decision tables, and the compiled
//! mapping evaluated with real scripts (QuickJS through idsync-script).

#![allow(clippy::unwrap_used)] // tests may unwrap (PREAMBLE), helpers included

mod assessment_tables;
mod compile;
mod hooks;
mod policies;
mod project;
mod properties;
mod qualify;
mod samples;
mod support;
