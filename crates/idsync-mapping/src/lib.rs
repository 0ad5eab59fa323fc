//! idsync-mapping
