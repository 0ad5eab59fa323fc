//! idsync-repo
