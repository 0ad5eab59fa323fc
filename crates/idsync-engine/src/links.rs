//! A mapping's view of its links (docs/configuration.md#mappings): which link type it uses (its own name, or the
//! link-defining mapping's through `links`), which side of the link is its source (a reverse
//! mapping reads `secondId` as its source id), and how ids are normalised (the definer's
//! case-sensitivity flags).

use crate::error::EngineResult;
use idsync_config::{Mapping, Project};
use idsync_repo::{Link, Repository};
use std::collections::HashMap;
use std::sync::Arc;

/// Every link of a mapping, loaded once for a run (`prefetchLinks`), kept compact: per
/// qualifier, source id → (link id, rev, target id).
/// One prefetched link: (link id, rev, target id).
type LinkEntry = (Box<str>, Box<str>, Box<str>);

#[derive(Debug, Default)]
pub struct PrefetchedLinks {
    by_qualifier: HashMap<String, HashMap<Box<str>, LinkEntry>>,
    len: usize,
}

impl PrefetchedLinks {
    pub fn insert(&mut self, view: &LinkView, l: Link) {
        let entry = (
            l.id.into_boxed_str(),
            l.rev.into_boxed_str(),
            view.target_id_owned(&l.first_id, &l.second_id),
        );
        let source: Box<str> = view.source_id_of(&l.first_id, &l.second_id).into();
        if self
            .by_qualifier
            .entry(l.link_qualifier)
            .or_default()
            .insert(source, entry)
            .is_none()
        {
            self.len += 1;
        }
    }

    /// The link of a normalised source id.
    pub fn get(&self, view: &LinkView, qualifier: &str, source_id: &str) -> Option<Link> {
        let (id, rev, target) = self.by_qualifier.get(qualifier)?.get(source_id)?;
        let (first_id, second_id) = if view.reversed {
            (target.to_string(), source_id.to_string())
        } else {
            (source_id.to_string(), target.to_string())
        };
        Some(Link {
            id: id.to_string(),
            rev: rev.to_string(),
            link_type: view.link_type.clone(),
            link_qualifier: qualifier.to_string(),
            first_id,
            second_id,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[derive(Debug, Clone)]
pub struct LinkView {
    pub link_type: String,
    /// True when this mapping's source is the definer's target.
    pub reversed: bool,
    source_case_sensitive: bool,
    target_case_sensitive: bool,
}

impl LinkView {
    pub fn of(project: &Project, m: &Mapping) -> Self {
        let (link_type, reversed) = match &m.links {
            Some(l) => (l.mapping.clone(), l.reversed),
            None => (m.name.clone(), false),
        };
        let definer = project.mapping(&link_type).unwrap_or(m);
        // The definer's flags describe its own source and target; swap them for a reverse view.
        let (def_src, def_tgt) = (
            definer.source_ids_case_sensitive,
            definer.target_ids_case_sensitive,
        );
        let (source_case_sensitive, target_case_sensitive) = if reversed {
            (def_tgt, def_src)
        } else {
            (def_src, def_tgt)
        };
        Self {
            link_type,
            reversed,
            source_case_sensitive,
            target_case_sensitive,
        }
    }

    pub fn norm_source(&self, id: &str) -> String {
        if self.source_case_sensitive {
            id.to_string()
        } else {
            id.to_lowercase()
        }
    }

    pub fn norm_target(&self, id: &str) -> String {
        if self.target_case_sensitive {
            id.to_string()
        } else {
            id.to_lowercase()
        }
    }

    /// This mapping's source id of a link.
    pub fn source_id<'a>(&self, l: &'a Link) -> &'a str {
        if self.reversed {
            &l.second_id
        } else {
            &l.first_id
        }
    }

    fn source_id_of<'a>(&self, first: &'a str, second: &'a str) -> &'a str {
        if self.reversed { second } else { first }
    }

    fn target_id_owned(&self, first: &str, second: &str) -> Box<str> {
        if self.reversed {
            first.into()
        } else {
            second.into()
        }
    }

    /// This mapping's target id of a link.
    pub fn target_id<'a>(&self, l: &'a Link) -> &'a str {
        if self.reversed {
            &l.first_id
        } else {
            &l.second_id
        }
    }

    /// A new link record between a source and a target of this mapping.
    pub fn new_link(&self, qualifier: &str, source_id: &str, target_id: &str) -> Link {
        let (s, t) = (self.norm_source(source_id), self.norm_target(target_id));
        let (first_id, second_id) = if self.reversed { (t, s) } else { (s, t) };
        Link {
            id: crate::managed_set::new_id(),
            rev: "0".into(),
            link_type: self.link_type.clone(),
            link_qualifier: qualifier.to_string(),
            first_id,
            second_id,
        }
    }

    /// The link of a source id, asking the repository.
    pub async fn by_source(
        &self,
        repo: &Arc<dyn Repository>,
        qualifier: &str,
        source_id: &str,
    ) -> EngineResult<Option<Link>> {
        let id = self.norm_source(source_id);
        Ok(if self.reversed {
            repo.link_by_second(&self.link_type, qualifier, &id).await?
        } else {
            repo.link_by_first(&self.link_type, qualifier, &id).await?
        })
    }

    /// The link of a target id, asking the repository.
    pub async fn by_target(
        &self,
        repo: &Arc<dyn Repository>,
        qualifier: &str,
        target_id: &str,
    ) -> EngineResult<Option<Link>> {
        let id = self.norm_target(target_id);
        Ok(if self.reversed {
            repo.link_by_first(&self.link_type, qualifier, &id).await?
        } else {
            repo.link_by_second(&self.link_type, qualifier, &id).await?
        })
    }
}
