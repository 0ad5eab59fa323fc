//! One LDAP object type as an `ObjectSet`: get, query (paged or whole), create, update
//! (changed attributes only, modDN when the DN changes), delete.

use super::config::{ObjectTypeDef, PropertyDef};
use super::entry::{self, NativeAttributes};
use super::error::{classify, classify_result};
use super::filter::{self, AttributeResolver};
use super::paging::{Cursor, fetch_page};
use super::{Shared, dn, groups};
use crate::contract::{ConnectorError, ConnectorResult, ObjectSet};
use async_trait::async_trait;
use idsync_core::{QueryPage, QueryRequest};
use ldap3::controls::{ControlType, PostRead, PostReadResp};
use ldap3::{Ldap, Mod, Scope, SearchEntry};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

#[derive(Debug)]
pub struct LdapObjectSet {
    pub(super) shared: Arc<Shared>,
    pub(super) ty: Arc<ObjectTypeDef>,
    /// `(&(objectClass=..)..(accountSearchFilter))`: what makes an entry part of this type.
    pub(super) type_filter: String,
}

impl LdapObjectSet {
    pub(super) fn new(shared: Arc<Shared>, ty: Arc<ObjectTypeDef>) -> ConnectorResult<Self> {
        let cfg = shared.pool.config();
        let mut f = String::from("(&");
        let (classes, extra) = if ty.is_group() {
            (cfg.group_object_classes.clone(), None)
        } else if ty.native_type == "__ACCOUNT__" || ty.name == "account" {
            (
                cfg.account_object_classes.clone(),
                cfg.account_search_filter.clone(),
            )
        } else {
            (vec![ty.native_type.clone()], None)
        };
        for class in &classes {
            f.push_str("(objectClass=");
            f.push_str(&filter::escape_value(class));
            f.push(')');
        }
        if let Some(extra) = extra {
            let extra = extra.trim();
            if extra.starts_with('(') {
                f.push_str(extra);
            } else {
                f.push('(');
                f.push_str(extra);
                f.push(')');
            }
        }
        f.push(')');
        Ok(Self {
            shared,
            ty,
            type_filter: f,
        })
    }

    pub(super) fn uid_attr(&self) -> &str {
        &self.shared.pool.config().uid_attribute
    }

    fn resolver(&self) -> AttributeResolver<'_> {
        AttributeResolver {
            object_type: &self.ty,
            uid_attribute: self.uid_attr(),
        }
    }

    pub(super) fn combined(&self, user: &str) -> String {
        format!("(&{}{user})", self.type_filter)
    }

    pub(super) fn all_attributes(&self) -> Vec<String> {
        entry::requested_attributes(&self.ty, self.uid_attr(), None)
    }

    pub(super) fn to_object(&self, e: &SearchEntry, fields: Option<&[String]>) -> Value {
        entry::entry_to_object(e, &self.ty, self.uid_attr(), fields)
    }

    /// The `ldapGroups` property, when this account type declares it and `fields` asks for it.
    fn groups_wanted(&self, fields: Option<&[String]>) -> Option<&PropertyDef> {
        if self.ty.is_group() {
            return None;
        }
        self.ty
            .properties
            .iter()
            .find(|p| groups::is_ldap_groups(&p.native_name))
            .filter(|p| fields.is_none_or(|f| f.contains(&p.name)))
    }

    /// Converts entries, with `ldapGroups` filled in (when declared and wanted) from one group
    /// search per chunk of entries (`groups.rs`), on `ldap`.
    pub(super) async fn to_objects(
        &self,
        ldap: &mut Ldap,
        entries: &[SearchEntry],
        fields: Option<&[String]>,
    ) -> ConnectorResult<Vec<Value>> {
        let mut objects: Vec<Value> = entries.iter().map(|e| self.to_object(e, fields)).collect();
        let Some(prop) = self.groups_wanted(fields) else {
            return Ok(objects);
        };
        if entries.is_empty() {
            return Ok(objects);
        }
        let dns: Vec<&str> = entries.iter().map(|e| e.dn.as_str()).collect();
        let cfg = self.shared.pool.config();
        let mut by_member = groups::memberships(ldap, cfg, &dns).await?;
        for (object, e) in objects.iter_mut().zip(entries) {
            let found = by_member.remove(&dn::normalize(&e.dn)).unwrap_or_default();
            if let Value::Object(map) = object {
                map.insert(
                    prop.name.clone(),
                    Value::Array(found.into_iter().map(Value::String).collect()),
                );
            }
        }
        Ok(objects)
    }

    /// As [`Self::to_objects`], on a pooled connection leased only when groups are wanted.
    pub(super) async fn to_objects_pooled(
        &self,
        entries: &[SearchEntry],
        fields: Option<&[String]>,
    ) -> ConnectorResult<Vec<Value>> {
        if self.groups_wanted(fields).is_none() || entries.is_empty() {
            return Ok(entries.iter().map(|e| self.to_object(e, fields)).collect());
        }
        self.shared
            .pool
            .run(|mut ldap| async move { self.to_objects(&mut ldap, entries, fields).await })
            .await
    }

    /// One entry as [`Self::to_objects`] converts it.
    async fn to_object_with_groups(
        &self,
        ldap: &mut Ldap,
        entry: &SearchEntry,
    ) -> ConnectorResult<Value> {
        let mut v = self
            .to_objects(ldap, std::slice::from_ref(entry), None)
            .await?;
        Ok(v.pop().unwrap_or(Value::Null))
    }

    /// Finds the entry with this `_id` under any base context.
    async fn find(
        &self,
        ldap: &mut Ldap,
        id: &str,
        attrs: &[String],
    ) -> ConnectorResult<Option<SearchEntry>> {
        let cfg = self.shared.pool.config();
        let uid = self.uid_attr();
        let f = if uid.eq_ignore_ascii_case("dn") {
            self.type_filter.clone()
        } else {
            self.combined(&format!("({uid}={})", filter::escape_value(id)))
        };
        for base in &cfg.base_contexts {
            let (search_base, scope) = if uid.eq_ignore_ascii_case("dn") {
                if !dn::is_under(id, base) {
                    continue;
                }
                (id, Scope::Base)
            } else {
                (base.as_str(), Scope::Subtree)
            };
            let res = ldap
                .with_timeout(cfg.operation_timeout)
                .search(search_base, scope, &f, attrs)
                .await
                .map_err(|e| classify(e, id))?;
            match res.success() {
                Ok((entries, _)) => {
                    if let Some(e) = entries.into_iter().next() {
                        return Ok(Some(SearchEntry::construct(e)));
                    }
                }
                Err(e) if super::error::result_code(&e) == Some(32) => {}
                Err(e) => return Err(classify(e, id)),
            }
        }
        Ok(None)
    }

    async fn read_by_dn(&self, ldap: &mut Ldap, dn: &str) -> ConnectorResult<SearchEntry> {
        let cfg = self.shared.pool.config();
        let res = ldap
            .with_timeout(cfg.operation_timeout)
            .search(dn, Scope::Base, "(objectClass=*)", self.all_attributes())
            .await
            .map_err(|e| classify(e, dn))?;
        let (entries, _) = res.success().map_err(|e| classify(e, dn))?;
        entries
            .into_iter()
            .next()
            .map(SearchEntry::construct)
            .ok_or_else(|| ConnectorError::NotFound(dn.to_owned()))
    }

    fn fields_of(request: &QueryRequest) -> Option<Vec<String>> {
        request.fields.as_ref().map(|f| {
            f.iter()
                .filter_map(|p| p.first().map(str::to_owned))
                .collect::<Vec<_>>()
        })
    }

    /// A query without `_pageSize`: the whole result, read in `blockSize` pages on one
    /// pooled connection, then sorted and offset in memory (LDAP cannot sort without the
    /// server-side sort control).
    async fn query_all(
        &self,
        request: &QueryRequest,
        ldap_filter: &str,
    ) -> ConnectorResult<QueryPage> {
        let fields = Self::fields_of(request);
        let attrs = entry::requested_attributes(&self.ty, self.uid_attr(), fields.as_deref());
        let mut conn = self.shared.pool.get().await?;
        let cfg = self.shared.pool.config();
        let mut entries = Vec::new();
        let outcome: ConnectorResult<()> = async {
            for base in &cfg.base_contexts {
                super::paging::search_all(&mut conn, cfg, base, ldap_filter, &attrs, |e| {
                    entries.push(e)
                })
                .await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = outcome {
            if super::error::breaks_connection(&e) {
                conn.discard();
            }
            return Err(e);
        }
        drop(conn);
        let mut results = self.to_objects_pooled(&entries, fields.as_deref()).await?;
        drop(entries);
        if !request.sort_keys.is_empty() {
            results.sort_by(|a, b| super::sort::compare(a, b, &request.sort_keys));
        }
        if let Some(offset) = request.offset {
            results.drain(..offset.min(results.len()));
        }
        let total = Some(results.len() as u64);
        Ok(QueryPage {
            results,
            cookie: None,
            total,
        })
    }

    /// One page of a paged query, continuing the cursor the cookie names.
    async fn query_page(
        &self,
        request: &QueryRequest,
        ldap_filter: &str,
        size: usize,
    ) -> ConnectorResult<QueryPage> {
        if !request.sort_keys.is_empty() {
            return Err(ConnectorError::BadRequest(
                "the LDAP connector cannot sort paged results (no server-side sort)".into(),
            ));
        }
        let cfg = self.shared.pool.config();
        let fields = Self::fields_of(request);
        let attrs = entry::requested_attributes(&self.ty, self.uid_attr(), fields.as_deref());
        let fingerprint = format!("{}|{ldap_filter}|{}", self.ty.name, attrs.join(","));
        let registry = &self.shared.cursors;
        let (id, mut cursor) = match &request.cookie {
            Some(cookie) if !cookie.is_empty() => registry.take(cookie, &fingerprint)?,
            _ => {
                let ldap = super::pool::connect(cfg).await?;
                (registry.new_id(), Cursor::new(ldap, fingerprint))
            }
        };
        let size = i32::try_from(size).unwrap_or(i32::MAX);
        let mut skip = if request.cookie.is_none() {
            request.offset.unwrap_or(0)
        } else {
            0
        };
        let mut results = Vec::new();
        loop {
            let Some(base) = cfg.base_contexts.get(cursor.base_index) else {
                // All bases read: the cursor (and its connection) ends here.
                return Ok(QueryPage {
                    results: self.to_objects_pooled(&results, fields.as_deref()).await?,
                    cookie: None,
                    total: None,
                });
            };
            let want = if skip > 0 {
                i32::try_from(skip)
                    .unwrap_or(i32::MAX)
                    .min(cfg.block_size.max(size))
            } else {
                size - results.len() as i32
            };
            let cookie = std::mem::take(&mut cursor.server_cookie);
            let page = fetch_page(
                &mut cursor.ldap,
                base,
                ldap_filter,
                &attrs,
                want,
                cookie,
                cfg.operation_timeout,
            )
            .await?;
            for e in page.entries {
                if skip > 0 {
                    skip -= 1;
                } else {
                    results.push(e);
                }
            }
            if page.next.is_empty() {
                cursor.base_index += 1;
            } else {
                cursor.server_cookie = page.next;
            }
            let more = cursor.base_index < cfg.base_contexts.len();
            if results.len() >= size as usize && skip == 0 {
                let cookie = more.then(|| registry.park(id, cursor));
                // Groups are read on a pooled connection, never on the cursor's, whose paged
                // search the server ties to it.
                return Ok(QueryPage {
                    results: self.to_objects_pooled(&results, fields.as_deref()).await?,
                    cookie,
                    total: None,
                });
            }
        }
    }

    fn with_object_classes(&self, native: &mut NativeAttributes) {
        if native
            .attrs
            .iter()
            .any(|(a, _)| a.eq_ignore_ascii_case("objectClass"))
        {
            return;
        }
        let cfg = self.shared.pool.config();
        let classes = if self.ty.is_group() {
            cfg.group_object_classes.clone()
        } else if self.ty.native_type == "__ACCOUNT__" || self.ty.name == "account" {
            cfg.account_object_classes.clone()
        } else {
            vec![self.ty.native_type.clone()]
        };
        native.attrs.push((
            "objectClass".into(),
            classes.into_iter().map(String::into_bytes).collect(),
        ));
    }
}

fn as_set(values: &[Vec<u8>]) -> HashSet<Vec<u8>> {
    values.iter().cloned().collect()
}

#[async_trait]
impl ObjectSet for LdapObjectSet {
    async fn get(&self, id: &str) -> ConnectorResult<Option<Value>> {
        let attrs = self.all_attributes();
        self.shared
            .pool
            .run(|mut ldap| async move {
                match self.find(&mut ldap, id, &attrs).await? {
                    Some(e) => Ok(Some(self.to_object_with_groups(&mut ldap, &e).await?)),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn query(&self, request: &QueryRequest) -> ConnectorResult<QueryPage> {
        let user = filter::to_ldap(request.filter.as_ref(), &self.resolver())?;
        let ldap_filter = self.combined(&user);
        if request
            .cookie
            .as_deref()
            .is_some_and(super::resume::is_resumable)
        {
            return self.query_resumable(request).await;
        }
        match request.page_size {
            Some(size) if size > 0 => self.query_page(request, &ldap_filter, size).await,
            _ => self.query_all(request, &ldap_filter).await,
        }
    }

    /// Pages as `entryUUID` ranges whose cookies any process continues (`resume.rs`).
    async fn query_resumable(&self, request: &QueryRequest) -> ConnectorResult<QueryPage> {
        let Some(size) = request.page_size.filter(|s| *s > 0) else {
            if request.cookie.is_some() {
                return Err(ConnectorError::BadRequest(
                    "a paged-results cookie needs _pageSize".into(),
                ));
            }
            return self.query(request).await;
        };
        if !request.sort_keys.is_empty() || request.offset.is_some_and(|o| o > 0) {
            return Err(ConnectorError::BadRequest(
                "a resumable LDAP paged query takes neither _sortKeys nor _pagedResultsOffset"
                    .into(),
            ));
        }
        let user = filter::to_ldap(request.filter.as_ref(), &self.resolver())?;
        let ldap_filter = self.combined(&user);
        let fields = Self::fields_of(request);
        let attrs = entry::requested_attributes(&self.ty, self.uid_attr(), fields.as_deref());
        let identity = format!("{}|{ldap_filter}|{}", self.ty.name, attrs.join(","));
        let cfg = self.shared.pool.config();
        let mut conn = self.shared.pool.get().await?;
        let cookie = request.cookie.as_deref().filter(|c| !c.is_empty());
        let read = super::resume::Reader {
            ldap: &mut conn,
            cfg,
        }
        .page(&ldap_filter, &identity, &attrs, size, cookie)
        .await;
        let (entries, cookie) = match read {
            Ok(r) => r,
            Err(e) => {
                if super::error::breaks_connection(&e) {
                    conn.discard();
                }
                return Err(e);
            }
        };
        drop(conn);
        Ok(QueryPage {
            results: self.to_objects_pooled(&entries, fields.as_deref()).await?,
            cookie,
            total: None,
        })
    }

    async fn count(&self) -> ConnectorResult<Option<u64>> {
        Ok(None)
    }

    /// liveSync by timestamps or OpenLDAP's accesslog (`livesync.rs`).
    async fn changes_since(
        &self,
        token: Option<&Value>,
    ) -> ConnectorResult<crate::contract::ChangeBatch> {
        self.live_changes(token).await
    }

    /// The entry with the DN a create of `object` would write.
    async fn find_existing(
        &self,
        _id: Option<&str>,
        object: &Value,
    ) -> ConnectorResult<Option<Value>> {
        let native = entry::object_to_native(object, &self.ty, self.uid_attr())?;
        let Some(dn) = native.dn else {
            return Ok(None);
        };
        let found = self
            .shared
            .pool
            .run(|mut ldap| {
                let dn = dn.clone();
                async move {
                    match self.read_by_dn(&mut ldap, &dn).await {
                        Ok(e) => Ok(Some(self.to_object_with_groups(&mut ldap, &e).await?)),
                        Err(ConnectorError::NotFound(_)) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        Ok(found)
    }

    async fn create(&self, id: Option<&str>, object: Value) -> ConnectorResult<Value> {
        let uid = self.uid_attr().to_owned();
        let mut native = entry::object_to_native(&object, &self.ty, &uid)?;
        let dn = native.dn.clone().ok_or_else(|| {
            ConnectorError::InvalidData(
                "an LDAP entry needs a DN (the __NAME__ property, e.g. dn)".into(),
            )
        })?;
        // A client-assigned id lands in the uid attribute when that attribute is writable.
        let client_id = id
            .map(str::to_owned)
            .or_else(|| object.get("_id").and_then(Value::as_str).map(str::to_owned));
        if let Some(cid) = client_id
            && !uid.eq_ignore_ascii_case("entryUUID")
            && !uid.eq_ignore_ascii_case("dn")
        {
            native.attrs.push((uid.clone(), vec![cid.into_bytes()]));
        }
        self.with_object_classes(&mut native);
        let new_groups = native.ldap_groups.take().unwrap_or_default();
        let attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = native
            .attrs
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(a, v)| (a.into_bytes(), v.into_iter().collect()))
            .collect();
        let read_back = self.all_attributes();
        self.shared
            .pool
            .run(|mut ldap| async move {
                let res = ldap
                    .with_controls(PostRead::new(read_back.clone()))
                    .add(&dn, attrs)
                    .await
                    .map_err(|e| classify(e, &dn))?;
                if res.rc != 0 {
                    return Err(classify_result(&res, &dn));
                }
                // The post-read control (RFC 4527) returns the entry as stored, entryUUID
                // included, in the same round trip; fall back to a read if it is missing.
                let post = res
                    .ctrls
                    .iter()
                    .find(|c| matches!(c.0, Some(ControlType::PostReadResp)) && c.1.val.is_some());
                let entry = match post {
                    Some(c) => {
                        let r: PostReadResp = c.1.parse();
                        SearchEntry {
                            dn: dn.clone(),
                            attrs: r.attrs,
                            bin_attrs: r.bin_attrs,
                        }
                    }
                    None => self.read_by_dn(&mut ldap, &dn).await?,
                };
                // ICF: a new account joins the groups its `ldapGroups` lists. One it cannot
                // join undoes the create, so a retry does not meet a half-made account.
                let cfg = self.shared.pool.config();
                for g in &new_groups {
                    if let Err(e) = groups::add_member(&mut ldap, cfg, g, &dn).await {
                        let _ = ldap.with_timeout(cfg.operation_timeout).delete(&dn).await;
                        return Err(e);
                    }
                }
                self.to_object_with_groups(&mut ldap, &entry).await
            })
            .await
    }

    async fn update(&self, id: &str, _rev: Option<&str>, object: Value) -> ConnectorResult<Value> {
        let uid = self.uid_attr().to_owned();
        let mut native = entry::object_to_native(&object, &self.ty, &uid)?;
        // update replaces the object: a declared property missing from it is removed (when
        // the entry has it). Undeclared attributes are not ours to touch.
        for prop in &self.ty.properties {
            let native_name = prop.native_name.as_str();
            let special = native_name == super::config::NAME_ATTR
                || native_name == super::config::UID_ATTR
                || native_name.eq_ignore_ascii_case(&uid)
                || native_name.eq_ignore_ascii_case("objectClass")
                // Passwords are write-only in IDM: an object without one keeps its password.
                || native_name.eq_ignore_ascii_case("userPassword")
                || native_name == "__PASSWORD__"
                // Group membership lives on the groups: an object without `ldapGroups` leaves
                // it as it is (`null` or `[]` leaves every group).
                || groups::is_ldap_groups(native_name);
            if !special
                && object.get(&prop.name).is_none()
                && !native
                    .attrs
                    .iter()
                    .any(|(a, _)| a.eq_ignore_ascii_case(native_name))
            {
                native.attrs.push((native_name.to_owned(), Vec::new()));
            }
        }
        let wanted_groups = native.ldap_groups.take();
        let attrs = self.all_attributes();
        self.shared
            .pool
            .run(|mut ldap| async move {
                let cfg = self.shared.pool.config();
                let timeout = cfg.operation_timeout;
                let current = self
                    .find(&mut ldap, id, &attrs)
                    .await?
                    .ok_or_else(|| ConnectorError::NotFound(id.to_owned()))?;
                let mut current_dn = current.dn.clone();
                if let Some(new_dn) = native.dn.as_deref()
                    && !dn::equal(new_dn, &current_dn)
                {
                    let (rdn, parent) = dn::split(new_dn).ok_or_else(|| {
                        ConnectorError::InvalidData(format!("{new_dn:?} is not a DN"))
                    })?;
                    let (_, old_parent) = dn::split(&current_dn).unwrap_or(("", ""));
                    let new_sup = (!dn::equal(parent, old_parent)).then_some(parent);
                    let res = ldap
                        .with_timeout(timeout)
                        .modifydn(&current_dn, rdn, true, new_sup)
                        .await
                        .map_err(|e| classify(e, new_dn))?;
                    if res.rc != 0 {
                        return Err(classify_result(&res, new_dn));
                    }
                    if cfg.maintain_ldap_group_membership {
                        groups::rename_member(&mut ldap, cfg, &current_dn, new_dn).await?;
                    }
                    current_dn = new_dn.to_owned();
                }
                let mut mods: Vec<Mod<Vec<u8>>> = Vec::new();
                for (attr, values) in native.attrs {
                    let now = entry::current_values(&current, &attr);
                    let wanted = as_set(&values);
                    if as_set(&now) == wanted {
                        continue;
                    }
                    if wanted.is_empty() {
                        mods.push(Mod::Delete(attr.into_bytes(), HashSet::new()));
                    } else {
                        mods.push(Mod::Replace(attr.into_bytes(), wanted));
                    }
                }
                // A rename already replaced the naming attribute's old value; a replace of it
                // that the server now sees as unchanged is harmless, so no special case.
                if !mods.is_empty() {
                    let res = ldap
                        .with_timeout(timeout)
                        .modify(&current_dn, mods)
                        .await
                        .map_err(|e| classify(e, &current_dn))?;
                    if res.rc != 0 {
                        return Err(classify_result(&res, &current_dn));
                    }
                }
                if let Some(wanted) = &wanted_groups {
                    groups::set_groups(&mut ldap, cfg, &current_dn, wanted).await?;
                }
                let stored = self.read_by_dn(&mut ldap, &current_dn).await?;
                self.to_object_with_groups(&mut ldap, &stored).await
            })
            .await
    }

    async fn delete(&self, id: &str, _rev: Option<&str>) -> ConnectorResult<Option<Value>> {
        let attrs = self.all_attributes();
        self.shared
            .pool
            .run(|mut ldap| async move {
                let cfg = self.shared.pool.config();
                let timeout = cfg.operation_timeout;
                let current = self
                    .find(&mut ldap, id, &attrs)
                    .await?
                    .ok_or_else(|| ConnectorError::NotFound(id.to_owned()))?;
                // The object as it was, groups included, before the entry goes.
                let before = self.to_object_with_groups(&mut ldap, &current).await?;
                // The groups let go first (as ICF does): a group that refuses (a server that
                // will not empty a group) fails the delete before anything is gone.
                if cfg.maintain_ldap_group_membership && !self.ty.is_group() {
                    groups::remove_from_all(&mut ldap, cfg, &current.dn).await?;
                }
                let res = ldap
                    .with_timeout(timeout)
                    .delete(&current.dn)
                    .await
                    .map_err(|e| classify(e, id))?;
                if res.rc != 0 {
                    return Err(classify_result(&res, id));
                }
                Ok(Some(before))
            })
            .await
    }
}
