//! idsync-connectors
