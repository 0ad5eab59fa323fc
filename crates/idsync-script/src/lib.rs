//! idsync-script
