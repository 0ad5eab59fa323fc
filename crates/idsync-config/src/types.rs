//! The typed project model produced by loading and validating a project folder. Pure data:
//! this module must not read files, look at the environment or run scripts.

use idsync_core::{Action, Filter, JsonPointer, ResourcePath, Situation};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A whole validated project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The absolute project folder.
    pub dir: PathBuf,
    /// In sync.json order, or mapping-*.json ordered by `syncAfter`.
    pub mappings: Vec<Mapping>,
    pub connectors: BTreeMap<String, ConnectorConfig>,
    pub managed: Vec<ManagedType>,
    pub schedules: BTreeMap<String, Schedule>,
    pub auth: AuthConfig,
    pub settings: Settings,
    /// sync.json `queueRecovery`.
    pub queue_recovery: QueueRecovery,
    /// sync.json `queueBalancing`.
    pub queue_balancing: QueueBalancing,
    /// conf/idsync.json's top-level values as text, a source of `&{NAME}` and of scripts'
    /// `identityServer.getProperty` (see [`Project::property`]).
    pub properties: BTreeMap<String, String>,
}

impl Project {
    /// The mapping called `name`.
    pub fn mapping(&self, name: &str) -> Option<&Mapping> {
        self.mappings.iter().find(|m| m.name == name)
    }

    /// The connector called `name`.
    pub fn connector(&self, name: &str) -> Option<&ConnectorConfig> {
        self.connectors.get(name)
    }

    /// The managed object type called `name`.
    pub fn managed_type(&self, name: &str) -> Option<&ManagedType> {
        self.managed.iter().find(|m| m.name == name)
    }

    /// What `&{name}` resolves to now, as at load (docs/configuration.md#values-from-outside-name-substitution):
    /// the project folder's names, conf/idsync.json, then the environment.
    pub fn property(&self, name: &str) -> Option<String> {
        let dir = self.dir.display().to_string();
        crate::load::resolve_name(name, &dir, &self.properties, &|n| std::env::var(n).ok())
    }
}

/// A script kept as data: the JS engine compiles it later.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptSpec {
    /// The inline source, or the file's contents read at load.
    pub source: String,
    /// The file as written in the config (relative to the project), when it came from a file.
    pub file: Option<String>,
    /// Extra variables bound when the script runs.
    pub globals: Map<String, Value>,
    /// Where the script was declared, for error messages, e.g.
    /// `conf/sync.json /mappings/0/properties/2/transform` or `script/x.js`.
    pub origin: String,
}

/// A condition: a CREST filter (kept with its original text) or a script.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Filter(Filter, String),
    Script(ScriptSpec),
}

/// Where a mapping's links live (docs/configuration.md#mappings `links`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinksRef {
    /// The mapping whose name is the link type.
    pub mapping: String,
    /// True when this mapping's source is the link-defining mapping's target.
    pub reversed: bool,
}

/// One correlation query entry (docs/configuration.md#mappings `correlationQuery`).
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationQuery {
    pub link_qualifier: Option<String>,
    pub script: ScriptSpec,
}

/// How a mapping correlates unlinked sources with targets.
#[derive(Debug, Clone, PartialEq)]
pub enum Correlation {
    Queries(Vec<CorrelationQuery>),
    Script(ScriptSpec),
}

/// The link qualifiers of a mapping: a fixed list or a script.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkQualifiers {
    List(Vec<String>),
    Script(ScriptSpec),
}

impl Default for LinkQualifiers {
    fn default() -> Self {
        Self::List(vec!["default".to_string()])
    }
}

/// One property mapping (docs/configuration.md#mappings).
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyMapping {
    pub target: JsonPointer,
    /// `None` when no source is given; `Some(root)` for `""` (the whole source object).
    pub source: Option<JsonPointer>,
    pub transform: Option<ScriptSpec>,
    pub condition: Option<Condition>,
    pub default: Option<Value>,
}

/// The action of a policy.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionSpec {
    Name(Action),
    Script(ScriptSpec),
}

/// One situation policy (docs/configuration.md#mappings).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub situation: Situation,
    pub action: ActionSpec,
    pub condition: Option<Condition>,
    pub post_action: Option<ScriptSpec>,
}

/// A safety limit: an absolute count or a percentage of the population.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Count(u64),
    Percent(f64),
}

/// Mass-change guards of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Safety {
    pub max_deletes: Option<Limit>,
    pub max_unlinks: Option<Limit>,
    pub min_source_size: Option<u64>,
}

/// What to do after the last queued-sync retry failed.
#[derive(Debug, Clone, PartialEq)]
pub enum PostRetryAction {
    LoggedIgnore,
    DeadLetterQueue,
    Script(ScriptSpec),
}

/// Queued implicit sync (`queuedSync`), with defaults applied. `enabled` defaults to false as in
/// IDM: use [`Mapping::queued`] to get it only when it is on.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedSync {
    pub enabled: bool,
    pub page_size: u64,
    pub polling_interval_ms: u64,
    pub max_queue_size: u64,
    /// `None` = retry forever (omitted or negative in the config).
    pub max_retries: Option<u64>,
    pub retry_delay_ms: u64,
    pub post_retry_action: PostRetryAction,
    pub workers: u64,
}

impl Default for QueuedSync {
    fn default() -> Self {
        Self {
            enabled: false,
            page_size: 100,
            polling_interval_ms: 1000,
            max_queue_size: 20000,
            max_retries: None,
            retry_delay_ms: 1000,
            post_retry_action: PostRetryAction::LoggedIgnore,
            workers: 1,
        }
    }
}

/// One mapping with every property of docs/configuration.md#mappings and its default applied.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub name: String,
    pub source: ResourcePath,
    pub source_str: String,
    pub target: ResourcePath,
    pub target_str: String,
    /// `links` as written, resolved at load: the definer exists and `reversed` says whether it
    /// goes the other way. `None` = this mapping defines its own links; see [`Mapping::link_type`].
    pub links: Option<LinksRef>,
    pub enable_sync: bool,
    pub enable_linking: bool,
    pub source_ids_case_sensitive: bool,
    pub target_ids_case_sensitive: bool,
    pub valid_source: Option<ScriptSpec>,
    pub valid_target: Option<ScriptSpec>,
    pub source_condition: Option<Condition>,
    pub correlation: Option<Correlation>,
    pub link_qualifiers: LinkQualifiers,
    pub properties: Vec<PropertyMapping>,
    pub policies: Vec<Policy>,
    pub on_create: Option<ScriptSpec>,
    pub on_update: Option<ScriptSpec>,
    pub on_delete: Option<ScriptSpec>,
    pub on_link: Option<ScriptSpec>,
    pub on_unlink: Option<ScriptSpec>,
    pub result: Option<ScriptSpec>,
    pub task_threads: u64,
    pub feed_size: u64,
    pub prefetch_links: bool,
    pub correlate_empty_target_set: bool,
    pub source_query: Option<Map<String, Value>>,
    pub target_query: Option<Map<String, Value>>,
    pub source_query_full_entry: Option<bool>,
    pub target_query_full_entry: Option<bool>,
    pub allow_empty_source_set: bool,
    /// Default true for recon, false for reconById: the caller decides.
    pub run_target_phase: Option<bool>,
    pub recon_source_query_paging: bool,
    /// Default 1000 when paging, 10000 when clustered: the caller decides.
    pub recon_source_query_page_size: Option<u64>,
    pub recon_target_query_paging: bool,
    pub recon_target_query_page_size: Option<u64>,
    pub clustered_source_recon_enabled: bool,
    pub queued_sync: Option<QueuedSync>,
    pub trigger_sync_properties: Option<Vec<JsonPointer>>,
    pub safety: Option<Safety>,
    pub recon_association: Option<Value>,
    pub sync_after: Vec<String>,
    /// The mapping as written (after substitution), for `GET config/sync`.
    pub raw: Value,
}

/// The connector implementations idsync ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectorKind {
    Csv,
    DatabaseTable,
    Ldap,
}

/// One property of a connector object type.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyDef {
    pub native_name: String,
    pub r#type: String,
    pub native_type: Option<String>,
    pub items: Option<Value>,
    pub required: bool,
    pub flags: Vec<String>,
    pub raw: Value,
}

/// One object type of a connector.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectType {
    pub native_type: Option<String>,
    pub properties: BTreeMap<String, PropertyDef>,
    pub raw: Value,
}

/// What to do when a liveSync change fails (docs/configuration.md).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncFailureHandler {
    /// `None` = retry forever.
    pub max_retries: Option<u64>,
    pub post_retry_action: PostRetryAction,
}

/// One `provisioner.openicf-*.json`.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    pub name: String,
    pub kind: ConnectorKind,
    pub enabled: bool,
    /// After substitution.
    pub configuration_properties: Map<String, Value>,
    pub object_types: BTreeMap<String, ObjectType>,
    pub sync_failure_handler: Option<SyncFailureHandler>,
    /// The file as written (after substitution).
    pub raw: Value,
    /// Where the file came from, relative to the project.
    pub file: String,
}

/// One managed object type from managed.json.
#[derive(Debug, Clone, Default)]
pub struct ManagedType {
    pub name: String,
    pub schema: Value,
    pub indexed: Vec<String>,
    /// The lifecycle scripts (docs/configuration.md#confmanagedjson gives when each runs).
    pub on_create: Option<ScriptSpec>,
    pub on_update: Option<ScriptSpec>,
    pub on_delete: Option<ScriptSpec>,
    pub on_read: Option<ScriptSpec>,
    pub on_retrieve: Option<ScriptSpec>,
    pub on_validate: Option<ScriptSpec>,
    pub on_store: Option<ScriptSpec>,
    pub post_create: Option<ScriptSpec>,
    pub post_update: Option<ScriptSpec>,
    pub post_delete: Option<ScriptSpec>,
    pub on_sync: Option<ScriptSpec>,
    /// Custom scripted actions by name (`POST managed/<type>/<id>?_action=<name>`).
    pub actions: BTreeMap<String, ScriptSpec>,
    /// The properties of the schema that have scripts of their own or are virtual, in schema
    /// order.
    pub property_scripts: Vec<PropertyScripts>,
    pub raw: Value,
}

/// The scripts of one property of a managed object type's schema (docs/configuration.md#property-scripts).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PropertyScripts {
    pub name: String,
    /// `isVirtual`: the value is computed by `onRetrieve`, also before every store.
    pub is_virtual: bool,
    pub on_retrieve: Option<ScriptSpec>,
    pub on_validate: Option<ScriptSpec>,
    pub on_store: Option<ScriptSpec>,
}

/// A property of a managed type's schema that holds relationships (IDM's `"type":
/// "relationship"`, or an array of them), as [`ManagedType::relationship_fields`] reads it
/// (docs/configuration.md#relationship-properties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationshipField {
    /// The property's name (`historicalAccounts`).
    pub name: String,
    /// `"type": "array"` of relationships; otherwise one relationship (or none).
    pub collection: bool,
    /// `returnByDefault`: a read of the owning object includes the property without `_fields`
    /// naming it.
    pub return_by_default: bool,
    /// `reversePropertyName` of a `reverseRelationship`: the property of the referenced
    /// managed object that holds the other side.
    pub reverse_property: Option<String>,
    /// The `path`s of `resourceCollection` (`managed/role`): where its references may point.
    pub resource_paths: Vec<String>,
    /// `validate`: a write refuses a reference to a managed object that does not exist.
    pub validate: bool,
}

/// Schedule trigger kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleType {
    Cron,
    Simple,
}

/// What a schedule invokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvokeService {
    Sync,
    Provisioner,
    Script,
}

/// One `schedule-*.json`; the cron syntax is checked by the scheduler.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub name: String,
    pub enabled: bool,
    pub r#type: ScheduleType,
    pub schedule: Option<String>,
    pub repeat_interval_ms: Option<u64>,
    pub repeat_count: Option<i64>,
    pub persisted: bool,
    pub concurrent_execution: bool,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub timezone: Option<String>,
    pub invoke_service: InvokeService,
    pub invoke_context: Value,
    pub raw: Value,
}

/// API roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Admin,
    Reader,
}

/// A bearer token: only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDef {
    pub name: String,
    pub roles: Vec<Role>,
    /// Lower-case hex SHA-256 of the token.
    pub sha256: String,
}

/// A basic-auth user with a PHC password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDef {
    pub username: String,
    pub roles: Vec<Role>,
    pub password: String,
}

/// authentication.json.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    pub tokens: Vec<TokenDef>,
    pub users: Vec<UserDef>,
}

/// Queued-sync recovery monitor (sync.json `queueRecovery`, docs/operations.md#queued-sync-and-dead-letters): how often locks of
/// down nodes are freed and their ACQUIRED events returned to PENDING.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRecovery {
    pub enabled: bool,
    /// `recoveryInterval` is written in seconds (default 300).
    pub recovery_interval_ms: u64,
}

impl Default for QueueRecovery {
    fn default() -> Self {
        Self {
            enabled: true,
            recovery_interval_ms: 300_000,
        }
    }
}

/// Queued-sync lock balancing between running nodes (sync.json `queueBalancing`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueBalancing {
    pub enabled: bool,
    /// `balanceInterval` is written in seconds (default 5).
    pub balance_interval_ms: u64,
}

impl Default for QueueBalancing {
    fn default() -> Self {
        Self {
            enabled: true,
            balance_interval_ms: 5_000,
        }
    }
}

/// conf/idsync.json, after `IDSYNC_*` environment overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub repo_url: Option<String>,
    pub node_id: Option<String>,
    pub bind: String,
    pub heartbeat_interval_ms: u64,
    pub node_timeout_ms: u64,
    pub lease_ms: u64,
    /// How many jobs (recon source pages, target phases) one host runs at once
    /// (`maxConcurrentJobs`, 2): two let a node query its next page while it reconciles the
    /// current one; each is itself parallel over the mapping's `taskThreads`. Running nodes that
    /// share a host (the host name their heartbeats record) split it, each running at least
    /// one: every page in flight adds to the machine's load and the repository's writers.
    pub max_concurrent_jobs: u64,
    pub audit_retention_days: Option<u64>,
    /// How long a REST request may run before it is answered 504 (`requestTimeoutMs`, 300000).
    /// `POST recon?waitForCompletion=true` is exempt: it waits for the whole run.
    pub request_timeout_ms: u64,
    /// The project is a sample shipped in a checkout (`sample`, false): commands run it in a
    /// working copy under `.idsync/work/` so that a run never rewrites the tracked files
    /// (docs/getting-started.md).
    pub sample: bool,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may sit idle between requests (`headerTimeoutMs`, 30000).
    pub header_timeout_ms: u64,
    /// Most client connections served at once (`maxConnections`, 1024); more wait in the
    /// listen queue until one closes.
    pub max_connections: u64,
    /// Most `_sortKeys` a query may name (`maxSortKeys`, 16).
    pub max_sort_keys: u64,
    /// Deepest nesting of a stored object's JSON (`maxJsonDepth`, 128), checked on the
    /// result of every write, PATCH included.
    pub max_json_depth: u64,
    /// Largest stored object, as compact JSON (`maxObjectBytes`, 10 MiB), checked like the depth.
    pub max_object_bytes: u64,
    /// Most terms (conditions and operators) a `_queryFilter` may hold (`maxFilterTerms`, 1000).
    pub max_filter_terms: u64,
    /// Most results an unpaged query may return (`maxUnpagedResults`); `None` (the default):
    /// no cap, unpaged queries stream every match as IDM answers them.
    pub max_unpaged_results: Option<u64>,
    /// Password checks (argon2) run at once (`maxConcurrentLogins`, 2); more wait their turn.
    pub max_concurrent_logins: u64,
    /// Every key of the file as given (after substitution and overrides), including the ones not
    /// typed above; also the first source of `&{NAME}` substitution.
    pub raw: Map<String, Value>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            repo_url: None,
            node_id: None,
            bind: "127.0.0.1:8080".to_string(),
            heartbeat_interval_ms: 2000,
            node_timeout_ms: 10000,
            lease_ms: 10000,
            max_concurrent_jobs: 2,
            audit_retention_days: None,
            request_timeout_ms: 300_000,
            sample: false,
            header_timeout_ms: 30_000,
            max_connections: 1024,
            max_sort_keys: 16,
            max_json_depth: 128,
            max_object_bytes: 10 * 1024 * 1024,
            max_filter_terms: 1000,
            max_concurrent_logins: 2,
            max_unpaged_results: None,
            raw: Map::new(),
        }
    }
}
