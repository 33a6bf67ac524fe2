//! kb-config
