//! Project loading: parse → validate → typed `Config`.
