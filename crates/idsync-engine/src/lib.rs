//! idsync-engine
